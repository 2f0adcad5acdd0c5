"""The gateway's conversation state: connection-local memory on the hot path, checkpoints
behind it, and why a continuation was or was not found.

A continuation (``previous_response_id``) resolves in this order:

1. the WebSocket's own memory (:class:`SessionMemory`): the latest response of each of its
   lanes, ``store=false`` included - no store round trip;
2. the checkpoints (:mod:`rig.gateway.checkpoints`): any response the gateway finished,
   on any replica sharing the store - after a reconnect this is a *resume*;
3. otherwise ``previous_response_not_found``, the same answer whatever the cause, counted
   by cause: ``evicted`` (pushed out by the memory cap), ``expired`` (past its TTL),
   ``foreign`` (another owner's), ``unavailable`` (the checkpoint store did not answer),
   ``unknown``.

The guarantee (docs/gateway.md): a response is checkpointed *before* its terminal event is
sent, so a client that saw ``response.completed`` can continue it on any replica until the
TTL, unless the checkpoint store was unavailable at that moment (counted in
``checkpoint_failures`` and shown by ``/health``); then only the connection that made it
can, and another gets ``previous_response_not_found`` (the client resends in full) - never
a wrong conversation.

Memory is bounded per process (``max_bytes`` over every connection's held conversations,
least recently used out first); a connection that closes releases what it held (its
responses live on in the checkpoints).

Idle conversations are packed (:class:`IdleCompaction`: a loop timer, never a turn's
work): one not continued for ``compact_after_s`` becomes one zlib blob, shared by the
connection's memory and the in-process checkpoints, and the next turn unpacks it once,
byte for byte. Nothing above changes: the same conversation is found, owned, evicted and
expired as before. Every size counts the conversation's JSON bytes uncompressed
(``SessionMemory.bytes``, ``/stats`` ``session_bytes``, the caps), packed or not: a cap
bounds conversations as a turn will need them, and what is held is at most that.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from rig.conversation import check_pairing
from rig.gateway.checkpoints import (
    CheckpointStore,
    CheckpointUnavailable,
    Conversation,
    Forgotten,
    MemoryCheckpoints,
    Packed,
    StoredResponse,
    compact,
)
from rig.gateway.stats import GatewayStats
from rig.protocol.errors import (
    NotFoundError,
    PreviousResponseNotFoundError,
    ServiceUnavailableError,
)

__all__ = ["GatewayState", "IdleCompaction", "SessionCache", "SessionMemory"]

log = logging.getLogger("rig.gateway")

MISS_CAUSES = ("evicted", "expired", "foreign", "unavailable", "unknown")
"""Why a continuation was not found (all answered alike)."""


class SessionMemory:
    """Every live connection's latest response per lane, under one byte cap for the
    process (least recently used out first) and a time to live; one not replaced for
    ``compact_after_s`` is packed by :meth:`compact_idle`."""

    def __init__(
        self,
        max_bytes: int = 1024 * 1024 * 1024,
        ttl_s: float = 3600.0,
        *,
        max_lanes: int = 64,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[int], None] | None = None,
        compact_after_s: float = 10.0,
    ):
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.max_lanes = max_lanes
        self.clock = clock
        self.on_evict = on_evict
        self.compact_after_s = compact_after_s
        self.bytes = 0
        """Conversation bytes held (uncompressed, packed or not)."""
        self._held: OrderedDict[tuple[int, str], tuple[str, Conversation, float]] = OrderedDict()
        self._unpacked: OrderedDict[tuple[int, str], float] = OrderedDict()
        """Lanes whose latest response is not packed yet, and when it came: oldest first."""
        self._lanes: dict[int, dict[str, None]] = {}
        self._causes = Forgotten()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._held)

    def cache(self) -> SessionCache:
        """A new connection's view."""
        connection = next(self._ids)
        self._lanes[connection] = {}
        return SessionCache(self, connection)

    def get(self, connection: int, response_id: str) -> Conversation | None:
        """The connection's held response ``response_id`` (the latest of some lane)."""
        for lane in self._lanes.get(connection, ()):
            key = (connection, lane)
            held_id, conversation, expires = self._held[key]
            if held_id != response_id:
                continue
            if self.clock() >= expires:
                self._drop(key)
                self._causes.add(response_id, "expired")
                return None
            self._held.move_to_end(key)
            return conversation
        return None

    def put(self, connection: int, lane: str, response_id: str, conversation: Conversation) -> None:
        """Make ``response_id`` the latest of the connection's ``lane``; evict beyond the
        cap (its lanes, then the process's)."""
        lanes = self._lanes.setdefault(connection, {})
        key = (connection, lane)
        if key in self._held:
            self._drop(key)
        lanes[lane] = None
        now = self.clock()
        self._held[key] = (response_id, conversation, now + self.ttl_s)
        self._unpacked[key] = now
        self.bytes += conversation.size
        evicted = 0
        while len(lanes) > self.max_lanes:
            oldest = next(iter(lanes))
            self._causes.add(self._held[(connection, oldest)][0], "evicted")
            self._drop((connection, oldest))
            evicted += 1
        while self._held and self.bytes > self.max_bytes:
            oldest_key = next(iter(self._held))
            self._causes.add(self._held[oldest_key][0], "evicted")
            self._drop(oldest_key)
            evicted += 1
        if evicted and self.on_evict is not None:
            self.on_evict(evicted)

    def release(self, connection: int) -> None:
        """The connection closed: forget what it held (checkpoints keep it)."""
        for lane in list(self._lanes.pop(connection, ())):
            self._drop((connection, lane), unlink=False)

    def cause(self, response_id: str) -> str | None:
        """``evicted`` or ``expired`` for an id this memory let go."""
        return self._causes.get(response_id)

    def _drop(self, key: tuple[int, str], unlink: bool = True) -> None:
        _, conversation, _ = self._held.pop(key)
        self._unpacked.pop(key, None)
        self.bytes -= conversation.size
        if unlink:
            self._lanes[key[0]].pop(key[1], None)

    @property
    def unpacked(self) -> int:
        """Lanes whose latest response is not packed yet."""
        return len(self._unpacked)

    def compact_idle(self, deadline: float) -> list[Packed]:
        """Pack the conversations not replaced for ``compact_after_s``, the oldest first,
        until ``time.perf_counter()`` passes ``deadline``. What was packed."""
        done: list[Packed] = []
        cutoff = self.clock() - self.compact_after_s
        while self._unpacked and time.perf_counter() < deadline:
            key, since = next(iter(self._unpacked.items()))
            if since > cutoff:
                break
            del self._unpacked[key]
            packed = compact(self._held[key][1])
            if packed is not None:
                done.append(packed)
        return done


class SessionCache:
    """One connection's view of :class:`SessionMemory`."""

    __slots__ = ("connection", "memory")

    def __init__(self, memory: SessionMemory, connection: int):
        self.memory = memory
        self.connection = connection

    def get(self, response_id: str) -> Conversation | None:
        """This connection's held ``response_id``."""
        return self.memory.get(self.connection, response_id)

    def put(self, lane: str, response_id: str, conversation: Conversation) -> None:
        """The latest response of ``lane``."""
        self.memory.put(self.connection, lane, response_id, conversation)

    def close(self) -> None:
        """Release what this connection held."""
        self.memory.release(self.connection)


class GatewayState:
    """Resolution, recording and retrieval over :class:`SessionMemory` and a checkpoint
    store, counting every outcome in :class:`GatewayStats`."""

    def __init__(
        self,
        memory: SessionMemory,
        checkpoints: CheckpointStore,
        stats: GatewayStats,
        *,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.memory = memory
        self.checkpoints = checkpoints
        self.stats = stats
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._down_until = 0.0
        self.checkpoint_up = True
        """Whether the checkpoint store answered last time it was asked."""

    # -- the checkpoint store, guarded --------------------------------------------------

    def _usable(self) -> bool:
        return self.checkpoint_up or self.clock() >= self._down_until

    def _down(self, error: CheckpointUnavailable) -> None:
        if self.checkpoint_up:
            log.warning("checkpoint store unavailable (%s): continuing on connection memory", error)
        self.checkpoint_up = False
        self._down_until = self.clock() + self.retry_after_s

    def _up(self) -> None:
        if not self.checkpoint_up:
            log.warning("checkpoint store available again")
        self.checkpoint_up = True

    async def probe(self) -> bool:
        """Ask the checkpoint store (for ``/health``); whether it answered."""
        try:
            await self.checkpoints.ping()
        except CheckpointUnavailable as error:
            self._down(error)
            return False
        self._up()
        return True

    # -- continuations -------------------------------------------------------------------

    def begin(self, items: Sequence[dict[str, Any]]) -> None:
        """Check a new conversation's items."""
        check_pairing(items)

    async def resume(
        self,
        previous_id: str,
        items: Sequence[dict[str, Any]],
        *,
        owner: str,
        cache: SessionCache | None = None,
    ) -> Conversation:
        """The conversation ``previous_id`` continues, checked against the new ``items``;
        :class:`PreviousResponseNotFoundError` whatever the cause of a miss."""
        conversation = cache.get(previous_id) if cache is not None else None
        if conversation is not None:
            self.stats.add("hits_connection")
        else:
            conversation = await self._from_checkpoint(previous_id, owner)
            if cache is not None:
                self.stats.add("resumes")
        check_pairing(items, conversation.pending)
        return conversation

    async def _from_checkpoint(self, response_id: str, owner: str) -> Conversation:
        cause = "unknown"
        found: Conversation | None = None
        if self._usable():
            try:
                found = await self.checkpoints.read(response_id)
            except CheckpointUnavailable as error:
                self._down(error)
                cause = "unavailable"
            else:
                self._up()
        else:
            cause = "unavailable"
        if found is not None and found.owner == owner:
            self.stats.add("hits_checkpoint")
            return found
        if found is not None:
            cause = "foreign"
        elif cause == "unknown":
            cause = (
                self.memory.cause(response_id) or self.checkpoints.cause(response_id) or "unknown"
            )
        self.stats.add(f"misses_{cause}")
        self.stats.add("misses_not_found")
        raise PreviousResponseNotFoundError(response_id)

    async def record(
        self,
        response_id: str,
        conversation: Conversation,
        *,
        cache: SessionCache | None = None,
        lane: str = "",
    ) -> None:
        """A response finished: held by its connection (WebSocket), and checkpointed -
        every WebSocket response, and HTTP ones created with ``store=true``."""
        if cache is not None:
            cache.put(lane, response_id, conversation)
        elif not conversation.stored:
            return  # stateless HTTP: nothing to continue
        if not self._usable():
            self.stats.add("checkpoint_failures")
            return
        started = time.perf_counter()
        try:
            written = await self.checkpoints.write(response_id, conversation)
        except CheckpointUnavailable as error:
            self._down(error)
            self.stats.add("checkpoint_failures")
            return
        self._up()
        elapsed = time.perf_counter() - started
        self.stats.add("checkpoint_writes")
        self.stats.add("checkpoint_bytes", written)
        self.stats.add("checkpoint_us", int(elapsed * 1e6))
        self.stats.observe("checkpoint_seconds", elapsed)

    # -- stored responses ---------------------------------------------------------------------

    async def retrieve(self, owner: str, response_id: str) -> StoredResponse:
        """``GET /v1/responses/{id}``: the caller's stored response, else 404."""
        found = await self._stored(owner, response_id)
        if found is None:
            raise NotFoundError(f"Response with id '{response_id}' not found.")
        return found

    async def delete(self, owner: str, response_id: str) -> None:
        """``DELETE /v1/responses/{id}``."""
        if await self._stored(owner, response_id) is None:
            raise NotFoundError(f"Response with id '{response_id}' not found.")
        try:
            await self.checkpoints.delete(response_id)
        except CheckpointUnavailable as error:
            self._down(error)
            raise _unavailable() from None

    async def _stored(self, owner: str, response_id: str) -> StoredResponse | None:
        try:
            found = await self.checkpoints.read_response(response_id)
        except CheckpointUnavailable as error:
            self._down(error)
            raise _unavailable() from None
        if found is None or found.owner != owner or not found.stored:
            return None
        return found


class IdleCompaction:
    """Packs idle conversations on a loop timer, off every turn's path: every
    ``interval_s`` a slice of at most ``slice_s`` of work over the connections' memory and
    the in-process checkpoints (oldest first), the next slice ``pause_s`` later while
    some are left (so a backlog takes at most ``slice_s / (slice_s + pause_s)`` of the
    loop). Once a backlog is done and it released at least ``trim_bytes``, the allocator
    is asked to return its free pages (glibc's ``malloc_trim``; elsewhere nothing): the
    freed blocks are scattered between live ones, so the process would otherwise keep
    them until it allocates again."""

    def __init__(
        self,
        memory: SessionMemory,
        checkpoints: CheckpointStore,
        stats: GatewayStats,
        *,
        interval_s: float = 1.0,
        slice_s: float = 0.005,
        pause_s: float = 0.02,
        trim_bytes: int = 1 << 20,
    ):
        self.memory = memory
        self.checkpoints = checkpoints if isinstance(checkpoints, MemoryCheckpoints) else None
        self.stats = stats
        self.interval_s = interval_s
        self.slice_s = slice_s
        self.pause_s = pause_s
        self.trim_bytes = trim_bytes
        self._released = 0
        self._timer: asyncio.TimerHandle | None = None
        self._trim = _malloc_trim()

    @property
    def backlog(self) -> int:
        """Conversations (and checkpoint threads) not packed yet, idle or not."""
        threads = self.checkpoints.unpacked if self.checkpoints is not None else 0
        return self.memory.unpacked + threads

    def start(self) -> None:
        """Arm the timer (on the running loop)."""
        self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def run_slice(self) -> bool:
        """One slice of packing; whether it stopped for time (more may be idle)."""
        started = time.perf_counter()
        deadline = started + self.slice_s
        done = self.memory.compact_idle(deadline)
        if self.checkpoints is not None and time.perf_counter() < deadline:
            done += self.checkpoints.compact_idle(deadline)
        ended = time.perf_counter()
        if done:
            plain = sum(p.plain_bytes for p in done)
            packed = sum(p.packed_bytes for p in done)
            self.stats.add("compactions", len(done))
            self.stats.add("compacted_bytes", plain)
            self.stats.add("compacted_to_bytes", packed)
            self._released += plain - packed
        self.stats.add("compaction_us", int((ended - started) * 1e6))
        return ended >= deadline

    def _tick(self) -> None:
        more = self.run_slice()
        if not more and self._released >= self.trim_bytes and self._trim is not None:
            self._released = 0
            self._trim(0)
        delay = self.pause_s if more else self.interval_s
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` (another C library)."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


def _unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The response store is unavailable; retry later.", code="store_unavailable"
    )
