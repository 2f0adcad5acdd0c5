"""Conversations as chains and the in-process checkpoint store's accounting by conversation:
N responses of one conversation cost its size once; eviction takes a whole conversation;
a response past its TTL is forgotten alone."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rig.gateway.checkpoints import Conversation, MemoryCheckpoints, join_arrays

OWNER = "owner-alice"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
    assert Conversation.from_fields(as_redis).transcript == stored.transcript
