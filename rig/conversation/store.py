"""Where stored responses live: in process by default, in Redis to share across processes.

A stored response keeps what ``GET /v1/responses/{id}`` returns and what a continuation
needs: the whole conversation up to and including that response's output, and its size in
tokens and bytes (for the latency model and ``usage``). Responses created with
``store=false`` never reach a store; WebSocket mode keeps them in connection memory only.
"""

from __future__ import annotations

from collections import OrderedDict
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
    def from_bytes(cls, raw: bytes) -> StoredResponse:
        """Inverse of :meth:`to_bytes`."""
        data = orjson.loads(raw)
        return cls(
            data["response"], data["transcript"], data["context_tokens"], data["context_bytes"]
        )


class ResponseStore(Protocol):
    """A place to keep stored responses by id."""

    async def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or ``None``."""
        ...

    async def put(self, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored`` under ``response_id``."""
        ...

    async def delete(self, response_id: str) -> bool:
        """Forget ``response_id``; whether it existed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """A bounded in-process store, least recently used entries evicted first."""

    def __init__(self, max_entries: int = 100_000):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()

    async def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or ``None``."""
        stored = self._entries.get(response_id)
        if stored is not None:
            self._entries.move_to_end(response_id)
        return stored

    async def put(self, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored``; evict the oldest entry beyond ``max_entries``."""
        self._entries[response_id] = stored
        self._entries.move_to_end(response_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, response_id: str) -> bool:
        """Forget ``response_id``."""
        return self._entries.pop(response_id, None) is not None

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._entries)


class RedisStore:
    """Stored responses in Redis, shared by every mock process and replica."""

    def __init__(self, url: str, ttl_s: int = 3600, prefix: str = "rig:response:"):
        import redis.asyncio as redis

        self.url = url
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)

    async def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or ``None``."""
        raw = await self._redis.get(self.prefix + response_id)
        return None if raw is None else StoredResponse.from_bytes(raw)

    async def put(self, response_id: str, stored: StoredResponse) -> None:
        """Keep ``stored`` with the configured time to live."""
        await self._redis.set(self.prefix + response_id, stored.to_bytes(), ex=self.ttl_s)

    async def delete(self, response_id: str) -> bool:
        """Forget ``response_id``."""
        return bool(await self._redis.delete(self.prefix + response_id))

    async def ping(self) -> None:
        """Fail fast when Redis is unreachable."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_store(url: str | None, ttl_s: int = 3600) -> ResponseStore:
    """The store named by ``url``: ``None``/``memory`` or ``redis://...``."""
    if url is None or url in ("", "memory"):
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, ttl_s=ttl_s)
    raise ValueError(f"unknown store {url!r}: use 'memory' or a redis:// URL")
