"""The gateway's conversation state with plain calls: connection memory under a byte cap,
checkpoints, and the cause of every miss (one answer to the client, counted apart)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.gateway.checkpoints import (
    CheckpointUnavailable,
    Conversation,
    MemoryCheckpoints,
    join_arrays,
)
from rig.gateway.metrics import exposition
from rig.gateway.state import GatewayState, SessionMemory
from rig.gateway.stats import BUCKETS, GatewayStats
from rig.protocol.errors import (
    NotFoundError,
    PreviousResponseNotFoundError,
    ServiceUnavailableError,
)

ALICE = "owner-alice"
BOB = "owner-bob"
USER = [{"type": "message", "role": "user", "content": "next"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def conversation(owner: str = ALICE, size: int = 100, stored: bool = False) -> Conversation:
    items = [{"type": "message", "role": "user", "content": "x" * size}]
    return Conversation(
        owner=owner,
        stored=stored,
        response=orjson.dumps({"id": "r", "output": []}) if stored else b"",
        items=orjson.dumps(items),
        context_tokens=size // 4,
    )


class DownStore(MemoryCheckpoints):
    """In-process checkpoints that can be switched off, as a Redis that stops answering."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def write(self, response_id: str, conversation: Conversation) -> int:
        if self.down:
            raise CheckpointUnavailable("down")
        return await super().write(response_id, conversation)

    async def read(self, response_id: str) -> Conversation | None:
        if self.down:
            raise CheckpointUnavailable("down")
        return await super().read(response_id)

    async def ping(self) -> None:
        if self.down:
            raise CheckpointUnavailable("down")


def state(
    memory_bytes: int = 10_000,
    checkpoints: MemoryCheckpoints | None = None,
    clock: Clock | None = None,
) -> GatewayState:
    clock = clock or Clock()
    stats = GatewayStats()
    memory = SessionMemory(
        memory_bytes, 60.0, clock=clock, on_evict=lambda n: stats.add("evictions", n)
    )
    return GatewayState(
        memory,
        MemoryCheckpoints(ttl_s=60.0, clock=clock) if checkpoints is None else checkpoints,
        stats,
        clock=clock,
    )


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_a_connection_continues_from_its_memory_without_the_store() -> None:
    gateway = state()
    cache = gateway.memory.cache()

    async def scenario() -> None:
        await gateway.record("resp_1", conversation(), cache=cache)
        await gateway.checkpoints.delete("resp_1")  # only memory has it now
        found = await gateway.resume("resp_1", USER, owner=ALICE, cache=cache)
        assert found.owner == ALICE

    run(scenario())
    assert gateway.stats["hits_connection"] == 1
    assert gateway.stats["resumes"] == 0


def test_another_connection_resumes_from_the_checkpoint() -> None:
    gateway = state()

    async def scenario() -> None:
        await gateway.record("resp_1", conversation(), cache=gateway.memory.cache())
        await gateway.resume("resp_1", USER, owner=ALICE, cache=gateway.memory.cache())

    run(scenario())
    assert gateway.stats["hits_checkpoint"] == 1
    assert gateway.stats["resumes"] == 1
    assert gateway.stats["checkpoint_writes"] == 1
    assert gateway.stats["checkpoint_bytes"] == conversation().size


def test_another_owner_misses_as_unknown_and_is_counted_foreign() -> None:
    gateway = state()

    async def scenario() -> None:
        await gateway.record("resp_1", conversation(ALICE, stored=True), cache=None)
        with pytest.raises(PreviousResponseNotFoundError) as foreign:
            await gateway.resume("resp_1", USER, owner=BOB)
        with pytest.raises(PreviousResponseNotFoundError) as unknown:
            await gateway.resume("resp_nope", USER, owner=BOB)
        assert foreign.value.to_dict()["code"] == unknown.value.to_dict()["code"]
        assert foreign.value.to_dict()["message"].replace("resp_1", "X") == unknown.value.to_dict()[
            "message"
        ].replace("resp_nope", "X")
        with pytest.raises(NotFoundError):
            await gateway.retrieve(BOB, "resp_1")

    run(scenario())
    assert gateway.stats["misses_foreign"] == 1
    assert gateway.stats["misses_unknown"] == 1
    assert gateway.stats["misses_not_found"] == 2


def test_the_memory_cap_evicts_the_least_recently_used_and_the_miss_says_evicted() -> None:
    clock = Clock()
    checkpoints = MemoryCheckpoints(max_bytes=250, clock=clock)
    gateway = state(memory_bytes=250, checkpoints=checkpoints, clock=clock)
    first, second = gateway.memory.cache(), gateway.memory.cache()

    async def scenario() -> None:
        await gateway.record("resp_old", conversation(size=100), cache=first)
        await gateway.record("resp_new", conversation(size=100), cache=second)
        assert gateway.memory.bytes <= 250
        with pytest.raises(PreviousResponseNotFoundError):
            await gateway.resume("resp_old", USER, owner=ALICE, cache=first)
        await gateway.resume("resp_new", USER, owner=ALICE, cache=second)

    run(scenario())
    assert gateway.stats["evictions"] >= 1
    assert gateway.stats["misses_evicted"] == 1
    assert gateway.stats["hits_connection"] == 1


def test_a_conversation_past_its_ttl_is_expired() -> None:
    clock = Clock()
    gateway = state(clock=clock)
    cache = gateway.memory.cache()

    async def scenario() -> None:
        await gateway.record("resp_1", conversation(), cache=cache)
        clock.now += 61
        with pytest.raises(PreviousResponseNotFoundError):
            await gateway.resume("resp_1", USER, owner=ALICE, cache=cache)

    run(scenario())
    assert gateway.stats["misses_expired"] == 1
    assert len(gateway.memory) == 0


def test_a_store_that_stops_answering_degrades_to_connection_memory() -> None:
    clock = Clock()
    store = DownStore()
    gateway = state(checkpoints=store, clock=clock)
    cache = gateway.memory.cache()

    async def scenario() -> None:
        store.down = True
        await gateway.record("resp_1", conversation(), cache=cache)  # not checkpointed
        await gateway.resume("resp_1", USER, owner=ALICE, cache=cache)  # memory still has it
        with pytest.raises(PreviousResponseNotFoundError):
            await gateway.resume("resp_1", USER, owner=ALICE, cache=gateway.memory.cache())
        assert not await gateway.probe()
        with pytest.raises(ServiceUnavailableError):
            await gateway.retrieve(ALICE, "resp_1")
        store.down = False
        clock.now += 2  # past the retry pause
        await gateway.record("resp_2", conversation(), cache=cache)
        assert gateway.checkpoint_up

    run(scenario())
    assert gateway.stats["checkpoint_failures"] == 1
    assert gateway.stats["misses_unavailable"] == 1
    assert gateway.stats["checkpoint_writes"] == 1


def test_a_closed_connection_releases_its_memory() -> None:
    gateway = state()
    cache = gateway.memory.cache()
    run(gateway.record("resp_1", conversation(), cache=cache))
    assert gateway.memory.bytes == conversation().size
    cache.close()
    assert gateway.memory.bytes == 0
    assert len(gateway.memory) == 0


def test_stateless_http_responses_are_not_checkpointed() -> None:
    gateway = state()
    run(gateway.record("resp_1", conversation(stored=False), cache=None))
    assert gateway.stats["checkpoint_writes"] == 0
    assert len(gateway.checkpoints) == 0  # type: ignore[arg-type]


def test_json_arrays_join_without_decoding() -> None:
    joined = join_arrays(b"[]", b'[{"a":1}]', b"[]", b'[2,"x"]')
    assert orjson.loads(joined) == [{"a": 1}, 2, "x"]
    assert join_arrays(b"[]", b"[]") == b"[]"


def test_metrics_expose_counters_by_label() -> None:
    gateway = state()

    async def scenario() -> None:
        await gateway.record("resp_1", conversation(), cache=gateway.memory.cache())
        with pytest.raises(PreviousResponseNotFoundError):
            await gateway.resume("nope", USER, owner=ALICE)

    run(scenario())
    from rig.gateway.metrics import GatewayCollector

    stats = gateway.stats
    stats.registry.register(GatewayCollector(stats.snapshot, stats.histograms))
    text = exposition(stats).decode()
    assert 'rig_gateway_cache_misses_total{cause="unknown"} 1.0' in text
    assert "rig_gateway_checkpoint_writes_total 1.0" in text
    assert "rig_gateway_checkpoint_seconds_count 1.0" in text


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.sampled_from(BUCKETS),  # on a bound: in that bucket
            st.floats(min_value=0, max_value=20, allow_nan=False),
        ),
        max_size=40,
    )
)
def test_a_histogram_exposes_what_prometheus_client_s_own_would(values: list[float]) -> None:
    """The gateway's bucket counts against prometheus-client's ``Histogram`` fed the same
    observations: the same samples in the exposition (buckets, count, sum)."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from rig.gateway.metrics import histogram_family
    from rig.gateway.stats import Histogram as Counts

    ours = Counts()
    registry = CollectorRegistry()
    theirs = Histogram("h", "h", buckets=BUCKETS, registry=registry)
    for value in values:
        ours.observe(value)
        theirs.observe(value)

    def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if not s.name.endswith("_created")
        }

    class One:
        def collect(self):  # type: ignore[no-untyped-def]
            yield histogram_family("h", "h", ours)

    mine = CollectorRegistry()
    mine.register(One())  # type: ignore[arg-type]
    expected = samples(generate_latest(registry).decode())
    got = samples(generate_latest(mine).decode())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
