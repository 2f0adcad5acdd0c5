"""Conversations as chains and the in-process checkpoint store's accounting by conversation:
N responses of one conversation cost its size once; eviction takes a whole conversation;
a response past its TTL is forgotten alone. And the Redis store's delta checkpoints, against a
real redis-server: each write sends only its turn, a read rebuilds the whole conversation in
one round trip or answers not found."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from rig.gateway.checkpoints import (
    CheckpointUnavailable,
    Conversation,
    MemoryCheckpoints,
    RedisCheckpoints,
    StoredResponse,
    join_arrays,
)
from rig.gateway.state import GatewayState, SessionMemory
from rig.gateway.stats import GatewayStats
from rig.protocol.errors import NotFoundError, PreviousResponseNotFoundError
from tests.servers import free_port

OWNER = "owner-alice"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def redis_store(url: str, **kwargs: Any) -> AsyncIterator[RedisCheckpoints]:
    """A :class:`RedisCheckpoints` on ``url``, closed when the block ends."""
    store = RedisCheckpoints(url, **kwargs)
    try:
        yield store
    finally:
        await store.close()


def _item(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


def turn(
    parent: Conversation | None, parent_id: str | None, text: str, stored: bool = False
) -> Conversation:
    return Conversation(
        owner=OWNER,
        stored=stored,
        response=orjson.dumps({"id": "r", "output": []}) if stored else b"",
        items=orjson.dumps([_item(text), _item(text.upper())]),
        context_tokens=1,
        parent=parent,
        parent_id=parent_id,
    )


def chain(store: MemoryCheckpoints, prefix: str, turns: int) -> list[Conversation]:
    """``turns`` responses, each continuing the one before, written to ``store``."""
    made: list[Conversation] = []
    for index in range(turns):
        parent = made[-1] if made else None
        parent_id = f"{prefix}{index - 1}" if made else None
        conversation = turn(parent, parent_id, f"{prefix}-{index}-" + "x" * 50)
        asyncio.run(store.write(f"{prefix}{index}", conversation))
        made.append(conversation)
    return made


@given(st.lists(st.lists(st.text(max_size=20), max_size=4), min_size=1, max_size=12))
def test_a_chain_reads_as_the_flat_conversation(turn_items: list[list[str]]) -> None:
    node: Conversation | None = None
    flat: list[dict[str, str]] = []
    for texts in turn_items:
        items = [_item(text) for text in texts]
        node = Conversation(OWNER, False, b"", orjson.dumps(items), 0, parent=node)
        flat += items
        assert orjson.loads(node.transcript) == flat
        assert node.transcript_bytes == len(node.transcript)
    assert node is not None
    added = [_item("next")]
    assert orjson.loads(node.transcript_with(orjson.dumps(added))) == flat + added


def test_the_responses_of_one_conversation_are_counted_once() -> None:
    store = MemoryCheckpoints(max_bytes=10**9)
    made = chain(store, "a", 20)
    last = made[-1]
    assert store.bytes == sum(c.own_bytes for c in made)  # each response's own items once
    assert store.bytes <= 1.01 * last.size
    assert sum(c.size for c in made) > 8 * store.bytes  # what 20 copies would have cost
    for index, conversation in enumerate(made):
        found = asyncio.run(store.read(f"a{index}"))
        assert found is conversation
        assert found.transcript == join_arrays(*(c.items for c in made[: index + 1]))


def test_a_branch_from_an_earlier_response_joins_its_conversation() -> None:
    store = MemoryCheckpoints(max_bytes=10**9)
    made = chain(store, "a", 5)
    branch = turn(made[1], "a1", "retry")
    asyncio.run(store.write("b", branch))
    assert store.bytes == sum(c.own_bytes for c in made) + branch.own_bytes
    found = asyncio.run(store.read("b"))
    assert found is not None
    assert found.transcript == join_arrays(made[0].items, made[1].items, branch.items)


def test_the_least_recently_used_conversation_is_evicted_whole() -> None:
    evicted: list[int] = []
    first = MemoryCheckpoints(max_bytes=10**9)
    size = chain(first, "a", 4)[-1].size
    store = MemoryCheckpoints(max_bytes=int(size * 2.5), on_evict=evicted.append)
    chain(store, "a", 4)
    chain(store, "b", 4)
    asyncio.run(store.read("a0"))  # conversation a is now the more recently used
    chain(store, "c", 4)
    assert evicted == [4]
    for index in range(4):
        assert asyncio.run(store.read(f"b{index}")) is None
        assert store.cause(f"b{index}") == "evicted"
        assert asyncio.run(store.read(f"a{index}")) is not None
        assert asyncio.run(store.read(f"c{index}")) is not None
    assert store.bytes <= store.max_bytes


def test_an_expired_response_is_forgotten_alone_and_its_bytes_go_with_the_last() -> None:
    clock = Clock()
    store = MemoryCheckpoints(max_bytes=10**9, ttl_s=60.0, clock=clock)
    made = chain(store, "a", 2)
    clock.now += 30
    later = turn(made[-1], "a1", "later")
    asyncio.run(store.write("a2", later))
    clock.now += 40  # a0 and a1 are past their TTL; a2 is not
    assert asyncio.run(store.read("a0")) is None
    assert store.cause("a0") == "expired"
    assert asyncio.run(store.read("a1")) is None
    # a2 still holds what a0 and a1 added
    assert store.bytes == sum(c.own_bytes for c in made) + later.own_bytes
    clock.now += 60
    assert asyncio.run(store.read("a2")) is None
    assert store.bytes == 0 and len(store) == 0


def test_an_unstored_response_keeps_no_response_object() -> None:
    unstored = turn(None, None, "hello")
    stored = turn(None, None, "hello", stored=True)
    assert unstored.response == b""
    assert stored.own_bytes - unstored.own_bytes == len(stored.response)
    as_redis = {name.encode(): value for name, value in stored.fields().items()}
    assert b"transcript" not in as_redis  # the items go to the conversation's thread
    read = Conversation.from_fields(as_redis, stored.transcript)
    assert (read.response, read.transcript) == (stored.response, stored.transcript)


# -- Redis: delta checkpoints against a real redis-server ------------------------------------


def stored_turn(parent: Conversation | None, parent_id: str | None, text: str) -> Conversation:
    """A ``store=true`` response whose object and pending calls are checkpointed too."""
    return Conversation(
        owner=OWNER,
        stored=True,
        response=orjson.dumps({"id": text, "output": [], "store": True}),
        items=orjson.dumps([_item(text), _item(text.upper())]),
        context_tokens=(parent.context_tokens if parent else 0) + 3,
        pending=(f"call_{text}",),
        parent=parent,
        parent_id=parent_id,
    )


async def redis_chain(
    store: RedisCheckpoints, prefix: str, turns: int, after: tuple[str, Conversation] | None = None
) -> tuple[list[Conversation], list[int]]:
    """``turns`` responses ``<prefix>0..``, each continuing the one before (the first
    continuing ``after``), written to ``store``; and the bytes each write reported."""
    made: list[Conversation] = []
    written: list[int] = []
    parent_id, parent = after if after is not None else (None, None)
    for index in range(turns):
        conversation = stored_turn(parent, parent_id, f"{prefix}-{index:04d}-" + "x" * 50)
        written.append(await store.write(f"{prefix}{index}", conversation))
        made.append(conversation)
        parent_id, parent = f"{prefix}{index}", conversation
    return made, written


async def assert_reads_as(store: RedisCheckpoints, response_id: str, made: Conversation) -> None:
    found = await store.read(response_id)
    assert found is not None, response_id
    assert found.transcript == made.transcript
    assert (found.owner, found.stored, found.response) == (made.owner, True, made.response)
    assert (found.context_tokens, found.pending) == (made.context_tokens, made.pending)


def thread_of(url: str, store: RedisCheckpoints, response_id: str) -> bytes:
    client = redis.Redis.from_url(url)
    try:
        thread = client.hget(store.response_key(response_id), "thread")
    finally:
        client.close()
    assert isinstance(thread, bytes)
    return thread


def test_a_long_redis_chain_round_trips_exactly_and_each_write_sends_only_its_turn(
    redis_url: str,
) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            made, written = await redis_chain(store, "a", 120)
            for index in (0, 1, 59, 119):
                await assert_reads_as(store, f"a{index}", made[index])
        # Every write sent its own items and response object, not the conversation.
        assert written == [c.own_bytes for c in made]
        assert max(written) == min(written)
        assert made[-1].size > 50 * written[-1]

    asyncio.run(run())


def test_a_redis_read_is_one_round_trip_whatever_the_conversation_length(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    def calls() -> int:
        stats = client.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_eval"))

    async def run() -> list[int]:
        async with redis_store(redis_url) as store:
            await redis_chain(store, "a", 60)
            await store.read("a0")  # the first after Redis started also loads the script
            per_read = []
            for index in (1, 59):
                before = calls()
                assert await store.read(f"a{index}") is not None
                per_read.append(calls() - before)
            return per_read

    try:
        assert asyncio.run(run()) == [1, 1]
    finally:
        client.close()


def test_a_redis_response_is_read_without_its_conversation(redis_url: str) -> None:
    """``GET /v1/responses/{id}`` reads the response's hash, not its thread: what Redis
    sends for it (its own byte counter) does not grow with the conversation, where a
    continuation's read sends the whole conversation."""
    client = redis.Redis.from_url(redis_url)

    def sent() -> int:
        return int(client.info("stats")["total_net_output_bytes"])

    async def run() -> tuple[list[int], int, int]:
        async with redis_store(redis_url) as store:
            made, _ = await redis_chain(store, "a", 60)
            await store.read("a0")  # the script loaded
            await store.read_response("a0")
            first = sent()
            info = sent() - first  # an INFO's own answer, counted by the next INFO
            per_response = []
            for index in (1, 59):
                before = sent()
                found = await store.read_response(f"a{index}")
                per_response.append(sent() - before - info)
                assert found is not None
                assert (found.owner, found.stored, found.response) == (
                    OWNER,
                    True,
                    made[index].response,
                )
                assert found.response_object()["id"] == made[index].response_object()["id"]
            before = sent()
            assert await store.read("a59") is not None
            whole = sent() - before - info
            assert await store.read_response("never") is None
            unstored = Conversation(OWNER, False, b"", b"[]", 0)
            await store.write("u", unstored)
            assert await store.read_response("u") == StoredResponse(OWNER, False, b"")
            return per_response, whole, made[59].size

    try:
        per_response, whole, size = asyncio.run(run())
    finally:
        client.close()
    assert abs(per_response[1] - per_response[0]) < 64  # the same at turn 2 and turn 60
    assert per_response[1] < 400  # a response object of ~60 bytes, and the framing
    assert whole > size  # the continuation's read: the whole conversation
    assert whole > 20 * per_response[1]


def test_a_redis_branch_starts_its_own_thread_and_leaves_the_original_whole(
    redis_url: str,
) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            made, _ = await redis_chain(store, "a", 5)
            branch, written = await redis_chain(store, "b", 3, after=("a1", made[1]))
            assert written == [c.own_bytes for c in branch]  # the prefix copied in Redis
            assert thread_of(redis_url, store, "b0") != thread_of(redis_url, store, "a1")
            assert thread_of(redis_url, store, "b2") == thread_of(redis_url, store, "b0")
            await assert_reads_as(store, "b2", branch[2])
            expected = join_arrays(made[0].items, made[1].items, *(c.items for c in branch))
            assert (await store.read("b2")).transcript == expected  # type: ignore[union-attr]
            for index, conversation in enumerate(made):
                await assert_reads_as(store, f"a{index}", conversation)
            # The original thread's tail is extended in place, still.
            more, _ = await redis_chain(store, "c", 1, after=("a4", made[4]))
            assert thread_of(redis_url, store, "c0") == thread_of(redis_url, store, "a0")
            await assert_reads_as(store, "c0", more[0])

    asyncio.run(run())


def test_two_concurrent_continuations_of_one_response_both_read_back_whole(
    redis_url: str,
) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            made, _ = await redis_chain(store, "a", 3)
            left = stored_turn(made[-1], "a2", "left")
            right = stored_turn(made[-1], "a2", "right")
            await asyncio.gather(store.write("l", left), store.write("r", right))
            await assert_reads_as(store, "l", left)
            await assert_reads_as(store, "r", right)

    asyncio.run(run())


def test_a_continuation_whose_parent_is_not_in_redis_is_written_whole_once(
    redis_url: str,
) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            # a0..a2 were held by a connection while Redis was down: never checkpointed.
            held = [turn(None, None, "a0")]
            for index in (1, 2):
                held.append(turn(held[-1], f"a{index - 1}", f"a{index}"))
            made, written = await redis_chain(store, "b", 3, after=("a2", held[-1]))
            assert written[0] == made[0].size  # whole: response object and transcript
            assert written[1:] == [c.own_bytes for c in made[1:]]
            await assert_reads_as(store, "b2", made[2])
            assert await store.read("a2") is None

    asyncio.run(run())


@pytest.mark.parametrize("piece", ["hash", "thread", "thread-entries"])
def test_a_missing_redis_piece_reads_as_not_found_never_a_shorter_conversation(
    redis_url: str, piece: str
) -> None:
    client = redis.Redis.from_url(redis_url)

    async def run() -> None:
        async with redis_store(redis_url) as store:
            made, _ = await redis_chain(store, "a", 6)
            thread = thread_of(redis_url, store, "a5")
            if piece == "hash":  # as when the response's key expired or was evicted
                client.delete(store.response_key("a5"))
            elif piece == "thread":  # as when the thread's key expired or was evicted
                client.delete(thread)
            else:
                client.ltrim(thread, 0, 3)
            assert await store.read("a5") is None
            # Pieces still whole still answer.
            assert (await store.read("a3") is None) == (piece == "thread")
            # A continuation a connection still held is written whole, never onto a gap.
            continued = stored_turn(made[5], "a5", "next")
            assert await store.write("n", continued) == continued.size
            await assert_reads_as(store, "n", continued)

    try:
        asyncio.run(run())
    finally:
        client.close()


def test_every_redis_key_expires_and_a_continuation_refreshes_its_thread(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    async def run() -> None:
        async with redis_store(redis_url, ttl_s=600.0) as store:
            made, _ = await redis_chain(store, "a", 2)
            thread = thread_of(redis_url, store, "a1")
            keys = client.keys(store.prefix + "*")
            assert sorted(keys) == sorted(
                [store.response_key("a0").encode(), store.response_key("a1").encode(), thread]
            )
            assert all(0 < client.pttl(key) <= 600_000 for key in keys)
            client.pexpire(thread, 5_000)
            client.pexpire(store.response_key("a0"), 5_000)
            await redis_chain(store, "b", 1, after=("a1", made[-1]))
            assert client.pttl(thread) > 590_000  # extended: its TTL starts again
            assert client.pttl(store.response_key("a0")) <= 5_000  # a hash keeps its own

    try:
        asyncio.run(run())
    finally:
        client.close()


def test_a_redis_checkpoint_this_process_wrote_is_told_expired_after_its_ttl(
    redis_url: str,
) -> None:
    clock = Clock()

    async def run() -> None:
        async with redis_store(redis_url, ttl_s=60.0, clock=clock) as store:
            await redis_chain(store, "a", 1)
            assert store.cause("a0") is None
            clock.now += 60
            assert store.cause("a0") == "expired"
            assert store.cause("never-written") is None

    asyncio.run(run())


def test_a_redis_write_continuing_another_owners_response_copies_nothing(
    redis_url: str,
) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            await redis_chain(store, "a", 2)
            intruder = Conversation(
                owner="owner-mallory",
                stored=False,
                response=b"",
                items=orjson.dumps([_item("mine")]),
                context_tokens=1,
                parent=Conversation("owner-mallory", False, b"", b"[]", 0),
                parent_id="a1",
            )
            await store.write("m", intruder)
            found = await store.read("m")
            assert found is not None and found.owner == "owner-mallory"
            assert orjson.loads(found.transcript) == [_item("mine")]  # nothing of a0, a1
            assert thread_of(redis_url, store, "m") != thread_of(redis_url, store, "a1")

    asyncio.run(run())


def test_another_owner_resuming_a_redis_checkpoint_gets_not_found(redis_url: str) -> None:
    async def run() -> None:
        async with redis_store(redis_url) as store:
            stats = GatewayStats()
            gateway_state = GatewayState(SessionMemory(), store, stats)
            made, _ = await redis_chain(store, "a", 3)
            with pytest.raises(PreviousResponseNotFoundError):
                await gateway_state.resume("a2", [], owner="owner-mallory")
            with pytest.raises(NotFoundError):
                await gateway_state.retrieve("owner-mallory", "a2")
            assert stats["misses_foreign"] == 1
            output = {"type": "function_call_output", "call_id": made[-1].pending[0]}
            resumed = await gateway_state.resume("a2", [{**output, "output": "ok"}], owner=OWNER)
            assert resumed.transcript == made[-1].transcript

    asyncio.run(run())


def test_deleting_a_redis_checkpoint_takes_its_own_entry_and_leaves_the_rest(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)

    async def run() -> None:
        async with redis_store(redis_url) as store:
            made, _ = await redis_chain(store, "a", 4)
            thread = thread_of(redis_url, store, "a3")
            assert await store.delete("a1") is True  # within the thread: its entry stays
            assert client.llen(thread) == 4
            assert await store.read("a1") is None
            await assert_reads_as(store, "a3", made[3])
            assert await store.delete("a3") is True  # the tail: its entry goes with it
            assert client.llen(thread) == 3
            assert await store.read("a3") is None
            await assert_reads_as(store, "a2", made[2])
            assert await store.delete("a3") is False
            assert await store.delete("never") is False
            # a2 is the tail again: a continuation extends the thread in place.
            more, written = await redis_chain(store, "b", 1, after=("a2", made[2]))
            assert written == [more[0].own_bytes] and client.llen(thread) == 4
            await assert_reads_as(store, "b0", more[0])

    try:
        asyncio.run(run())
    finally:
        client.close()


def test_a_redis_that_does_not_answer_is_checkpoint_unavailable() -> None:
    async def run() -> None:
        async with redis_store(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2) as store:
            with pytest.raises(CheckpointUnavailable):
                await store.write("a", turn(None, None, "hello"))
            with pytest.raises(CheckpointUnavailable):
                await store.read("a")
            with pytest.raises(CheckpointUnavailable):
                await store.delete("a")

    asyncio.run(run())
