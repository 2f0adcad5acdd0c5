"""The mock's streaming loop (``rig.mock.app.stream_paced``) on a fake clock: events due
together are written in one batch, a sleep writes what is due before it, the last batch
ends the stream, a client that left gets nothing more, and ``bytes_out`` / ``events_sent``
count exactly what was handed to the writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rig.mock import app as mock_app
from rig.mock.app import FLUSH_BYTES, _sse_writer, _ws_writer, stream_paced
from rig.mock.stats import Stats
from rig.protocol.sse import DONE


class FakeClock:
    """Time that moves only when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(mock_app, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(mock_app, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


class Recorder:
    """A writer that keeps every batch it is handed, with its ``last`` flag."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.writes: list[tuple[list[bytes], bool, float]] = []

    async def __call__(self, chunks: list[bytes], last: bool) -> None:
        self.writes.append((list(chunks), last, self.clock.now))


@pytest.fixture
def stats(tmp_path: Path) -> Iterator[Stats]:
    counters = Stats(tmp_path)
    yield counters
    counters.close()


def encode(event: str) -> bytes:
    return event.encode()


def stream(
    stats: Stats, timed: list[tuple[float, str]], write: Any, **kw: Any
) -> tuple[bool, dict[str, int]]:
    done = asyncio.run(stream_paced(timed, encode, write, stats, **kw))
    return done, stats.local()


def test_events_due_at_once_are_one_write_that_ends_the_stream(
    clock: FakeClock, stats: Stats
) -> None:
    write = Recorder(clock)
    done, counted = stream(stats, [(0.0, "a"), (0.0, "bb"), (0.0, "ccc")], write)
    assert done
    assert [(chunks, last) for chunks, last, _ in write.writes] == [([b"a", b"bb", b"ccc"], True)]
    assert clock.sleeps == []
    assert (counted["events_sent"], counted["bytes_out"]) == (3, 6)


def test_a_sleep_writes_what_is_due_before_it(clock: FakeClock, stats: Stats) -> None:
    write = Recorder(clock)
    timed = [(0.0, "a"), (0.0, "b"), (0.5, "c"), (0.5, "d"), (1.0, "e")]
    done, counted = stream(stats, timed, write)
    assert done
    assert write.writes == [
        ([b"a", b"b"], False, 1000.0),
        ([b"c", b"d"], False, 1000.5),
        ([b"e"], True, 1001.0),
    ]
    assert clock.sleeps == [0.5, 0.5]
    assert (counted["events_sent"], counted["bytes_out"]) == (5, 5)


def test_a_client_that_left_gets_nothing_more_and_only_what_was_written_counts(
    clock: FakeClock, stats: Stats
) -> None:
    write = Recorder(clock)
    timed = [(0.0, "a"), (0.0, "b"), (0.5, "c"), (1.0, "d")]
    done, counted = stream(stats, timed, write, gone=lambda: clock.now > 1000.0)
    assert not done
    assert write.writes == [([b"a", b"b"], False, 1000.0)]
    assert (counted["events_sent"], counted["bytes_out"]) == (2, 2)


def test_before_last_runs_before_the_last_batch_is_written(clock: FakeClock, stats: Stats) -> None:
    write = Recorder(clock)
    seen: list[int] = []

    async def before_last() -> None:
        seen.append(len(write.writes))

    done, _ = stream(stats, [(0.0, "a"), (0.0, "b"), (0.0, "c")], write, before_last=before_last)
    assert done and seen == [0]
    assert write.writes == [([b"a", b"b", b"c"], True, 1000.0)]


def test_a_large_batch_is_written_in_pieces_of_the_flush_size(
    clock: FakeClock, stats: Stats
) -> None:
    write = Recorder(clock)
    event = "x" * (FLUSH_BYTES // 3 + 1)
    done, counted = stream(stats, [(0.0, event)] * 7, write)
    assert done
    assert [(len(chunks), last) for chunks, last, _ in write.writes] == [
        (3, False),
        (3, False),
        (1, True),
    ]
    assert counted["bytes_out"] == 7 * len(event)


def test_an_empty_stream_still_ends(clock: FakeClock, stats: Stats) -> None:
    write = Recorder(clock)
    done, counted = stream(stats, [], write)
    assert done and write.writes == [([], True, 1000.0)]
    assert counted["events_sent"] == 0


def test_the_sse_writer_sends_one_body_chunk_per_batch_and_ends_with_the_terminator(
    stats: Stats,
) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def two_batches() -> None:
        write = _sse_writer(send, stats, end=DONE)
        await write([b"data: 1\n\n", b"data: 2\n\n"], False)
        await write([b"data: 3\n\n"], True)

    asyncio.run(two_batches())
    assert sent == [
        {"type": "http.response.body", "body": b"data: 1\n\ndata: 2\n\n", "more_body": True},
        {"type": "http.response.body", "body": b"data: 3\n\n" + DONE, "more_body": False},
    ]
    assert stats.local()["bytes_out"] == len(DONE)


def test_the_websocket_writer_sends_one_text_frame_per_event() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def one_batch() -> None:
        await _ws_writer(send)([b'{"a":1}', b'{"b":2}'], True)

    asyncio.run(one_batch())
    assert sent == [
        {"type": "websocket.send", "text": '{"a":1}'},
        {"type": "websocket.send", "text": '{"b":2}'},
    ]
