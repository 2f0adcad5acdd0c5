"""Where the gateway checkpoints finished responses so that any replica can continue them.

Every response a WebSocket finished (``store`` true or false) and every HTTP response made
with ``store=true`` is checkpointed: its owner, whether it was stored (only those answer
``GET /v1/responses/{id}``, and only those keep the response object) and the whole
conversation up to it, kept as the JSON bytes they were sent as (no re-encoding, and memory
close to the conversation's size). Two backends:

* :class:`RedisCheckpoints` - a Redis list per conversation thread (one entry per
  response: the items it added) and a hash per response (owner, stored, tokens, response,
  its thread and length), each write sending only what the response added, each read one
  round trip; shared by every replica, so a client that reconnects to another one
  continues;
* :class:`MemoryCheckpoints` - in process, bounded by bytes, the least recently used
  conversation out first, with the same TTL: a reconnect to the same process continues.
  The responses of a conversation share its items (:class:`Conversation` is a chain), so
  a conversation of N responses costs its size once, not N copies.

A conversation left idle is packed (:func:`compact`, on a timer: never on a turn's path):
its chain's items become one zlib blob that the responses of the chain share, unpacked
once by the next turn that reads it (byte for byte what it was); the newest response
drops the ones before it (the blob holds its whole transcript). The in-process store then
keeps the thread's responses as rows of one record (:class:`_PackedResponses`), not an
object each, and rebuilds one when it is read. Sizes and caps count the conversation's
JSON bytes, uncompressed, packed or not.

A checkpoint is keyed by response id alone and names its owner inside: a lookup by
another owner is told apart (counted as ``foreign``) and answered exactly as an unknown
id. Ids are the upstream's or the gateway's own random ids, never a client's choice.

Both backends raise :class:`CheckpointUnavailable` when they cannot answer (Redis down or
slow); :class:`rig.gateway.state.GatewayState` then continues on connection-local state
and counts it.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from rig.errors import RigError

__all__ = [
    "CheckpointStore",
    "CheckpointUnavailable",
    "Conversation",
    "Forgotten",
    "MemoryCheckpoints",
    "Packed",
    "RedisCheckpoints",
    "StoredResponse",
    "compact",
    "exact_bytes",
    "join_arrays",
    "open_checkpoints",
]


class CheckpointUnavailable(RigError):
    """The checkpoint store did not answer (in time)."""


def join_arrays(*arrays: bytes) -> bytes:
    """JSON arrays concatenated without decoding them (``[a] + [b, c]`` -> ``[a,b,c]``)."""
    parts = [array[1:-1] for array in arrays if len(array) > 2]
    return b"[" + b",".join(parts) + b"]"


def exact_bytes(data: bytes) -> bytes:
    """A copy of ``data`` in a block of its own size, for bytes kept long: orjson's output
    sits in the buffer it grew (at least 4 KB: 4.4 KB held for 0.9 KB of JSON)."""
    return bytes(memoryview(data))


def _joined_length(first: int, second: int) -> int:
    """The length of two JSON arrays of these lengths joined by :func:`join_arrays`."""
    if first <= 2:
        return second
    if second <= 2:
        return first
    return first + second - 1


@dataclass(frozen=True, slots=True)
class Packed:
    """What :func:`compact` did to one conversation."""

    plain_bytes: int
    """The conversation's JSON bytes."""
    packed_bytes: int
    """The blob's bytes."""


PACK_LEVEL = 1
"""zlib's level for idle conversations: its fastest (within a tenth of level 6's size on
the bench's agent conversations, in half the time)."""
PACK_WORTH = 0.9
"""A conversation is packed only when the blob is at most this fraction of it."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A finished response and the conversation up to it, as JSON bytes.

    The conversation is a chain: each response holds only the items it added (the
    client's new items and its own output) and the response it continued (``parent``),
    so the responses of one conversation share its earlier items instead of each holding
    a copy; :attr:`transcript` joins them when asked. One read back from Redis is flat
    (``parent`` ``None``, ``items`` the whole conversation).

    An idle chain is packed in place (:func:`compact`): every response of it keeps its
    sizes, drops its ``items`` and shares one zlib blob of the newest one's transcript
    (``packed``), which holds each of theirs as a prefix; the newest one drops its
    ``parent`` (and ``parent_id``), so what holds it (a connection) no longer keeps the
    others alive, and its first read unpacks its whole transcript as its items; an earlier
    one, if anything still holds it, unpacks its chain as before (:meth:`transcript_with`).
    Packing changes no answer: only ``items``, ``packed``, ``parent`` and ``parent_id``,
    which nothing but this class reads after the response was recorded.
    """

    owner: str
    """Who created it (:func:`rig.conversation.owner_id`)."""
    stored: bool
    """Created with ``store=true``: retrievable with ``GET /v1/responses/{id}``."""
    response: bytes
    """The response object, kept only when ``stored`` (nothing else reads it); ``b""``."""
    items: bytes
    """A JSON array: the items this response added to its parent's conversation."""
    context_tokens: int
    pending: tuple[str, ...] = ()
    """Call ids of its output's client-run tool calls, awaiting their outputs (read at
    record time, so a continuation checks pairing without decoding the response)."""
    parent: Conversation | None = field(default=None, repr=False)
    """The response this one continued, while this process holds it."""
    parent_id: str | None = None
    """Its id (``previous_response_id``)."""
    packed: bytes | None = field(default=None, repr=False, compare=False)
    """While packed: the zlib blob of a transcript that starts with this one's (``items``
    is ``b""`` then)."""
    transcript_bytes: int = field(init=False)
    """The length of :attr:`transcript`."""

    def __post_init__(self) -> None:
        before = self.parent.transcript_bytes if self.parent is not None else 2
        object.__setattr__(self, "transcript_bytes", _joined_length(before, len(self.items)))

    @property
    def transcript(self) -> bytes:
        """A JSON array: every item of the conversation, this response's output included."""
        return self.transcript_with(b"[]")

    def transcript_with(self, added: bytes) -> bytes:
        """The conversation followed by the items of the JSON array ``added``, joined in
        one copy (unpacking it first if it was packed)."""
        pieces = [added]
        node: Conversation | None = self
        while node is not None:
            if node.packed is not None:
                node._unpack()
            pieces.append(node.items)
            node = node.parent
        pieces.reverse()
        return join_arrays(*pieces)

    @classmethod
    def packed_view(
        cls,
        *,
        owner: str,
        stored: bool,
        response: bytes,
        context_tokens: int,
        pending: tuple[str, ...],
        blob: bytes,
        transcript_bytes: int,
    ) -> Conversation:
        """A packed response rebuilt from what :class:`_PackedResponses` keeps of it: no
        parent, its transcript the first ``transcript_bytes`` of ``blob``'s (unpacked flat
        by its first read)."""
        made = cls(
            owner=owner,
            stored=stored,
            response=response,
            items=b"",
            context_tokens=context_tokens,
            pending=pending,
            packed=blob,
        )
        object.__setattr__(made, "transcript_bytes", transcript_bytes)
        return made

    def _unpack(self) -> None:
        """Give this response and every packed one before it their items back: each blob
        decompressed once, each response's items cut from it by the lengths of its
        transcript and its parent's."""
        plain: dict[int, bytes] = {}
        node: Conversation | None = self
        while node is not None:
            blob = node.packed
            if blob is not None:
                whole = plain.get(id(blob))
                if whole is None:
                    whole = plain[id(blob)] = zlib.decompress(blob)
                parent = node.parent
                start = parent.transcript_bytes if parent is not None else 2
                end = node.transcript_bytes
                if end <= 2 or end == start:
                    items = b"[]"
                elif start <= 2:
                    items = whole[: end - 1] + b"]"
                else:
                    items = b"[" + whole[start : end - 1] + b"]"
                object.__setattr__(node, "items", items)
                object.__setattr__(node, "packed", None)
            node = node.parent

    @property
    def own_bytes(self) -> int:
        """Bytes this response holds itself (its parent's are its parent's)."""
        return len(self.response) + len(self.items)

    @property
    def size(self) -> int:
        """Bytes of the whole conversation and response: what it weighs alone, held by one
        connection or written as one checkpoint."""
        return len(self.response) + self.transcript_bytes

    def response_object(self) -> dict[str, Any]:
        """The response object, decoded."""
        value: dict[str, Any] = orjson.loads(self.response)
        return value

    def fields(self) -> dict[str, bytes]:
        """What a Redis checkpoint keeps of it beside its items (which go to its thread)."""
        return {
            "owner": self.owner.encode(),
            "stored": b"1" if self.stored else b"0",
            "tokens": str(self.context_tokens).encode(),
            "pending": orjson.dumps(self.pending),
            "response": self.response,
        }

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes], items: bytes) -> Conversation:
        """Inverse of :meth:`fields`, with ``items`` the whole conversation (flat: no
        parent)."""
        return cls(
            owner=fields[b"owner"].decode(),
            stored=fields[b"stored"] == b"1",
            response=fields[b"response"],
            items=items,
            context_tokens=int(fields[b"tokens"]),
            pending=tuple(orjson.loads(fields.get(b"pending", b"[]"))),
        )


def compact(conversation: Conversation, level: int = PACK_LEVEL) -> Packed | None:
    """Pack an idle conversation: ``conversation`` and every response before it drop their
    items and share one zlib blob of its transcript (see :class:`Conversation`). ``None``
    when there was nothing to do: already packed, empty, or not worth it (the blob above
    :data:`PACK_WORTH` of the JSON)."""
    if conversation.packed is not None:
        return None
    whole = conversation.transcript
    if len(whole) <= 2:
        return None
    blob = zlib.compress(whole, level)
    if len(blob) > PACK_WORTH * len(whole):
        return None
    node: Conversation | None = conversation
    while node is not None:
        object.__setattr__(node, "items", b"")
        object.__setattr__(node, "packed", blob)
        node = node.parent
    # The blob holds the whole transcript: the head no longer needs the responses before
    # it (whoever else holds one still reads it whole, its own chain unchanged).
    object.__setattr__(conversation, "parent", None)
    object.__setattr__(conversation, "parent_id", None)
    return Packed(len(whole), len(blob))


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What ``GET`` and ``DELETE /v1/responses/{id}`` need of a checkpoint: its owner,
    whether it was stored, and the response object's JSON (empty unless stored) - not its
    conversation."""

    owner: str
    stored: bool
    response: bytes

    def response_object(self) -> dict[str, Any]:
        """The response object, decoded."""
        value: dict[str, Any] = orjson.loads(self.response)
        return value


class CheckpointStore(Protocol):
    """Checkpoints by response id."""

    async def write(self, response_id: str, conversation: Conversation) -> int:
        """Keep ``conversation`` under ``response_id`` for the TTL; the bytes written."""
        ...

    async def read(self, response_id: str) -> Conversation | None:
        """The checkpoint of ``response_id``, or ``None``."""
        ...

    async def read_response(self, response_id: str) -> StoredResponse | None:
        """The owner, stored flag and response object of ``response_id``, without its
        conversation; or ``None``."""
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


_RECORD = struct.Struct("<dqqI")
"""What a packed thread keeps of each response in its table: when it expires, its
transcript's length, its context tokens and which of the thread's blobs holds it."""


class _PackedResponses:
    """The packed responses of one thread, kept as one record instead of a
    :class:`Conversation` each: their ids (by position), a table of fixed-size rows
    (:data:`_RECORD`), the blobs that hold their transcripts (each a prefix of one), the
    pending call ids of them all as one JSON array, and the response objects of the stored
    ones. A read rebuilds the response (:meth:`Conversation.packed_view`); one forgotten
    alone (expired, deleted) leaves a hole (``None`` in ``ids``)."""

    __slots__ = ("blobs", "ids", "index", "owner", "pending", "present", "responses", "table")

    INDEXED = 32
    """Past this many ids a dict finds a position (below, a scan of the list)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.ids: list[str | None] = []
        self.index: dict[str, int] | None = None
        self.table = b""
        self.blobs: list[bytes] = []
        self.pending = b""
        """``[[call ids], ...]`` by position, or ``b""`` when none has any."""
        self.responses: dict[int, bytes] | None = None
        self.present = 0

    def position(self, response_id: str) -> int:
        if self.index is not None:
            return self.index[response_id]
        return self.ids.index(response_id)

    def ids_present(self) -> list[str]:
        return [i for i in self.ids if i is not None]

    def expires(self, position: int) -> float:
        expires: float = _RECORD.unpack_from(self.table, position * _RECORD.size)[0]
        return expires

    def row(self, position: int) -> tuple[float, int, int, int]:
        found: tuple[float, int, int, int] = _RECORD.unpack_from(
            self.table, position * _RECORD.size
        )
        return found

    def conversation(self, position: int) -> Conversation:
        """The response at ``position``, rebuilt (a new object each time)."""
        _, length, tokens, blob = self.row(position)
        pending = tuple(orjson.loads(self.pending)[position]) if self.pending else ()
        response = self.responses.get(position) if self.responses is not None else None
        return Conversation.packed_view(
            owner=self.owner,
            stored=response is not None,
            response=response or b"",
            context_tokens=tokens,
            pending=pending,
            blob=self.blobs[blob],
            transcript_bytes=length,
        )

    def remove(self, position: int) -> None:
        response_id = self.ids[position]
        self.ids[position] = None
        self.present -= 1
        if self.index is not None and response_id is not None:
            del self.index[response_id]
        if self.responses is not None:
            self.responses.pop(position, None)

    def add(self, moving: list[tuple[str, Conversation, float, str | None]]) -> None:
        """Take these live responses (packed, this owner's; parents before children): each
        keeps its blob, and the rows of the response it continued, and of the ones before
        that (a prefix of it in the same blob), move to the newer blob that holds them all,
        so a conversation packed again leaves one blob, not one per idle spell."""
        table = list(_RECORD.iter_unpack(self.table))
        blobs = self.blobs
        numbers = {id(blob): number for number, blob in enumerate(blobs)}
        pending = orjson.loads(self.pending) if self.pending else None
        for response_id, conversation, expires, parent_id in moving:
            blob = conversation.packed
            assert blob is not None
            number = numbers.get(id(blob))
            if number is None:
                number = numbers[id(blob)] = len(blobs)
                blobs.append(blob)
            if parent_id is not None:
                at = self._position_or_none(parent_id)
                if at is not None:
                    _, parent_length, _, old = table[at]
                    if old != number:
                        for row_at, (exp, length, tokens, in_blob) in enumerate(table):
                            if in_blob == old and length <= parent_length:
                                table[row_at] = (exp, length, tokens, number)
            position = len(self.ids)
            self.ids.append(response_id)
            if self.index is not None:
                self.index[response_id] = position
            self.present += 1
            table.append(
                (expires, conversation.transcript_bytes, conversation.context_tokens, number)
            )
            if conversation.pending or pending is not None:
                if pending is None:
                    pending = [[] for _ in range(position)]
                pending.append(list(conversation.pending))
            if conversation.stored:
                if self.responses is None:
                    self.responses = {}
                self.responses[position] = conversation.response
        if pending is not None:
            pending.extend([] for _ in range(len(self.ids) - len(pending)))
        # Blobs no row uses any more are dropped, the others renumbered.
        used = sorted({row[3] for row in table})
        renumber = {old: new for new, old in enumerate(used)}
        self.blobs = [blobs[old] for old in used]
        self.table = b"".join(
            _RECORD.pack(exp, length, tokens, renumber[number])
            for exp, length, tokens, number in table
        )
        self.pending = exact_bytes(orjson.dumps(pending)) if pending is not None else b""
        if self.index is None and len(self.ids) > self.INDEXED:
            self.index = {i: at for at, i in enumerate(self.ids) if i is not None}

    def _position_or_none(self, response_id: str) -> int | None:
        try:
            return self.position(response_id)
        except (KeyError, ValueError):
            return None


class _Thread:
    """The responses of one conversation held in process (a tree: a continuation of an
    earlier response branches it), and the bytes they hold together: those written since
    it was last packed as they came (``live``: the conversation, when it expires, the id
    of the response it continued when that is in this thread), the packed ones in one
    record (``packed``)."""

    __slots__ = ("bytes", "live", "packed")

    def __init__(self) -> None:
        self.bytes = 0
        self.live: dict[str, tuple[Conversation, float, str | None]] = {}
        self.packed: _PackedResponses | None = None

    def ids(self) -> list[str]:
        held = list(self.live)
        if self.packed is not None:
            held += self.packed.ids_present()
        return held

    def __bool__(self) -> bool:
        return bool(self.live) or (self.packed is not None and self.packed.present > 0)


class MemoryCheckpoints:
    """Checkpoints in process: at most ``max_bytes``, each for ``ttl_s`` after it was
    written.

    The responses of a conversation share its earlier items (:class:`Conversation` is a
    chain), so the bytes are counted, and evicted, by conversation: a *thread* holds every
    response of one conversation this store indexes, and what they hold together; the
    least recently used thread goes first, all its responses with it (counted by
    ``on_evict``). A response past its TTL is forgotten alone; its bytes stay counted
    while a later response of its thread (which still holds them) is indexed. A thread
    not written for ``compact_after_s`` is packed by :meth:`compact_idle` (bytes are
    counted uncompressed, packed or not): its responses' chains share a blob, and its
    responses become rows of one record (:class:`_PackedResponses`), rebuilt when read.
    """

    def __init__(
        self,
        max_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[int], None] | None = None,
        compact_after_s: float = 10.0,
    ):
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_evict = on_evict
        self.compact_after_s = compact_after_s
        self.bytes = 0
        self._entries: dict[str, _Thread] = {}
        """Every response id held, and its thread."""
        self._threads: OrderedDict[_Thread, None] = OrderedDict()
        """Least recently used first."""
        self._unpacked: OrderedDict[_Thread, float] = OrderedDict()
        """Threads written since they were last packed, and when: the oldest first."""
        self._forgotten = Forgotten()

    async def write(self, response_id: str, conversation: Conversation) -> int:
        """Keep it in its parent's thread (a new one when the parent is not here); evict
        beyond ``max_bytes``. The bytes it added to the store."""
        if response_id in self._entries:
            self._remove(response_id)
        parent_id = conversation.parent_id
        thread = None
        if parent_id is not None and conversation.parent is not None:
            thread = self._entries.get(parent_id)
        if thread is None:
            thread = _Thread()
            self._threads[thread] = None
            added = conversation.size  # a new thread holds the whole conversation
            parent_id = None
        else:
            added = conversation.own_bytes
        self._entries[response_id] = thread
        thread.live[response_id] = (conversation, self.clock() + self.ttl_s, parent_id)
        thread.bytes += added
        self.bytes += added
        self._threads.move_to_end(thread)
        self._unpacked[thread] = self.clock()
        self._unpacked.move_to_end(thread)
        self._forgotten.discard(response_id)
        evicted = 0
        while self._threads and self.bytes > self.max_bytes:
            oldest = next(iter(self._threads))
            for gone_id in oldest.ids():
                del self._entries[gone_id]
                self._forgotten.add(gone_id, "evicted")
                evicted += 1
            oldest.live.clear()
            oldest.packed = None
            self._drop_thread(oldest)
        if evicted and self.on_evict is not None:
            self.on_evict(evicted)
        return added

    async def read(self, response_id: str) -> Conversation | None:
        """The checkpoint, unless expired (then forgotten as ``expired``)."""
        thread = self._entries.get(response_id)
        if thread is None:
            return None
        live = thread.live.get(response_id)
        if live is not None:
            expires = live[1]
        else:
            assert thread.packed is not None
            position = thread.packed.position(response_id)
            expires = thread.packed.expires(position)
        if self.clock() >= expires:
            self._remove(response_id)
            self._forgotten.add(response_id, "expired")
            return None
        self._threads.move_to_end(thread)
        if live is not None:
            return live[0]
        assert thread.packed is not None
        return thread.packed.conversation(position)

    async def read_response(self, response_id: str) -> StoredResponse | None:
        """:meth:`read`'s owner, stored flag and response object (nothing is unpacked)."""
        found = await self.read(response_id)
        if found is None:
            return None
        return StoredResponse(found.owner, found.stored, found.response)

    async def delete(self, response_id: str) -> bool:
        """Forget it."""
        if response_id not in self._entries:
            return False
        self._remove(response_id)
        return True

    def _remove(self, response_id: str) -> None:
        thread = self._entries.pop(response_id)
        if thread.live.pop(response_id, None) is None:
            assert thread.packed is not None
            thread.packed.remove(thread.packed.position(response_id))
        if not thread:
            self._drop_thread(thread)

    def _drop_thread(self, thread: _Thread) -> None:
        del self._threads[thread]
        self._unpacked.pop(thread, None)
        self.bytes -= thread.bytes

    @property
    def unpacked(self) -> int:
        """Threads written since they were last packed."""
        return len(self._unpacked)

    def compact_idle(self, deadline: float) -> list[Packed]:
        """Pack the threads not written for ``compact_after_s``, the oldest first, until
        ``time.perf_counter()`` passes ``deadline``: each response's chain, the longest
        first (the others of the thread are mostly in it already), then the packed ones
        moved into the thread's record. What was packed."""
        done: list[Packed] = []
        cutoff = self.clock() - self.compact_after_s
        while self._unpacked and time.perf_counter() < deadline:
            thread, written = next(iter(self._unpacked.items()))
            if written > cutoff:
                break
            del self._unpacked[thread]
            heads = [entry[0] for entry in thread.live.values()]
            heads.sort(key=lambda c: c.transcript_bytes, reverse=True)
            for head in heads:
                packed = compact(head)
                if packed is not None:
                    done.append(packed)
            self._collapse(thread)
        return done

    def _collapse(self, thread: _Thread) -> None:
        """The thread's packed live responses into its record (those of its record's
        owner; any other stays live, as does one that was not worth packing)."""
        owner = thread.packed.owner if thread.packed is not None else None
        moving = []
        for response_id, (conversation, expires, parent_id) in thread.live.items():
            if owner is None:
                owner = conversation.owner
            if conversation.packed is not None and conversation.owner == owner:
                moving.append((response_id, conversation, expires, parent_id))
        if not moving:
            return
        if thread.packed is None:
            thread.packed = _PackedResponses(moving[0][1].owner)
        thread.packed.add(moving)
        for response_id, *_ in moving:
            del thread.live[response_id]

    def cause(self, response_id: str) -> str | None:
        """``evicted`` or ``expired`` when this store let it go."""
        return self._forgotten.get(response_id)

    async def ping(self) -> None:
        """Always answers."""

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._entries)


_WRITE_SCRIPT = """
-- KEYS: the response's hash, a new thread's list, [the parent's hash]
-- ARGV: ttl_ms, owner, stored, tokens, pending, response, items, parent_id
-- Returns the response's length in its thread, or -1: the parent cannot be extended
-- (gone, incomplete or another owner's), the caller writes the conversation whole.
local thread = KEYS[2]
local length = 1
if #KEYS == 3 then
  local parent = redis.call('HMGET', KEYS[3], 'owner', 'thread', 'length')
  if parent[1] ~= ARGV[2] or not parent[2] or not parent[3] then
    return -1
  end
  local held = tonumber(parent[3])
  local size = redis.call('LLEN', parent[2])
  if size < held then
    return -1
  end
  if size == held then
    thread = parent[2]
  else
    local first = 0
    while first < held do
      local last = math.min(first + 999, held - 1)
      redis.call('RPUSH', thread, unpack(redis.call('LRANGE', parent[2], first, last)))
      first = last + 1
    end
  end
  length = held + 1
end
redis.call('RPUSH', thread, ARGV[7])
redis.call('PEXPIRE', thread, ARGV[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'stored', ARGV[3], 'tokens', ARGV[4],
  'pending', ARGV[5], 'response', ARGV[6], 'parent', ARGV[8], 'thread', thread,
  'length', length)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return length
"""

_READ_SCRIPT = """
-- KEYS: the response's hash. Returns {hash fields, its thread's first `length` entries},
-- or nil when the hash is gone or its thread no longer holds them all.
local fields = redis.call('HGETALL', KEYS[1])
local thread, length
for i = 1, #fields, 2 do
  if fields[i] == 'thread' then
    thread = fields[i + 1]
  elseif fields[i] == 'length' then
    length = tonumber(fields[i + 1])
  end
end
if not thread or not length then
  return false
end
local items = redis.call('LRANGE', thread, 0, length - 1)
if #items ~= length then
  return false
end
return {fields, items}
"""

_DELETE_SCRIPT = """
-- KEYS: the response's hash. Deletes it, and its entry when that is its thread's tail
-- (no other response's conversation holds it). Returns whether the hash existed.
local held = redis.call('HMGET', KEYS[1], 'thread', 'length')
if held[1] and held[2] and redis.call('LLEN', held[1]) == tonumber(held[2]) then
  redis.call('RPOP', held[1])
end
return redis.call('DEL', KEYS[1])
"""


class RedisCheckpoints:
    """Checkpoints in Redis, shared by every replica, written as deltas.

    A conversation's items live in a *thread*, a Redis list (``<prefix>thread:<random>``)
    with one entry per response: the JSON array of the items that response added. Each
    response has a hash (``<prefix>response:<id>``: owner, stored, tokens, pending, the
    response object when stored, its parent's id, its thread's key and its ``length``, how
    many of the thread's first entries make its conversation). A write sends only the
    response's own items and fields, so its bytes do not grow with the conversation:

    * a response continuing its thread's tail (the usual turn) appends its entry;
    * one continuing an earlier response (a branch) starts a new thread, the parent's
      entries copied inside Redis;
    * a new conversation, or one whose parent is not in Redis (its write failed, it
      expired, or another owner's), starts a new thread holding the whole conversation in
      one entry - written whole once, then deltas again.

    Each write is one Lua script (atomic: two replicas extending one response cannot both
    append) and sets the TTL of the hash and of the thread it extends, so a thread lives
    at least as long as the hashes that use it. A read is one script too - the hash, then
    the thread's first ``length`` entries, joined - and answers ``None`` unless both are
    whole: an expired or evicted piece is never a shorter conversation. Every call is
    bounded by ``timeout_s`` (a Redis that hangs costs a turn at most that, then counts
    as down). The scripts read keys named in a hash, so the store needs one Redis (with
    replicas if wanted), not a Redis Cluster.
    """

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
        self._write = self._redis.register_script(_WRITE_SCRIPT)
        self._read = self._redis.register_script(_READ_SCRIPT)
        self._delete = self._redis.register_script(_DELETE_SCRIPT)
        self._written: OrderedDict[str, float] = OrderedDict()
        """Ids this process wrote and when they expire (bounded), to tell ``expired``."""
        self._written_limit = 100_000

    def response_key(self, response_id: str) -> str:
        """The Redis key of a response's hash."""
        return f"{self.prefix}response:{response_id}"

    def _new_thread_key(self) -> str:
        return f"{self.prefix}thread:{secrets.token_hex(8)}"

    async def _call(self, work: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout_s):
                return await work
        except (RedisError, OSError, TimeoutError) as exc:
            raise CheckpointUnavailable(f"redis: {type(exc).__name__}") from None

    async def write(self, response_id: str, conversation: Conversation) -> int:
        """One script: the response's own items appended to its parent's thread (or a
        branch of it); the whole conversation in a new thread when there is no parent in
        Redis to extend (then a second round trip, within the same timeout). The bytes
        sent: its items (or the whole conversation) and response object."""
        sent = await self._call(self._write_delta(response_id, conversation))
        self._written[response_id] = self.clock() + self.ttl_s
        while len(self._written) > self._written_limit:
            self._written.popitem(last=False)
        return int(sent)

    async def _write_delta(self, response_id: str, conversation: Conversation) -> int:
        fields = conversation.fields()
        ttl_ms = max(1, int(self.ttl_s * 1000))
        head: list[bytes | int | str] = [
            ttl_ms,
            fields["owner"],
            fields["stored"],
            fields["tokens"],
            fields["pending"],
            fields["response"],
        ]
        keys = [self.response_key(response_id), self._new_thread_key()]
        parent_id = conversation.parent_id if conversation.parent is not None else None
        if parent_id is not None:
            args = [*head, conversation.items, parent_id]
            length = await self._write(keys=[*keys, self.response_key(parent_id)], args=args)
            if length != -1:
                return len(conversation.response) + len(conversation.items)
        whole = conversation.transcript
        await self._write(keys=keys, args=[*head, whole, parent_id or ""])
        return len(conversation.response) + len(whole)

    async def read(self, response_id: str) -> Conversation | None:
        """One script: the hash and its thread's entries, or ``None`` unless both are
        whole."""
        found = await self._call(self._read(keys=[self.response_key(response_id)]))
        if not found:
            return None
        flat, entries = found
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        return Conversation.from_fields(fields, join_arrays(*entries))

    async def read_response(self, response_id: str) -> StoredResponse | None:
        """Three fields of the response's hash (one ``HMGET``), not its thread: what a
        ``GET`` costs does not grow with the conversation. ``None`` when the hash is
        gone."""
        key = self.response_key(response_id)
        owner, stored, response = await self._call(
            self._redis.hmget(key, ["owner", "stored", "response"])
        )
        if owner is None or stored is None:
            return None
        return StoredResponse(owner.decode(), stored == b"1", response or b"")

    async def delete(self, response_id: str) -> bool:
        """One script: the hash, and its thread's tail entry when it is its own."""
        return bool(await self._call(self._delete(keys=[self.response_key(response_id)])))

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
    compact_after_s: float = 10.0,
) -> CheckpointStore:
    """The store named by ``url``: ``None``/``memory`` or ``redis://...``."""
    if url is None or url in ("", "memory"):
        return MemoryCheckpoints(
            max_bytes, ttl_s, on_evict=on_evict, compact_after_s=compact_after_s
        )
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCheckpoints(url, ttl_s, timeout_s=timeout_s)
    raise ValueError(f"unknown store {url!r}: use 'memory' or a redis:// URL")
