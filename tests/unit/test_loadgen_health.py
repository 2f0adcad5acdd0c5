"""The load generator notices when it is too busy to measure.

The monitor runs on a clock and a sleep it is given: these tests hand it a simulated
clock, so what they check does not depend on how fast or busy the machine is.
"""

from __future__ import annotations

import gevent
import pytest

from rig.loadgen.health import (
    CPU_LIMIT_PERCENT,
    LAG_LIMIT_MS,
    SAMPLES_PER_P99,
    HealthMonitor,
    _p99,
)
from rig.metrics.records import HealthRecord, RecordTags

TAGS = RecordTags("run", "mixed", "all", "mock")


class SimulatedTime:
    """A monotonic clock that a sleep advances by what was asked plus a stall, if one is
    scheduled for that wake-up; after ``wakeups`` sleeps the loop is told to stop."""

    def __init__(self, wakeups: int, stalls: dict[int, float] | None = None):
        self.now = 100.0
        self.wakeups = wakeups
        self.stalls = stalls or {}
        self.slept = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.slept == self.wakeups:
            raise gevent.GreenletExit
        self.slept += 1
        self.now += seconds + self.stalls.get(self.slept, 0.0)


def _run(time: SimulatedTime, cpu: float = 5.0) -> tuple[HealthMonitor, list[HealthRecord]]:
    records: list[HealthRecord] = []
    monitor = HealthMonitor(
        TAGS,
        records.append,
        interval_s=0.01,
        report_s=0.2,
        turns=lambda: 7,
        clock=time.clock,
        sleep=time.sleep,
        wall_clock=lambda: 1_700_000_000.0,
        cpu_percent=lambda: cpu,
    )
    monitor.run()
    return monitor, records


def test_a_hub_held_by_busy_code_is_reported_as_saturated() -> None:
    # The fifth wake-up comes 80 ms late, as when busy code holds the hub.
    monitor, records = _run(SimulatedTime(wakeups=40, stalls={5: 0.08}))
    assert records
    assert max(r.lag_ms_max for r in records) == pytest.approx(80.0)
    assert records[0].saturated  # a window of fewer than 101 samples: its p99 is its max
    assert monitor.worst_lag_p99_ms > LAG_LIMIT_MS
    assert monitor.saturated_reports == 1 < monitor.reports


def test_an_idle_generator_is_not_saturated() -> None:
    monitor, records = _run(SimulatedTime(wakeups=45))
    assert len(records) == 3  # two full 0.2 s windows and the last partial one
    assert not any(r.saturated for r in records)
    assert all(r.lag_ms_p99 == pytest.approx(0.0, abs=1e-6) for r in records)
    assert all(r.turns_per_s == 0 for r in records)  # the turn count never moved
    assert records[-1].tags == TAGS
    assert records[-1].ts == 1_700_000_000.0
    assert monitor.saturated_reports == 0


def test_a_busy_cpu_alone_flags_the_window() -> None:
    _, records = _run(SimulatedTime(wakeups=25), cpu=CPU_LIMIT_PERCENT + 1)
    assert records and all(r.saturated for r in records)
    assert all(r.cpu_percent == CPU_LIMIT_PERCENT + 1 for r in records)


def test_a_report_window_holds_enough_samples_for_a_p99_below_its_maximum() -> None:
    monitor = HealthMonitor(TAGS, lambda record: None)
    assert round(monitor.report_s / monitor.interval_s) >= SAMPLES_PER_P99


def test_one_stall_is_the_maximum_not_the_p99_of_enough_samples() -> None:
    lags = [0.5] * (SAMPLES_PER_P99 - 1) + [80.0]
    assert _p99(lags) == 0.5
    assert _p99(lags[1:]) == 80.0  # with 100 samples the p99 is the maximum


def test_started_in_a_greenlet_it_reports_its_last_window_when_stopped() -> None:
    records: list[HealthRecord] = []
    monitor = HealthMonitor(TAGS, records.append, interval_s=0.001, report_s=60.0)
    monitor.start()
    gevent.sleep(0.02)
    monitor.stop()
    assert len(records) == 1 and records[0].users == 0
