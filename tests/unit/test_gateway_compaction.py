"""Idle conversations packed in memory (zlib): a packed chain reads back byte for byte, its
responses share one blob and the first read unpacks it; only conversations idle for
``compact_after_s`` are packed; sizes, caps, eviction, the TTL and ownership are what they
were; the in-process checkpoints pack their idle threads; and the timer's slice counts
what it packed."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.gateway import checkpoints
from rig.gateway.checkpoints import Conversation, MemoryCheckpoints, compact
from rig.gateway.state import GatewayState, IdleCompaction, SessionMemory
from rig.gateway.stats import GatewayStats
from rig.protocol.errors import (
    InvalidRequestError,
    NotFoundError,
    PreviousResponseNotFoundError,
)

ALICE = "owner-alice"
BOB = "owner-bob"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _item(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


def _turn(parent: Conversation | None, texts: list[str], parent_id: str | None) -> Conversation:
    return Conversation(
        owner=ALICE,
        stored=False,
        response=b"",
        items=orjson.dumps([_item(text) for text in texts]),
        context_tokens=1,
        parent=parent,
        parent_id=parent_id,
    )


def _chain(
    turns: list[list[str]], parent: Conversation | None = None, parent_id: str | None = None
) -> list[Conversation]:
    """Responses ``a0``, ``a1``... each continuing the one before (the first ``parent``)."""
    made: list[Conversation] = []
    for index, texts in enumerate(turns):
        if made:
            parent, parent_id = made[-1], f"a{index - 1}"
        made.append(_turn(parent, texts, parent_id))
    return made


def _wordy(index: int) -> list[str]:
    return [f"turn {index}: " + "the build failed in step three; " * 20, "ok"]


def _snapshot(made: list[Conversation]) -> list[tuple[bytes, bytes, int]]:
    return [(c.transcript, c.items, c.transcript_bytes) for c in made]


def _same(found: Conversation | None, made: Conversation) -> bool:
    """``found`` answers as ``made`` does (a packed response read back is rebuilt)."""
    assert found is not None
    return (
        found.transcript == made.transcript
        and found.transcript_bytes == made.transcript_bytes
        and found.size == made.size
        and (found.owner, found.stored, found.response) == (made.owner, made.stored, made.response)
        and (found.context_tokens, found.pending) == (made.context_tokens, made.pending)
    )


TEXTS = st.lists(st.lists(st.text(max_size=30), max_size=4), min_size=1, max_size=10)


@given(TEXTS, TEXTS, st.integers(min_value=0, max_value=9))
def test_a_packed_chain_reads_back_byte_for_byte_and_so_does_a_branch(
    first: list[list[str]], more: list[list[str]], fork: int
) -> None:
    made = _chain([[*texts, "padding " * 8] for texts in first])
    before = _snapshot(made)
    assert compact(made[-1], level=9) is not None
    assert all(c.packed is made[-1].packed and c.items == b"" for c in made)
    assert made[-1].parent is None and made[-1].parent_id is None  # cut from the rest
    assert [c.transcript_bytes for c in made] == [b[2] for b in before]
    assert made[min(fork, len(made) - 1)].transcript == before[min(fork, len(made) - 1)][0]
    # Every read unpacked what it met: the earlier responses their own items, the head
    # (no parent now) the whole transcript.
    after = _snapshot(made)
    assert after[:-1] == before[:-1]
    assert after[-1] == (before[-1][0], before[-1][0], before[-1][2])
    assert all(c.packed is None for c in made)
    # Packed again, then continued from an earlier response (a branch): both read whole.
    assert compact(made[-1], level=9) is not None
    branch = _chain(more, parent=made[min(fork, len(made) - 1)], parent_id="fork")
    expected = orjson.loads(made[min(fork, len(made) - 1)].transcript) + [
        _item(text) for texts in more for text in texts
    ]
    assert orjson.loads(branch[-1].transcript) == expected
    assert _snapshot(made) == after


def test_packing_again_after_more_turns_leaves_one_blob() -> None:
    made = _chain([_wordy(i) for i in range(4)])
    compact(made[-1])
    made += _chain([_wordy(i) for i in range(4, 6)], parent=made[-1], parent_id="a3")
    whole = made[-1].transcript
    packed = compact(made[-1])
    assert packed is not None and packed.plain_bytes == len(whole)
    assert packed.packed_bytes < len(whole) / 3
    reachable = []  # what the head keeps alive: its chain since the last packing
    node: Conversation | None = made[-1]
    while node is not None:
        reachable.append(node)
        node = node.parent
    assert reachable == made[-1:] and made[3].parent is None  # cut at each packing
    assert made[4].parent is made[3] and made[3].packed is made[-1].packed
    assert made[-1].transcript == whole


def test_a_conversation_not_worth_packing_is_left_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    noise = base64.b64encode(os.urandom(3000)).decode()  # packs to about 0.76 of it
    made = _chain([[noise]])
    monkeypatch.setattr(checkpoints, "PACK_WORTH", 0.7)
    assert compact(made[0]) is None
    assert made[0].packed is None and made[0].items != b""
    assert compact(_turn(None, [], None)) is None  # empty: nothing to pack


def _memory(clock: Clock, cap: int = 10**9, evicted: list[int] | None = None) -> SessionMemory:
    return SessionMemory(
        cap,
        600.0,
        clock=clock,
        compact_after_s=10.0,
        on_evict=None if evicted is None else evicted.append,
    )


def test_only_conversations_idle_for_compact_after_are_packed_and_bytes_stay_counted() -> None:
    clock = Clock()
    memory = _memory(clock)
    idle, busy = memory.cache(), memory.cache()
    old = _chain([_wordy(i) for i in range(3)])
    idle.put("", "r_old", old[-1])
    clock.now += 9
    new = _chain([_wordy(i) for i in range(3)])
    busy.put("", "r_new", new[-1])
    counted = memory.bytes
    clock.now += 2  # old: idle 11 s; new: 2 s
    packed = memory.compact_idle(time.perf_counter() + 60)
    assert len(packed) == 1 and packed[0].plain_bytes == old[-1].size
    assert old[-1].packed is not None and new[-1].packed is None
    assert memory.bytes == counted  # uncompressed, packed or not
    assert memory.unpacked == 1
    assert memory.compact_idle(time.perf_counter() + 60) == []  # new is not idle yet
    found = idle.get("r_old")
    assert found is old[-1] and found.size == old[-1].size


def test_a_slice_stops_at_its_deadline_and_the_rest_waits_for_the_next() -> None:
    clock = Clock()
    memory = _memory(clock)
    for index in range(3):
        memory.cache().put("", f"r{index}", _chain([_wordy(index)])[-1])
    clock.now += 60
    assert memory.compact_idle(time.perf_counter() - 1) == []  # no time at all
    assert memory.unpacked == 3
    assert len(memory.compact_idle(time.perf_counter() + 60)) == 3
    assert memory.unpacked == 0


def test_a_packed_conversation_is_evicted_and_expired_as_before() -> None:
    clock = Clock()
    evicted: list[int] = []
    first = _chain([_wordy(i) for i in range(2)])
    memory = _memory(clock, cap=int(first[-1].size * 1.5), evicted=evicted)
    cache = memory.cache()
    cache.put("a", "r_a", first[-1])
    clock.now += 60
    assert len(memory.compact_idle(time.perf_counter() + 60)) == 1
    cache.put("b", "r_b", _chain([_wordy(i) for i in range(2)])[-1])  # over the cap
    assert evicted == [1] and memory.cause("r_a") == "evicted"
    assert memory.bytes == memory.get(cache.connection, "r_b").size  # type: ignore[union-attr]
    clock.now += 60
    memory.compact_idle(time.perf_counter() + 60)
    clock.now += 600  # past the TTL
    assert cache.get("r_b") is None and memory.cause("r_b") == "expired"
    assert memory.bytes == 0 and memory.unpacked == 0


def test_a_closed_connection_releases_its_packed_and_unpacked_conversations() -> None:
    clock = Clock()
    memory = _memory(clock)
    cache = memory.cache()
    cache.put("a", "r_a", _chain([_wordy(0)])[-1])
    clock.now += 60
    memory.compact_idle(time.perf_counter() + 60)
    cache.put("b", "r_b", _chain([_wordy(1)])[-1])
    cache.close()
    assert memory.bytes == 0 and len(memory) == 0 and memory.unpacked == 0


def test_a_continuation_after_packing_sends_the_same_context_and_ownership_holds() -> None:
    clock = Clock()
    stats = GatewayStats()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    gateway = GatewayState(_memory(clock), store, stats, clock=clock)
    cache = gateway.memory.cache()
    made = _chain([_wordy(i) for i in range(3)])
    added = orjson.dumps([_item("next")])

    async def scenario() -> None:
        for index, conversation in enumerate(made):
            await gateway.record(f"a{index}", conversation, cache=cache)
        expected = made[-1].transcript_with(added)
        clock.now += 60
        assert len(gateway.memory.compact_idle(time.perf_counter() + 60)) == 1
        assert store.compact_idle(time.perf_counter() + 60) == []  # already packed
        assert made[0].packed is not None
        found = await gateway.resume("a2", [], owner=ALICE, cache=cache)
        assert found.transcript_with(added) == expected
        other = gateway.memory.cache()  # another connection: from the checkpoints
        rebuilt = await gateway.resume("a1", [], owner=ALICE, cache=other)
        assert _same(rebuilt, made[1])
        with pytest.raises(PreviousResponseNotFoundError):
            await gateway.resume("a2", [], owner=BOB, cache=other)

    asyncio.run(scenario())
    assert stats["hits_connection"] == 1 and stats["hits_checkpoint"] == 1
    assert stats["misses_foreign"] == 1


def test_the_checkpoints_pack_idle_threads_and_count_the_same_bytes() -> None:
    clock = Clock()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    made = _chain([_wordy(i) for i in range(4)])
    branch = _chain([_wordy(9)], parent=made[1], parent_id="a1")
    for index, conversation in enumerate(made):
        asyncio.run(store.write(f"a{index}", conversation))
    asyncio.run(store.write("b", branch[0]))
    before = _snapshot([*made, *branch])
    counted = store.bytes
    clock.now += 60
    packed = store.compact_idle(time.perf_counter() + 60)
    assert len(packed) == 2  # the longest chain, then the branch (a0, a1 in both)
    assert all(c.packed is not None for c in [*made, *branch])
    assert store.bytes == counted and store.unpacked == 0
    for index, conversation in enumerate(made):
        assert _same(asyncio.run(store.read(f"a{index}")), conversation)
    assert _same(asyncio.run(store.read("b")), branch[0])
    assert [(c.transcript, c.transcript_bytes) for c in [*made, *branch]] == [
        (t, n) for t, _, n in before
    ]


def test_a_slice_of_the_timer_counts_what_it_packed() -> None:
    clock = Clock()
    stats = GatewayStats()
    memory = _memory(clock)
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    compaction = IdleCompaction(memory, store, stats, slice_s=60.0)
    made = _chain([_wordy(i) for i in range(3)])
    for index, conversation in enumerate(made):
        asyncio.run(store.write(f"a{index}", conversation))
    memory.cache().put("", "a2", made[-1])
    assert compaction.backlog == 2  # the lane and the thread
    clock.now += 60
    assert compaction.run_slice() is False  # done within its time
    assert stats["compactions"] == 1
    assert stats["compacted_bytes"] == len(made[-1].transcript)
    assert 0 < stats["compacted_to_bytes"] < stats["compacted_bytes"] / 3
    assert compaction.backlog == 0


# -- the in-process checkpoints' packed records -------------------------------------------


def _response(
    parent: Conversation | None,
    parent_id: str | None,
    texts: list[str],
    *,
    owner: str = ALICE,
    stored: bool = False,
    pending: tuple[str, ...] = (),
    tokens: int = 1,
) -> Conversation:
    return Conversation(
        owner=owner,
        stored=stored,
        response=orjson.dumps({"id": "r", "texts": texts}) if stored else b"",
        items=orjson.dumps([_item(text) for text in texts]),
        context_tokens=tokens,
        pending=pending,
        parent=parent,
        parent_id=parent_id,
    )


def _answer(found: Conversation | None) -> tuple[object, ...] | None:
    """Everything a read is used for."""
    if found is None:
        return None
    return (
        found.transcript,
        found.transcript_bytes,
        found.size,
        found.owner,
        found.stored,
        found.response,
        found.context_tokens,
        found.pending,
    )


# (continue which earlier response, or None for a new conversation; its texts; stored;
# pending call ids; idle long enough to be packed after it)
STEPS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(min_value=0, max_value=40)),
        st.lists(st.text(max_size=40), max_size=3),
        st.booleans(),
        st.lists(st.text(min_size=1, max_size=12), max_size=2).map(tuple),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


@given(STEPS)
def test_packed_checkpoints_answer_every_read_as_before_and_count_the_same_bytes(
    steps: list[tuple[int | None, list[str], bool, tuple[str, ...], bool]],
) -> None:
    """Conversations and branches written, packed at random moments, continued again
    (from a rebuilt packed response too, as after a reconnect): every id reads back what
    was written, byte for byte, and the bytes counted are the uncompressed ones."""
    clock = Clock()
    store = MemoryCheckpoints(ttl_s=10_000.0, clock=clock, compact_after_s=10.0)
    expected: dict[str, tuple[object, ...] | None] = {}
    ids: list[str] = []

    async def scenario() -> None:
        for index, (parent_at, texts, stored, pending, idle) in enumerate(steps):
            parent_id = ids[parent_at % len(ids)] if parent_at is not None and ids else None
            parent = await store.read(parent_id) if parent_id is not None else None
            made = _response(
                parent,
                parent_id,
                [*texts, "padding " * 8],
                stored=stored,
                pending=pending,
                tokens=index * 1000,
            )
            response_id = f"resp_{index}"
            await store.write(response_id, made)
            ids.append(response_id)
            expected[response_id] = _answer(made)
            counted = store.bytes
            if idle:
                clock.now += 60
                store.compact_idle(time.perf_counter() + 60)
                assert store.unpacked == 0 and store.bytes == counted
            for known in ids:
                assert _answer(await store.read(known)) == expected[known]

    asyncio.run(scenario())


def test_a_thread_packed_again_after_more_turns_keeps_one_blob() -> None:
    clock = Clock()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    made: list[Conversation] = []

    async def turns(count: int) -> None:
        for _ in range(count):
            index = len(made)
            parent = made[-1] if made else None
            parent_id = f"a{index - 1}" if made else None
            made.append(_response(parent, parent_id, _wordy(index), pending=(f"call_{index}",)))
            await store.write(f"a{index}", made[-1])

    async def scenario() -> None:
        await turns(3)
        for _ in range(3):  # idle, packed, continued from the held head: three times
            clock.now += 60
            assert len(store.compact_idle(time.perf_counter() + 60)) == 1
            thread = store._entries["a0"]
            assert not thread.live and thread.packed is not None
            assert len(thread.packed.blobs) == 1 and thread.packed.blobs[0] is made[-1].packed
            await turns(2)
        for index, conversation in enumerate(made):
            assert _answer(await store.read(f"a{index}")) == _answer(conversation)

    asyncio.run(scenario())


def test_a_packed_response_belongs_to_its_owner_and_get_and_delete_still_work() -> None:
    clock = Clock()
    stats = GatewayStats()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    gateway = GatewayState(_memory(clock), store, stats, clock=clock)
    first = _response(None, None, _wordy(0), stored=True)
    second = _response(first, "a0", _wordy(1), stored=False, pending=("call_1",))
    third = _response(second, "a1", _wordy(2), stored=True)

    async def scenario() -> None:
        for index, conversation in enumerate([first, second, third]):
            await store.write(f"a{index}", conversation)  # as a WebSocket's are
        clock.now += 60
        assert len(store.compact_idle(time.perf_counter() + 60)) == 1
        assert not store._entries["a0"].live  # all three packed into the record
        answers = {"a1": [{"type": "function_call_output", "call_id": "call_1", "output": "ok"}]}
        with pytest.raises(InvalidRequestError, match="call_1"):  # its pending call kept
            await gateway.resume("a1", [], owner=ALICE)
        for owner_ok in (True, False):
            owner = ALICE if owner_ok else BOB
            for response_id in ("a0", "a1", "a2"):
                items = answers.get(response_id, [])
                if owner_ok:
                    found = await gateway.resume(response_id, items, owner=owner)
                    assert found.owner == ALICE
                else:
                    with pytest.raises(PreviousResponseNotFoundError):
                        await gateway.resume(response_id, items, owner=owner)
        assert stats["misses_foreign"] == 3
        with pytest.raises(PreviousResponseNotFoundError):  # what an unknown id gets
            await gateway.resume("a9", [], owner=ALICE)
        assert (await gateway.retrieve(ALICE, "a2")).response == third.response
        assert (await gateway.retrieve(ALICE, "a0")).response == first.response
        with pytest.raises(NotFoundError):  # not stored
            await gateway.retrieve(ALICE, "a1")
        with pytest.raises(NotFoundError):  # another owner's
            await gateway.retrieve(BOB, "a0")
        with pytest.raises(NotFoundError):
            await gateway.delete(BOB, "a0")
        await gateway.delete(ALICE, "a0")
        with pytest.raises(NotFoundError):
            await gateway.retrieve(ALICE, "a0")
        # The rest of the conversation is whole: a continuation of a2 sends all of it.
        found = await gateway.resume("a2", [], owner=ALICE)
        assert found.transcript == third.transcript and len(store) == 2

    asyncio.run(scenario())


def test_a_packed_response_expires_alone_and_a_packed_thread_is_evicted_whole() -> None:
    clock = Clock()
    evicted: list[int] = []
    store = MemoryCheckpoints(
        max_bytes=10**9, ttl_s=600.0, clock=clock, compact_after_s=10.0, on_evict=evicted.append
    )
    made = _chain([_wordy(i) for i in range(3)])

    async def scenario() -> None:
        await store.write("a0", made[0])
        clock.now += 100  # a0 expires 100 s before the others
        await store.write("a1", made[1])
        await store.write("a2", made[2])
        counted = store.bytes
        clock.now += 60
        store.compact_idle(time.perf_counter() + 60)
        clock.now += 450  # a0 past its TTL, a1 and a2 not
        assert await store.read("a0") is None and store.cause("a0") == "expired"
        assert _answer(await store.read("a1")) == _answer(made[1])
        assert store.bytes == counted  # a1 and a2 still hold a0's items
        store.max_bytes = counted
        other = _chain([_wordy(9)])[0]
        await store.write("b0", other)  # over the cap: the packed thread goes whole
        assert evicted == [2] and store.cause("a1") == store.cause("a2") == "evicted"
        assert await store.read("a2") is None and store.bytes == other.size
        assert len(store) == 1

    asyncio.run(scenario())


def test_a_thread_of_many_branches_is_indexed_and_answers_each() -> None:
    clock = Clock()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    root = _response(None, None, _wordy(0))
    branches = [_response(root, "root", [f"branch {i}", *_wordy(i)]) for i in range(50)]

    async def scenario() -> None:
        await store.write("root", root)
        for index, branch in enumerate(branches):
            await store.write(f"b{index}", branch)
        clock.now += 60
        store.compact_idle(time.perf_counter() + 60)
        record = store._entries["root"].packed
        assert record is not None and record.index is not None  # past INDEXED
        for index in range(0, 50, 2):
            assert await store.delete(f"b{index}")
        for index, branch in enumerate(branches):
            found = await store.read(f"b{index}")
            assert _answer(found) == (None if index % 2 == 0 else _answer(branch))
        assert _answer(await store.read("root")) == _answer(root)

    asyncio.run(scenario())


def test_a_response_of_another_owner_in_a_thread_stays_a_live_entry() -> None:
    """A thread holds one owner's responses (a continuation is checked against its
    parent's owner); if another's were ever in it, it is not moved into the record."""
    clock = Clock()
    store = MemoryCheckpoints(ttl_s=600.0, clock=clock, compact_after_s=10.0)
    first = _response(None, None, _wordy(0))
    foreign = _response(first, "a0", _wordy(1), owner=BOB)

    async def scenario() -> None:
        await store.write("a0", first)
        await store.write("a1", foreign)
        clock.now += 60
        store.compact_idle(time.perf_counter() + 60)
        thread = store._entries["a0"]
        assert list(thread.live) == ["a1"] and thread.packed is not None
        assert thread.packed.owner == ALICE
        assert (await store.read("a1")).owner == BOB  # type: ignore[union-attr]
        assert _answer(await store.read("a0")) == _answer(first)

    asyncio.run(scenario())
