"""The load generator notices when it is too busy to measure."""

from __future__ import annotations

import time

import gevent

from rig.loadgen.health import LAG_LIMIT_MS, SAMPLES_PER_P99, HealthMonitor, _p99
from rig.metrics.records import HealthRecord, RecordTags

TAGS = RecordTags("run", "mixed", "all", "mock")


def _monitor(records: list[HealthRecord]) -> HealthMonitor:
    return HealthMonitor(TAGS, records.append, interval_s=0.01, report_s=0.2, turns=lambda: 7)


def test_a_hub_held_by_busy_code_is_reported_as_saturated() -> None:
    records: list[HealthRecord] = []
    monitor = _monitor(records)
    monitor.start()
    gevent.sleep(0.05)
    time.sleep(0.08)  # blocks the hub: every greenlet, the monitor's too, waits this long
    gevent.sleep(0.3)
    monitor.stop()
    assert records
    assert max(r.lag_ms_max for r in records) >= 60
    assert any(r.saturated for r in records)
    assert monitor.worst_lag_p99_ms > LAG_LIMIT_MS


def test_an_idle_generator_is_not_saturated() -> None:
    records: list[HealthRecord] = []
    monitor = _monitor(records)
    monitor.start()
    gevent.sleep(0.45)
    monitor.stop()
    assert len(records) >= 2
    assert not any(r.saturated for r in records)
    assert all(r.lag_ms_p99 < LAG_LIMIT_MS for r in records)
    assert all(r.turns_per_s == 0 for r in records)  # the turn count never moved
    assert records[-1].tags == TAGS


def test_a_report_window_holds_enough_samples_for_a_p99_below_its_maximum() -> None:
    monitor = HealthMonitor(TAGS, lambda record: None)
    assert round(monitor.report_s / monitor.interval_s) >= SAMPLES_PER_P99


def test_one_stall_is_the_maximum_not_the_p99_of_enough_samples() -> None:
    lags = [0.5] * (SAMPLES_PER_P99 - 1) + [80.0]
    assert _p99(lags) == 0.5
    assert _p99(lags[1:]) == 80.0  # with 100 samples the p99 is the maximum
