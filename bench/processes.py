"""``rig compare --processes N`` beside one process: the same sessions against the same
pinned mock, turns per second and each process's scheduling lag.

Each round runs ``rig compare`` once per process count (alternating, a fresh mock each
time), every process of the round (the mock, the ``rig compare`` process with its master,
its workers) pinned to the same cores (``--cpus``, default all of this machine's), so the
counts share exactly the same CPU. Per run: turns per second over the run (the summary's
turns over the run's duration), each load-generator process's scheduling lag p99 (the
worst of its 2 s health windows, and their median) and CPU, and the client processes'
total CPU per turn. The question it answers (issue "machine scale"): at a session count
that one process carries with lag, do two processes on the same cores make the same turns
per second at lower lag per process?

Usage (from the repository root)::

    python bench/processes.py                                   # 1 vs 2, 600 ws sessions
    python bench/processes.py --processes 1,2 --sessions 1000 --duration 60 --rounds 3

Figures and method: docs/performance.md ("Processes").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    int_list,
    machine_cpu_seconds,
    noisy_warning,
    positive_float,
    positive_int,
    table,
)

from rig.run.mock_process import MockProcess  # noqa: E402


@dataclass
class Run:
    """One ``rig compare`` run's figures."""

    processes: int
    round: int
    turns: int = 0
    seconds: float = 0.0
    failed: int = 0
    client_cpu_s: float = 0.0
    mock_cpu_s: float = 0.0
    wall_s: float = 0.0
    mock_busy_windows: list[float] = field(default_factory=list)
    """The mock's CPU share in each 2 s window of the run."""
    other_busy: float = 0.0
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0

    @property
    def lag_p99_worst(self) -> float:
        """The worst 2 s window's lag p99 of any process."""
        return max((w["lag_ms_p99_max"] or 0.0 for w in self.workers.values()), default=0.0)

    @property
    def lag_p99_median(self) -> float:
        """The median over every process's 2 s windows of their lag p99."""
        values = [v for w in self.workers.values() for v in w["window_p99s"]]
        return statistics.median(values) if values else 0.0

    @property
    def client_us_per_turn(self) -> float:
        return 1e6 * self.client_cpu_s / self.turns if self.turns else 0.0

    @property
    def mock_us_per_turn(self) -> float:
        return 1e6 * self.mock_cpu_s / self.turns if self.turns else 0.0

    @property
    def mock_busy(self) -> float:
        """The mock's CPU over the whole ``rig compare`` (start-up and stop included, so
        below its busy share while the load runs)."""
        return self.mock_cpu_s / self.wall_s if self.wall_s else 0.0


def _sample_busy(process: psutil.Process, done: threading.Event, into: list[float]) -> None:
    """Append ``process``'s CPU share of every 2 s window until ``done``."""
    last, at = sum(process.cpu_times()[:2]), time.monotonic()
    while not done.wait(2.0):
        now_cpu, now = sum(process.cpu_times()[:2]), time.monotonic()
        into.append((now_cpu - last) / (now - at))
        last, at = now_cpu, now


def _pin(cpus: frozenset[int]) -> None:
    os.sched_setaffinity(0, cpus)


def run_once(processes: int, round_: int, args: argparse.Namespace, cpus: frozenset[int]) -> Run:
    """One ``rig compare`` with ``processes`` against a fresh mock on ``cpus``."""
    result = Run(processes=processes, round=round_)
    mock_args = ["--preset", "fast", "--delta-tokens", str(args.delta_tokens)]
    previous = os.sched_getaffinity(0)
    _pin(cpus)  # the mock inherits it
    try:
        with MockProcess(mock_args) as mock, tempfile.TemporaryDirectory() as tmp:
            argv = [
                sys.executable, "-m", "rig", "compare", "--target-url", mock.base_url,
                "--processes", str(processes), "--transports", "ws",
                "--users", str(args.sessions), "--duration", f"{args.duration:g}",
                "--time-scale", f"{args.time_scale:g}", "--stop-timeout", "30",
                "--out", str(Path(tmp) / "runs"), "--json", str(Path(tmp) / "summary.json"),
            ]  # fmt: skip
            machine_before = machine_cpu_seconds()
            mock_process = psutil.Process(mock.pid)
            mock_before = sum(mock_process.cpu_times()[:2])
            started = time.monotonic()
            with open(Path(tmp) / "output.log", "wb") as log:
                child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            done = threading.Event()
            sampler = threading.Thread(
                target=_sample_busy, args=(mock_process, done, result.mock_busy_windows)
            )
            sampler.start()
            # Its rusage covers the workers too: it waits for (reaps) them before exiting.
            _, status, usage = os.wait4(child.pid, 0)
            done.set()
            sampler.join()
            child.returncode = os.waitstatus_to_exitcode(status)
            wall = time.monotonic() - started
            mock_cpu = sum(mock_process.cpu_times()[:2]) - mock_before
            machine = machine_cpu_seconds() - machine_before
            if child.returncode != 0:
                output = (Path(tmp) / "output.log").read_text(errors="replace")
                raise RuntimeError(f"rig compare exited {child.returncode}:\n{output[-3000:]}")
            result.client_cpu_s = usage.ru_utime + usage.ru_stime
            result.mock_cpu_s = mock_cpu
            result.wall_s = wall
            result.other_busy = max(0.0, (machine - result.client_cpu_s - mock_cpu) / wall)
            summary = json.loads((Path(tmp) / "summary.json").read_text())
            (run_dir,) = (Path(tmp) / "runs").iterdir()
            health = [
                json.loads(line) for line in (run_dir / "health.jsonl").read_text().splitlines()
            ]
            meta = json.loads((run_dir / "meta.json").read_text())
    finally:
        _pin(frozenset(previous))
    ws = summary["transports"]["ws"]
    result.turns = ws["turns"]
    result.failed = ws["errors"]
    result.seconds = float(meta.get("duration_s") or args.duration)
    for worker, figures in summary["rig"]["by_worker"].items():
        windows = [h["lag_ms_p99"] for h in health if h["worker"] == worker]
        result.workers[worker] = {**figures, "window_p99s": windows}
    return result


RUNS: list[Column[Run]] = [
    ("processes", lambda r: str(r.processes)),
    ("round", lambda r: str(r.round)),
    ("turns", lambda r: f"{r.turns:,}"),
    ("turns/s", lambda r: f"{r.turns_per_s:,.1f}"),
    ("failed", lambda r: str(r.failed)),
    ("client CPU us/turn", lambda r: f"{r.client_us_per_turn:,.0f}"),
    ("mock CPU us/turn", lambda r: f"{r.mock_us_per_turn:,.0f}"),
    (
        "mock busy: mean, max 2 s",
        lambda r: f"{r.mock_busy:.2f}, {max(r.mock_busy_windows, default=0.0):.2f}",
    ),
    ("lag p99 median ms", lambda r: f"{r.lag_p99_median:.1f}"),
    ("worst 2 s p99 ms", lambda r: f"{r.lag_p99_worst:.1f}"),
    (
        "per process: sessions, CPU mean",
        lambda r: "; ".join(
            f"{w} {f['users_max']}, {f['cpu_percent_mean']:.0f}%" for w, f in r.workers.items()
        ),
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int_list, default=(1, 2), help="e.g. 1,2")
    parser.add_argument("--sessions", type=positive_int, default=600, help="ws sessions")
    parser.add_argument("--duration", type=positive_float, default=45.0, help="seconds")
    parser.add_argument("--rounds", type=positive_int, default=2)
    parser.add_argument("--time-scale", type=float, default=1.0, help="tool time (1: real)")
    parser.add_argument("--delta-tokens", type=positive_int, default=8, help="mock's")
    parser.add_argument(
        "--cpus", type=int_list, default=None, help="cores for every process (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the runs as JSON")
    args = parser.parse_args(argv)
    cpus = frozenset(args.cpus) if args.cpus else frozenset(os.sched_getaffinity(0))
    runs: list[Run] = []
    for round_ in range(1, args.rounds + 1):
        for count in args.processes:
            run = run_once(count, round_, args, cpus)
            runs.append(run)
            print(
                f"  done: {count} process(es), round {round_}: {run.turns_per_s:.1f} turns/s, "
                f"lag p99 median {run.lag_p99_median:.1f} ms",
                file=sys.stderr,
            )
    print(
        f"processes: {args.sessions} ws sessions, mock --preset fast --delta-tokens "
        f"{args.delta_tokens}, tool time x{args.time_scale:g}, {args.duration:g} s runs; "
        f"every process on CPUs {sorted(cpus)}. lag: each process's HealthMonitor 2 s "
        "windows (p99 of 10 ms sleeps), median over windows and the worst window.\n"
    )
    print(table(RUNS, runs))
    by_count: dict[int, list[Run]] = {}
    for run in runs:
        by_count.setdefault(run.processes, []).append(run)
    base = by_count.get(min(by_count))
    if base and len(by_count) > 1:
        print()
        for count, group in sorted(by_count.items()):
            if group is base:
                continue
            tps = [g.turns_per_s / b.turns_per_s for g, b in zip(group, base, strict=False)]
            lag = [
                g.lag_p99_median / b.lag_p99_median
                for g, b in zip(group, base, strict=False)
                if b.lag_p99_median
            ]
            print(
                f"{count} vs {min(by_count)} process(es), per round: turns/s x"
                + ", ".join(f"{x:.2f}" for x in tps)
                + "; lag p99 median x"
                + ", ".join(f"{x:.2f}" for x in lag)
            )
    warning = noisy_warning([r.other_busy for r in runs])
    if warning:
        print("\n" + warning)
    if args.json:
        args.json.write_text(
            json.dumps([{**r.__dict__, "turns_per_s": r.turns_per_s} for r in runs], indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
