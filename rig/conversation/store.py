"""Where stored responses live: in process by default, in Redis to share across processes.

A stored response keeps what ``GET /v1/responses/{id}`` returns and what a continuation
needs: the whole conversation up to and including that response's output, and its size in
tokens and bytes (for the latency model and ``usage``). Responses created with
``store=false`` never reach a store; WebSocket mode keeps them in connection memory only.

Every entry belongs to an owner (:mod:`rig.conversation.ownership`: a digest of the API key
or organisation that created it, never the key): the owner is part of the entry's key, so
another owner's lookup misses exactly as an unknown id does, in one step.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

__all__ = ["MemoryStore", "RedisStore", "ResponseStore", "StoredResponse", "open_store"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished response and the conversation a continuation resumes from."""

    response: dict[str, Any]
    transcript: list[dict[str, Any]]
    context_tokens: int
    context_bytes: int

    def to_bytes(self) -> bytes:
        """Serialised form for an external store."""
        return orjson.dumps(
            {
                "response": self.response,
                "transcript": self.transcript,
                "context_tokens": self.context_tokens,
                "context_bytes": self.context_bytes,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> StoredResponse:
        """Inverse of :meth:`to_bytes` (Redis may hand back either type)."""
        data = orjson.loads(raw)
        return cls(
            data["response"], data["transcript"], data["context_tokens"], data["context_bytes"]
        )


class ResponseStore(Protocol):
    """A place to keep stored responses by owner and id."""

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """``owner``'s stored response ``response_id``, or ``None``."""
        ...

    async def put(self, owner: str, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored`` as ``owner``'s ``response_id``."""
        ...

    async def delete(self, owner: str, response_id: str) -> bool:
        """Forget ``owner``'s ``response_id``; whether it existed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """A bounded in-process store, least recently used entries evicted first: at most
    ``max_entries`` responses and ``max_bytes`` of conversation (each entry weighs its
    ``context_bytes``: the request and output bytes of its whole conversation, what its
    transcript holds). ``evictions`` counts entries pushed out by either bound;
    ``on_evict(n)`` is told of each eviction (the mock counts them in ``/stats``)."""

    def __init__(
        self,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        on_evict: Callable[[int], None] | None = None,
    ):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        self.bytes = 0
        """Weight of the entries held."""
        self.evictions = 0
        self._entries: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """``owner``'s stored response, or ``None``."""
        key = (owner, response_id)
        stored = self._entries.get(key)
        if stored is not None:
            self._entries.move_to_end(key)
        return stored

    async def put(self, owner: str, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored``; evict the least recently used entries beyond the bounds (an
        entry heavier than ``max_bytes`` on its own is not kept)."""
        key = (owner, response_id)
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes -= previous.context_bytes
        self._entries[key] = stored
        self.bytes += stored.context_bytes
        evicted = 0
        while self._entries and (
            len(self._entries) > self.max_entries or self.bytes > self.max_bytes
        ):
            _, gone = self._entries.popitem(last=False)
            self.bytes -= gone.context_bytes
            evicted += 1
        if evicted:
            self.evictions += evicted
            if self.on_evict is not None:
                self.on_evict(evicted)

    async def delete(self, owner: str, response_id: str) -> bool:
        """Forget ``owner``'s ``response_id``."""
        stored = self._entries.pop((owner, response_id), None)
        if stored is None:
            return False
        self.bytes -= stored.context_bytes
        return True

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._entries)


class RedisStore:
    """Stored responses in Redis, shared by every process and replica: one string per
    response under ``<prefix><owner>:<id>``, expiring after ``ttl_s``."""

    def __init__(self, url: str, ttl_s: int = 3600, prefix: str = "rig:response:"):
        import redis.asyncio as redis

        self.url = url
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._redis: redis.Redis = redis.Redis.from_url(url)

    def _key(self, owner: str, response_id: str) -> str:
        return f"{self.prefix}{owner}:{response_id}"

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """``owner``'s stored response, or ``None``."""
        raw = await self._redis.get(self._key(owner, response_id))
        return None if raw is None else StoredResponse.from_bytes(raw)

    async def put(self, owner: str, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored`` with the configured time to live."""
        await self._redis.set(self._key(owner, response_id), stored.to_bytes(), ex=self.ttl_s)

    async def delete(self, owner: str, response_id: str) -> bool:
        """Forget ``owner``'s ``response_id``."""
        return bool(await self._redis.delete(self._key(owner, response_id)))

    async def ping(self) -> None:
        """Fail fast when Redis is unreachable."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_store(
    url: str | None,
    ttl_s: int = 3600,
    *,
    max_bytes: int = 256 * 1024 * 1024,
    on_evict: Callable[[int], None] | None = None,
) -> ResponseStore:
    """The store named by ``url``: ``None``/``memory`` (bounded by ``max_bytes``, telling
    ``on_evict`` of evictions) or ``redis://...`` (bounded by its TTL and Redis's own
    ``maxmemory``)."""
    if url is None or url in ("", "memory"):
        return MemoryStore(max_bytes=max_bytes, on_evict=on_evict)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, ttl_s=ttl_s)
    raise ValueError(f"unknown store {url!r}: use 'memory' or a redis:// URL")
