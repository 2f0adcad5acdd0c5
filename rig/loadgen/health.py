"""Is the load generator fast enough to trust what it measures?

A greenlet asks to wake every ``interval_s`` (10 ms) and measures how late it wakes: that
scheduling lag is added to every latency the process measures, because a response that
arrived waits in the kernel until the hub gets back to its greenlet. A 2 s report holds
about 200 samples, so its p99 is the second-highest lag, not the highest: one stall (a
garbage collection, a long tool call) shows in the maximum without making the window
saturated. Sampling that often costs a busy process nothing measurable (the wake-ups
fall among the ones it makes anyway); an idle one spends about 1% of a core on them.
Together with the process's CPU use, it says when results were taken while the generator
was saturated; :class:`~rig.metrics.records.HealthRecord` carries the figures and the flag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import gevent
import psutil

from rig.metrics.records import HealthRecord, RecordTags

__all__ = ["CPU_LIMIT_PERCENT", "LAG_LIMIT_MS", "SAMPLES_PER_P99", "HealthMonitor"]

LAG_LIMIT_MS = 10.0
"""Scheduling lag p99 above which latency figures are flagged as unreliable."""
CPU_LIMIT_PERCENT = 90.0
"""Process CPU (percent of one core) above which the generator counts as saturated."""


SAMPLES_PER_P99 = 101
"""Samples a window needs for its nearest-rank p99 to be below its maximum."""


def _p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile: the maximum of 100 values or fewer."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class HealthMonitor:
    """Samples scheduling lag and CPU; emits a health record every ``report_s``.

    ``points`` returns the metrics sink's running totals of points written and dropped
    (cumulative, as a counter), reported in every record.
    """

    def __init__(
        self,
        tags: RecordTags,
        sink: Callable[[HealthRecord], None],
        *,
        users: Callable[[], int] = lambda: 0,
        turns: Callable[[], int] = lambda: 0,
        points: Callable[[], tuple[int, int]] = lambda: (0, 0),
        interval_s: float = 0.01,
        report_s: float = 2.0,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = gevent.sleep,
        wall_clock: Callable[[], float] = time.time,
        cpu_percent: Callable[[], float] | None = None,
    ):
        self.tags = tags
        self.sink = sink
        self.users = users
        self.turns = turns
        self.points = points
        self.interval_s = interval_s
        self.report_s = report_s
        self.saturated_reports = 0
        self.reports = 0
        self.worst_lag_p99_ms = 0.0
        self.clock = clock
        """Monotonic seconds; the lag is measured with it (a test passes its own)."""
        self.sleep = sleep
        self.wall_clock = wall_clock
        """Seconds since the epoch, for the records' timestamps only."""
        if cpu_percent is None:
            process = psutil.Process()
            cpu_percent = partial(process.cpu_percent, None)
        self.cpu_percent = cpu_percent
        """The process's CPU since the last call, in percent of one core."""
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Begin sampling in a background greenlet."""
        self.cpu_percent()  # prime: the next call measures from now
        self._greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        """Stop sampling (the last partial window is reported)."""
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None

    def run(self) -> None:
        """The sampling loop, until :class:`gevent.GreenletExit` (``start`` runs it in a
        greenlet and ``stop`` kills it; a test calls it with its own clock and sleep)."""
        lags: list[float] = []
        window_start = self.clock()
        turns_before = self.turns()
        try:
            while True:
                asked = self.clock()
                self.sleep(self.interval_s)
                woke = self.clock()
                lags.append(max(0.0, (woke - asked - self.interval_s) * 1000))
                if woke - window_start >= self.report_s:
                    turns_now = self.turns()
                    self._report(lags, turns_now - turns_before, woke - window_start)
                    lags, window_start, turns_before = [], woke, turns_now
        except gevent.GreenletExit:
            if lags:
                elapsed = self.clock() - window_start
                self._report(lags, self.turns() - turns_before, elapsed)

    def _report(self, lags: list[float], turns: int, elapsed: float) -> None:
        cpu = self.cpu_percent()
        p99 = _p99(lags)
        saturated = p99 > LAG_LIMIT_MS or cpu > CPU_LIMIT_PERCENT
        self.reports += 1
        self.saturated_reports += saturated
        self.worst_lag_p99_ms = max(self.worst_lag_p99_ms, p99)
        written, dropped = self.points()
        self.sink(
            HealthRecord(
                tags=self.tags,
                ts=self.wall_clock(),
                users=self.users(),
                turns_per_s=round(turns / elapsed, 3) if elapsed > 0 else 0.0,
                cpu_percent=round(cpu, 1),
                lag_ms_p99=round(p99, 3),
                lag_ms_max=round(max(lags, default=0.0), 3),
                saturated=saturated,
                points_written=written,
                points_dropped=dropped,
            )
        )
