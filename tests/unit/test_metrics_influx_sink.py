"""The sink's queue, batching, retries and drop accounting, with a recording backend.

The HTTP side (both backends against real servers, an outage of a real InfluxDB) is in
tests/integration/test_influx_sink.py; here the backend is an in-process object so each
rule of the writer can be driven exactly.
"""

from __future__ import annotations

import gzip
import time

import gevent
import gevent.event
import pytest

from rig.metrics.influx import InfluxConfigError, InfluxSink, WriteError
from rig.metrics.lineproto import LineEncoder
from rig.metrics.records import RecordTags, TaskRecord

TAGS = RecordTags(run="r1", scenario="bugfix", transport="ws", target="mock")


def task(i: int) -> TaskRecord:
    return TaskRecord(
        tags=TAGS, session=f"s-{i}", ts=1_795_262_800.0 + i, task_ms=100.0 * i, turns=i,
        bytes_sent=10 * i, bytes_recv=20 * i, tool_calls=i, ok=True,
    )  # fmt: skip


class RecordingBackend:
    """Keeps every batch; fails the next ``failures`` sends with ``error``."""

    def __init__(self, failures: int = 0, error: WriteError | None = None):
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.failures = failures
        self.error = error or WriteError("503 unavailable", retryable=True)
        self.sent = gevent.event.Event()
        self.closed = False

    def send(self, gzipped: bytes) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise self.error
        self.batches.append(gzip.decompress(gzipped).decode().splitlines())
        self.sent.set()

    def check(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def sink(backend: RecordingBackend, **options) -> InfluxSink:
    options.setdefault("backoff_base_s", 0.001)
    result = InfluxSink(backend, **options)
    result.start()
    return result


def test_batches_are_cut_by_size_and_hold_the_encoded_lines_in_order() -> None:
    backend = RecordingBackend()
    writer = sink(backend, batch_size=3, flush_interval_s=60)
    records = [task(i) for i in range(7)]
    for record in records:
        writer(record)
    assert writer.flush(timeout_s=10)
    assert [len(batch) for batch in backend.batches] == [3, 3, 1]
    encoder = LineEncoder()
    assert [line for batch in backend.batches for line in batch] == [
        encoder.encode(r) for r in records
    ]
    assert writer.counts() == (7, 0)
    writer.close()
    assert backend.closed


def test_a_partial_batch_goes_out_after_the_flush_interval_without_a_flush() -> None:
    backend = RecordingBackend()
    writer = sink(backend, batch_size=1000, flush_interval_s=0.05)
    writer(task(1))
    assert backend.sent.wait(timeout=10), "the interval did not send the batch"
    assert backend.batches == [[LineEncoder().encode(task(1))]]
    writer.close()


def test_a_full_buffer_counts_drops_and_never_blocks_the_caller() -> None:
    backend = RecordingBackend()
    writer = InfluxSink(backend, buffer_points=5)  # writer not started: nothing drains
    for i in range(8):
        writer(task(i))
    assert (writer.queued, writer.points_dropped) == (5, 3)


def test_retryable_errors_are_retried_until_the_batch_is_written() -> None:
    backend = RecordingBackend(failures=3)
    writer = sink(backend, batch_size=10)
    for i in range(4):
        writer(task(i))
    assert writer.flush(timeout_s=10)
    assert backend.attempts == 4
    assert writer.counts() == (4, 0)
    assert writer.write_errors == 3
    writer.close()


def test_a_rejected_batch_is_counted_dropped_not_retried() -> None:
    backend = RecordingBackend(
        failures=1, error=WriteError("400 field type conflict", retryable=False)
    )
    writer = sink(backend, batch_size=2)
    for i in range(3):
        writer(task(i))
    assert writer.flush(timeout_s=10)
    assert writer.counts() == (1, 2)
    assert "field type conflict" in writer.last_error
    writer.close()


def test_close_gives_up_after_its_timeout_and_counts_what_was_left() -> None:
    backend = RecordingBackend(failures=10**9)
    writer = sink(backend, batch_size=2)
    for i in range(5):
        writer(task(i))
    writer.close(timeout_s=0.2)
    written, dropped = writer.counts()
    assert (written, dropped) == (0, 5)
    writer(task(9))  # after close: counted, not queued
    assert writer.counts() == (0, 6)


@pytest.mark.parametrize(
    "options", [{"batch_size": 0}, {"buffer_points": 0}, {"flush_interval_s": 0}]
)
def test_nonsense_batching_is_refused(options) -> None:
    with pytest.raises(InfluxConfigError):
        InfluxSink(RecordingBackend(), **options)


class HangingBackend(RecordingBackend):
    """Never answers a send (a hung InfluxDB) until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = gevent.event.Event()
        self.entered = gevent.event.Event()

    def send(self, gzipped: bytes) -> None:
        self.entered.set()
        self.release.wait()
        super().send(gzipped)


def test_finish_against_a_hung_server_counts_the_batch_in_flight_and_the_queue_dropped() -> None:
    backend = HangingBackend()
    writer = sink(backend, batch_size=2, flush_interval_s=0.01)
    for i in range(5):
        writer(task(i))
    assert backend.entered.wait(timeout=10)
    started = time.monotonic()
    assert writer.finish(timeout_s=0.2) is False
    assert time.monotonic() - started < 2, "finish waited past its deadline"
    assert writer.counts() == (0, 5), "the batch in flight and the queued ones are dropped"
    assert writer.queued == 0
    backend.release.set()


def test_finish_against_a_refusing_server_gives_up_at_its_deadline_not_at_the_backoff_cap() -> None:
    backend = RecordingBackend(failures=10**9)
    writer = sink(backend, batch_size=2, backoff_base_s=5.0)  # backoff alone would wait 5 s+
    for i in range(5):
        writer(task(i))
    started = time.monotonic()
    writer.finish(timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert writer.counts() == (0, 5)


def test_after_finish_the_sink_still_sends_the_run_point_and_counts_stay_final() -> None:
    backend = RecordingBackend()
    writer = sink(backend, batch_size=10)
    for i in range(3):
        writer(task(i))
    assert writer.finish(timeout_s=10) is True
    final = writer.counts()
    assert final == (3, 0)
    writer.write_run("r1", {"transports": ["ws"]})
    writer.close(timeout_s=10)
    lines = [line for batch in backend.batches for line in batch]
    assert len(lines) == 4 and lines[-1].startswith("run,")
