"""Soak: N agent sessions for a long time against the mock, resident memory sampled.

One mock process (``--preset fast`` by default) and one load generator process running N
:class:`rig.loadgen.session.AgentSession` s (``ws`` by default) with real-time tool waits,
each task after its back-off, for ``--duration``. Every ``--sample-every`` seconds the
resident memory (RSS, psutil) of both processes is sampled and printed; at the end a table
of the samples, each process's growth in MB per hour (the mean of the last quarter of the
samples against the first quarter, over the time between the quarters' middles, leaving
out a ``--warmup``, by default a tenth of the run up to 5 minutes), the load
generator's turns and errors, and a verdict against ``--max-growth`` (MB per hour). The
figures also go to ``--json``.

Usage (from the repository root)::

    python bench/soak.py                                   # 1,000 ws sessions for 1 h
    python bench/soak.py --sessions 200 --duration 3m      # a short run

The load generator child is started as ``python bench/soak.py --client ...`` and prints
one JSON line; it monkey-patches with gevent before anything else is imported. At the
deadline its sessions are stopped (a turn in flight is recorded as stopped).
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--client" in sys.argv[1:]:
    from gevent import monkey

    monkey.patch_all()  # the client child: before anything else touches sockets or threads

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import positive_int, table

from rig.options import parse_duration

MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """Resident memory of both processes at one moment of the run."""

    t_s: float
    mock_mb: float
    loadgen_mb: float


def growth_mb_per_h(samples: Sequence[Sample], field: str, warmup_s: float = 0.0) -> float:
    """The mean of the last quarter of the samples after ``warmup_s`` minus that of the
    first quarter, per hour between the quarters' middles (0 with fewer than 4)."""
    samples = [s for s in samples if s.t_s >= warmup_s]
    quarter = len(samples) // 4
    if quarter < 1:
        return 0.0
    first, last = samples[:quarter], samples[-quarter:]
    span_s = statistics.fmean(s.t_s for s in last) - statistics.fmean(s.t_s for s in first)
    if span_s <= 0:
        return 0.0
    rise = statistics.fmean(getattr(s, field) for s in last) - statistics.fmean(
        getattr(s, field) for s in first
    )
    return rise / span_s * 3600


# -- the load generator child ---------------------------------------------------------------


def run_client(url: str, sessions: int, seconds: float, transport: str, ready: str) -> dict:
    """N sessions until ``seconds`` from now; the totals."""
    import gevent

    from rig.fdlimit import raise_open_files_limit
    from rig.loadgen.registry import TransportContext
    from rig.loadgen.session import AgentSession, SessionConfig
    from rig.loadgen.target import Target
    from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
    from rig.workload.scenarios import builtin_scenarios

    raise_open_files_limit()
    scenarios = [builtin_scenarios()[name] for name in sorted(builtin_scenarios())]
    context = TransportContext()
    counts = {"turns": 0, "errors": 0, "tasks": 0, "tasks_ok": 0}

    def sink(record: object) -> None:  # counted, not kept: memory is what is measured
        if isinstance(record, TurnRecord):
            counts["turns"] += 1
            counts["errors"] += record.status in ("error", "timeout", "rate_limited")
        elif isinstance(record, TaskRecord):
            counts["tasks"] += 1
            counts["tasks_ok"] += record.ok

    until = time.monotonic() + seconds

    def one(index: int) -> None:
        scenario = scenarios[index % len(scenarios)]
        config = SessionConfig(
            transport=transport,
            scenario=scenario,
            target=Target.from_url(url),
            tags=RecordTags("soak", scenario.name, transport, "mock"),
            seed=index,
            context=context,
        )
        session = AgentSession(config, sink, session_index=index)
        try:
            session.run_tasks(until)
        finally:
            session.close()

    Path(ready).write_text("ready")
    greenlets = [gevent.spawn(one, index) for index in range(sessions)]
    gevent.joinall(greenlets, timeout=max(0.0, until - time.monotonic()))
    gevent.killall(greenlets)  # at the deadline: turns in flight are recorded as stopped
    context.close()
    failed = [g for g in greenlets if g.exception is not None]
    return {**counts, "sessions_crashed": len(failed)}


# -- the parent: mock, client, sampling -----------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=positive_int, default=1000)
    parser.add_argument("--duration", type=parse_duration, default=3600.0, help="(1h)")
    parser.add_argument("--transport", default="ws")
    parser.add_argument("--preset", default="fast", help="the mock's latency preset (fast)")
    parser.add_argument(
        "--sample-every", type=parse_duration, default=5.0, help="seconds between samples (5)"
    )
    parser.add_argument(
        "--warmup",
        type=parse_duration,
        default=None,
        help="samples left out of the growth: sessions starting, caches filling "
        "(default: a tenth of the duration, at most 5m)",
    )
    parser.add_argument(
        "--max-growth", type=float, default=50.0, help="the bound, MB per hour per process (50)"
    )
    parser.add_argument("--json", default="soak.json", help="where the figures go")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.client:
        totals = run_client(args.url, args.sessions, args.duration, args.transport, args.ready)
        print(json.dumps(totals), flush=True)
        return 0

    from rig.run.mock_process import MockProcess

    ready = Path(f"/tmp/rig-soak-{os.getpid()}.ready")
    ready.unlink(missing_ok=True)
    samples: list[Sample] = []
    with MockProcess(["--preset", args.preset]) as mock:
        assert mock._process is not None
        mock_ps = psutil.Process(mock._process.pid)
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                "--url",
                mock.base_url,
                "--sessions",
                str(args.sessions),
                "--duration",
                str(args.duration),
                "--transport",
                args.transport,
                "--ready",
                str(ready),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        client_ps = psutil.Process(client.pid)
        while not ready.exists() and client.poll() is None:
            time.sleep(0.1)
        started = time.monotonic()
        print(f"{args.sessions} {args.transport} sessions for {args.duration:g} s, preset "
              f"{args.preset}; sampling RSS every {args.sample_every:g} s", flush=True)  # fmt: skip
        print(f"{'t (s)':>8}  {'mock MB':>9}  {'loadgen MB':>10}", flush=True)
        while client.poll() is None:
            try:
                sample = Sample(
                    round(time.monotonic() - started, 1),
                    round(_rss(mock_ps) / MB, 1),
                    round(_rss(client_ps) / MB, 1),
                )
            except psutil.NoSuchProcess:
                break
            samples.append(sample)
            print(f"{sample.t_s:8.0f}  {sample.mock_mb:9.1f}  {sample.loadgen_mb:10.1f}",
                  flush=True)  # fmt: skip
            deadline = time.monotonic() + args.sample_every
            while client.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        out, _ = client.communicate()
    ready.unlink(missing_ok=True)
    totals = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    warmup = args.warmup if args.warmup is not None else min(300.0, args.duration / 10)
    growth = {
        "mock": growth_mb_per_h(samples, "mock_mb", warmup),
        "loadgen": growth_mb_per_h(samples, "loadgen_mb", warmup),
    }
    rows = [
        (name, [getattr(s, field) for s in samples], growth[name])
        for name, field in (("mock", "mock_mb"), ("loadgen", "loadgen_mb"))
    ]
    print()
    print(
        table(
            [
                ("process", lambda r: r[0]),
                ("first MB", lambda r: f"{r[1][0]:.1f}"),
                ("min MB", lambda r: f"{min(r[1]):.1f}"),
                ("max MB", lambda r: f"{max(r[1]):.1f}"),
                ("last MB", lambda r: f"{r[1][-1]:.1f}"),
                ("growth MB/h", lambda r: f"{r[2]:+.1f}"),
            ],
            rows,
        )
    )
    flat = all(abs(value) <= args.max_growth for value in growth.values())
    print(f"\nload generator: {totals}")
    print(
        f"growth (last vs first quarter of the samples after {warmup:g} s of warm-up): mock "
        f"{growth['mock']:+.1f} MB/h, load generator {growth['loadgen']:+.1f} MB/h: "
        f"{'flat' if flat else 'NOT flat'} within {args.max_growth:g} MB/h"
    )
    Path(args.json).write_text(
        json.dumps(
            {
                "sessions": args.sessions,
                "transport": args.transport,
                "preset": args.preset,
                "duration_s": args.duration,
                "sample_every_s": args.sample_every,
                "warmup_s": warmup,
                "samples": [asdict(s) for s in samples],
                "growth_mb_per_h": growth,
                "max_growth_mb_per_h": args.max_growth,
                "flat": flat,
                "loadgen": totals,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"figures: {args.json}")
    return 0 if flat else 1


def _rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and its children (a mock with workers)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


if __name__ == "__main__":
    raise SystemExit(main())
