"""Memory the mock keeps is bounded in bytes, and what the bounds push out is counted."""

from __future__ import annotations

import asyncio

from rig.conversation.store import MemoryStore, StoredResponse
from rig.mock.engine import PromptCache
from rig.workload.policy import ModelPolicy
from rig.workload.tools import TOOL_NAMES


def _stored(size: int) -> StoredResponse:
    return StoredResponse({"id": "r"}, [], context_tokens=1, context_bytes=size)


def test_the_memory_store_is_bounded_in_bytes_and_counts_evictions() -> None:
    told: list[int] = []
    store = MemoryStore(max_bytes=10 * 512 * 1024, on_evict=told.append)

    async def fill() -> None:
        for index in range(200):
            await store.put("owner", f"resp_{index}", _stored(512 * 1024))

    asyncio.run(fill())
    assert store.bytes <= store.max_bytes
    assert len(store) == 10
    assert store.evictions == 190 and sum(told) == 190
    assert asyncio.run(store.get("owner", "resp_199")) is not None
    assert asyncio.run(store.get("owner", "resp_0")) is None


def test_replacing_and_deleting_keep_the_byte_count_exact() -> None:
    store = MemoryStore(max_bytes=1000)

    async def run() -> None:
        await store.put("o", "a", _stored(400))
        await store.put("o", "a", _stored(300))
        await store.put("o", "b", _stored(200))
        assert store.bytes == 500
        assert await store.delete("o", "a")
        assert store.bytes == 200
        await store.put("o", "huge", _stored(5000))  # heavier than the bound: not kept

    asyncio.run(run())
    assert store.bytes == 0 and len(store) == 0 and store.evictions == 2


def test_the_prompt_cache_counts_evictions() -> None:
    told: list[int] = []
    cache = PromptCache(max_entries=3, on_evict=told.append)
    for value in range(10):
        cache.add(value, value)
    assert cache.evictions == 7 and sum(told) == 7
    assert cache.longest([9]) == 9 and cache.longest([0]) == 0


def test_plan_caches_keep_no_prompt_and_count_evictions() -> None:
    told: list[int] = []
    policy = ModelPolicy(plan_cache_size=4, on_evict=told.append)
    tools = [{"type": "function", "name": name} for name in sorted(TOOL_NAMES)]
    big = "x" * (1 << 20)
    for index in range(10):
        transcript = [{"type": "message", "role": "user", "content": f"{index} {big}"}]
        first = policy.next_turn(transcript, tools)
        assert first == policy.next_turn(transcript, tools)  # cached: the same plan
    assert len(policy._plans) == 4 and len(policy._mixed) == 4
    held = [key for key in policy._plans] + list(policy._mixed)
    assert all(len(repr(key)) < 200 for key in held), "a cache key holds the prompt"
    assert policy.plan_cache_evictions == 12 and sum(told) == 12
