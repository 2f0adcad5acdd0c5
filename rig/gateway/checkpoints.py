"""Where the gateway checkpoints finished responses so that any replica can continue them.

Every response a WebSocket finished (``store`` true or false) and every HTTP response made
with ``store=true`` is checkpointed: its owner, whether it was stored (only those answer
``GET /v1/responses/{id}``), the response object and the whole conversation up to it,
kept as the JSON bytes they were sent as (no re-encoding, and memory close to the
conversation's size). Two backends:

* :class:`RedisCheckpoints` - one Redis hash per response (``<prefix><id>``: owner, stored,
  tokens, response, transcript), written with its TTL in one pipelined round trip;
  shared by every replica, so a client that reconnects to another one continues;
* :class:`MemoryCheckpoints` - in process, bounded by bytes, least recently used out
  first, with the same TTL: a reconnect to the same process continues.

A checkpoint is keyed by response id alone and names its owner inside: a lookup by
another owner is told apart (counted as ``foreign``) and answered exactly as an unknown
id. Ids are the upstream's or the gateway's own random ids, never a client's choice.

Both backends raise :class:`CheckpointUnavailable` when they cannot answer (Redis down or
slow); :class:`rig.gateway.state.GatewayState` then continues on connection-local state
and counts it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from rig.errors import RigError

__all__ = [
    "CheckpointStore",
    "CheckpointUnavailable",
    "Conversation",
    "Forgotten",
    "MemoryCheckpoints",
    "RedisCheckpoints",
    "open_checkpoints",
]


class CheckpointUnavailable(RigError):
    """The checkpoint store did not answer (in time)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A finished response and the conversation up to it, as JSON bytes."""

    owner: str
    """Who created it (:func:`rig.conversation.owner_id`)."""
    stored: bool
    """Created with ``store=true``: retrievable with ``GET /v1/responses/{id}``."""
    response: bytes
    """The response object."""
    transcript: bytes
    """A JSON array: every item of the conversation, this response's output included."""
    context_tokens: int
    pending: tuple[str, ...] = ()
    """Call ids of its output's client-run tool calls, awaiting their outputs (read at
    record time, so a continuation checks pairing without decoding the response)."""

    @property
    def size(self) -> int:
        """Bytes held: what it weighs in memory and in a checkpoint."""
        return len(self.response) + len(self.transcript)

    def response_object(self) -> dict[str, Any]:
        """The response object, decoded."""
        value: dict[str, Any] = orjson.loads(self.response)
        return value

    def items(self) -> list[dict[str, Any]]:
        """The conversation's items, decoded."""
        value: list[dict[str, Any]] = orjson.loads(self.transcript)
        return value

    def fields(self) -> dict[str, bytes]:
        """As a Redis hash."""
        return {
            "owner": self.owner.encode(),
            "stored": b"1" if self.stored else b"0",
            "tokens": str(self.context_tokens).encode(),
            "pending": orjson.dumps(self.pending),
            "response": self.response,
            "transcript": self.transcript,
        }

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Conversation:
        """Inverse of :meth:`fields`."""
        return cls(
            owner=fields[b"owner"].decode(),
            stored=fields[b"stored"] == b"1",
            response=fields[b"response"],
            transcript=fields[b"transcript"],
            context_tokens=int(fields[b"tokens"]),
            pending=tuple(orjson.loads(fields.get(b"pending", b"[]"))),
        )


class CheckpointStore(Protocol):
    """Checkpoints by response id."""

    async def write(self, response_id: str, conversation: Conversation) -> None:
        """Keep ``conversation`` under ``response_id`` for the TTL."""
        ...

    async def read(self, response_id: str) -> Conversation | None:
        """The checkpoint of ``response_id``, or ``None``."""
        ...

    async def delete(self, response_id: str) -> bool:
        """Forget ``response_id``; whether it existed."""
        ...

    def cause(self, response_id: str) -> str | None:
        """Why ``response_id`` is not here, when this process knows: ``evicted`` or
        ``expired``."""
        ...

    async def ping(self) -> None:
        """Raise :class:`CheckpointUnavailable` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class Forgotten:
    """Ids this process saw leave a store, and why (bounded: the oldest are forgotten)."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._causes: OrderedDict[str, str] = OrderedDict()

    def add(self, response_id: str, cause: str) -> None:
        self._causes[response_id] = cause
        self._causes.move_to_end(response_id)
        while len(self._causes) > self.limit:
            self._causes.popitem(last=False)

    def discard(self, response_id: str) -> None:
        self._causes.pop(response_id, None)

    def get(self, response_id: str) -> str | None:
        return self._causes.get(response_id)


class MemoryCheckpoints:
    """Checkpoints in process: at most ``max_bytes`` (least recently used out first,
    counted by ``on_evict``), each for ``ttl_s`` after it was written."""

    def __init__(
        self,
        max_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[int], None] | None = None,
    ):
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_evict = on_evict
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Conversation, float]] = OrderedDict()
        self._forgotten = Forgotten()

    async def write(self, response_id: str, conversation: Conversation) -> None:
        """Keep it; evict beyond ``max_bytes``."""
        previous = self._entries.pop(response_id, None)
        if previous is not None:
            self.bytes -= previous[0].size
        self._entries[response_id] = (conversation, self.clock() + self.ttl_s)
        self.bytes += conversation.size
        self._forgotten.discard(response_id)
        evicted = 0
        while self._entries and self.bytes > self.max_bytes:
            gone_id, (gone, _) = self._entries.popitem(last=False)
            self.bytes -= gone.size
            self._forgotten.add(gone_id, "evicted")
            evicted += 1
        if evicted and self.on_evict is not None:
            self.on_evict(evicted)

    async def read(self, response_id: str) -> Conversation | None:
        """The checkpoint, unless expired (then forgotten as ``expired``)."""
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        conversation, expires = entry
        if self.clock() >= expires:
            del self._entries[response_id]
            self.bytes -= conversation.size
            self._forgotten.add(response_id, "expired")
            return None
        self._entries.move_to_end(response_id)
        return conversation

    async def delete(self, response_id: str) -> bool:
        """Forget it."""
        entry = self._entries.pop(response_id, None)
        if entry is None:
            return False
        self.bytes -= entry[0].size
        return True

    def cause(self, response_id: str) -> str | None:
        """``evicted`` or ``expired`` when this store let it go."""
        return self._forgotten.get(response_id)

    async def ping(self) -> None:
        """Always answers."""

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._entries)


class RedisCheckpoints:
    """Checkpoints in Redis, shared by every replica: one hash per response under
    ``<prefix><id>`` expiring ``ttl_s`` after it was written; every call bounded by
    ``timeout_s`` (a Redis that hangs costs a turn at most that, then counts as down)."""

    def __init__(
        self,
        url: str,
        ttl_s: float = 3600.0,
        *,
        timeout_s: float = 0.5,
        prefix: str = "rig:checkpoint:",
        clock: Callable[[], float] = time.monotonic,
    ):
        import redis.asyncio as redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.prefix = prefix
        self.clock = clock
        self._redis: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._written: OrderedDict[str, float] = OrderedDict()
        """Ids this process wrote and when they expire (bounded), to tell ``expired``."""
        self._written_limit = 100_000

    async def _call(self, work: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout_s):
                return await work
        except (RedisError, OSError, TimeoutError) as exc:
            raise CheckpointUnavailable(f"redis: {type(exc).__name__}") from None

    async def write(self, response_id: str, conversation: Conversation) -> None:
        """HSET and PEXPIRE in one round trip."""
        key = self.prefix + response_id
        ttl_ms = max(1, int(self.ttl_s * 1000))
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping=conversation.fields())  # type: ignore[arg-type]
        pipe.pexpire(key, ttl_ms)
        await self._call(pipe.execute())
        self._written[response_id] = self.clock() + self.ttl_s
        while len(self._written) > self._written_limit:
            self._written.popitem(last=False)

    async def read(self, response_id: str) -> Conversation | None:
        """HGETALL."""
        fields = await self._call(self._redis.hgetall(self.prefix + response_id))
        if not fields:
            return None
        return Conversation.from_fields(fields)

    async def delete(self, response_id: str) -> bool:
        """DEL."""
        return bool(await self._call(self._redis.delete(self.prefix + response_id)))

    def cause(self, response_id: str) -> str | None:
        """``expired`` for an id this process wrote whose TTL has passed."""
        expires = self._written.get(response_id)
        if expires is not None and self.clock() >= expires:
            return "expired"
        return None

    async def ping(self) -> None:
        """PING."""
        await self._call(self._redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_checkpoints(
    url: str | None,
    ttl_s: float,
    *,
    max_bytes: int,
    timeout_s: float = 0.5,
    on_evict: Callable[[int], None] | None = None,
) -> CheckpointStore:
    """The store named by ``url``: ``None``/``memory`` or ``redis://...``."""
    if url is None or url in ("", "memory"):
        return MemoryCheckpoints(max_bytes, ttl_s, on_evict=on_evict)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCheckpoints(url, ttl_s, timeout_s=timeout_s)
    raise ValueError(f"unknown store {url!r}: use 'memory' or a redis:// URL")
