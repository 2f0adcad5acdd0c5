"""How many concurrent sessions one worker core and one mock core carry before they degrade.

For each session count N of a sweep, a fresh mock (one worker process, pinned to one CPU)
and ``rig compare`` with N ``ws`` sessions (one Locust process, pinned to the other CPU)
run for ``--seconds`` at the ``fast`` preset's pacing with tools in real time. Per cell:

* over the steady window (from 2 s after the last session started to the end of the run
  time): the client's scheduling lag (the worst 2 s window's p99 from its own health
  records) and CPU, the mock's CPU (busy cores, process clocks), turns/s, and TTFT p50 /
  p95 of the turns started in the window, against the first (smallest) cell's TTFT p50:
  the unloaded reference of the run.

A worker core is "degraded" when lag p99 exceeds 10 ms (the load generator's own bound);
a mock core when TTFT p50 exceeds 1.25x the reference or the mock is busy above 0.9. The
bench prints the largest N that kept each side healthy. On a 2-core machine one side can
saturate before the other: the other side's figure is then a lower bound ("≥ N").

    python bench/scale.py [--sessions 100,200,400,700,1000] [--seconds 30] [--delta-tokens 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import int_list, machine_cpu_seconds, noisy_warning, table  # noqa: E402

LAG_LIMIT_MS = 10.0
TTFT_FACTOR = 1.25
BUSY_LIMIT = 0.9
SPAWN_S = 5.0
"""rig compare starts its sessions over 5 s."""


def _pinned(cpu: int | None):
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _start_mock(args: argparse.Namespace, cpu: int | None) -> tuple[subprocess.Popen, str]:
    from rig.run.ports import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "rig", "mock", "--port", str(port), "--preset", args.preset,
            "--delta-tokens", str(args.delta_tokens), "--seed", "0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_pinned(cpu),
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "rig mock listening on" in line:
            break
    else:
        raise RuntimeError("the mock did not start")
    return process, f"http://127.0.0.1:{port}/v1"


def _cell(args: argparse.Namespace, sessions: int, cpus: tuple[int | None, int | None]) -> dict:
    mock, url = _start_mock(args, cpus[0])
    mock_proc = psutil.Process(mock.pid)
    with tempfile.TemporaryDirectory(prefix="rig-bench-scale-") as directory:
        run = subprocess.Popen(
            [
                sys.executable, "-m", "rig", "compare", "--target-url", url,
                "--transports", "ws", "--users", str(sessions),
                "--duration", f"{args.seconds}s", "--time-scale", "1",
                "--stop-timeout", "120", "--out", directory,
                "--json", os.path.join(directory, "summary.json"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=_pinned(cpus[1]),
        )  # fmt: skip
        client_proc = psutil.Process(run.pid)
        # The steady window: from when every session has started (rig compare spawns them
        # over 5 s) until the end of the run's duration. A bench may wait on the clock.
        time.sleep(SPAWN_S + 2)
        window_start = time.time()
        marks0 = (machine_cpu_seconds(), _cpu(mock_proc), _cpu(client_proc), time.monotonic())
        time.sleep(max(1.0, args.seconds - SPAWN_S - 3))
        marks1 = (machine_cpu_seconds(), _cpu(mock_proc), _cpu(client_proc), time.monotonic())
        window_end = time.time()
        _, stderr = run.communicate(timeout=args.seconds + 300)
        mock.terminate()
        mock.wait()
        if run.returncode != 0:
            raise RuntimeError(f"{sessions} sessions: rig compare failed:\n{stderr[-3000:]}")
        summary = json.loads(Path(directory, "summary.json").read_text())
        (run_dir,) = [p for p in Path(directory).iterdir() if p.is_dir()]
        health = [json.loads(line) for line in (run_dir / "health.jsonl").open()]
        turns = [json.loads(line) for line in (run_dir / "turns.jsonl").open()]
    wall = marks1[3] - marks0[3]
    mock_busy = (marks1[1] - marks0[1]) / wall
    client_busy = (marks1[2] - marks0[2]) / wall
    steady = [h for h in health if window_start <= h["ts"] <= window_end + 0.5]
    turns = [t for t in turns if window_start <= t["ts"] <= window_end]
    ttfts = sorted(t["ttft_ms"] for t in turns if t["status"] in ("ok", "reconnected"))
    ws = summary["transports"]["ws"]
    return {
        "sessions": sessions,
        "turns": len(turns),
        "turns_per_s": len(turns) / wall,
        "errors": ws["errors"],
        "client_busy": client_busy,
        "lag_p99_ms": max((h["lag_ms_p99"] for h in steady), default=None),
        "saturated_windows": sum(h["saturated"] for h in steady),
        "mock_busy": mock_busy,
        "ttft_p50_ms": ttfts[len(ttfts) // 2] if ttfts else None,
        "ttft_p95_ms": ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))] if ttfts else None,
        "other_busy": max(0.0, (marks1[0] - marks0[0]) / wall - mock_busy - client_busy),
    }


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int_list, default=(100, 200, 400, 700, 1000))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--delta-tokens", type=int, default=8)
    parser.add_argument("--no-pin", action="store_true", help="let both processes float")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    counts = list(args.sessions)
    cpus: tuple[int | None, int | None] = (None, None)
    if not args.no_pin and hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2:
        first, second = sorted(os.sched_getaffinity(0))[:2]
        cpus = (first, second)
    cells = []
    for sessions in counts:
        cell = _cell(args, sessions, cpus)
        cells.append(cell)
        print(
            f"{sessions} sessions: lag p99 {cell['lag_p99_ms']} ms, "
            f"mock busy {cell['mock_busy']:.2f}, TTFT p50 {cell['ttft_p50_ms']} ms",
            flush=True,
        )
    reference = cells[0]["ttft_p50_ms"] or 0.0
    for cell in cells:
        cell["client_ok"] = (cell["lag_p99_ms"] or 0) <= LAG_LIMIT_MS and cell["errors"] == 0
        cell["mock_ok"] = (
            cell["ttft_p50_ms"] is not None
            and cell["ttft_p50_ms"] <= TTFT_FACTOR * reference
            and cell["mock_busy"] <= BUSY_LIMIT
        )
    print()
    print(f"mock: {args.preset}, --delta-tokens {args.delta_tokens}; pinned CPUs {cpus}\n")
    print(
        table(
            [
                ("sessions", lambda c: f"{c['sessions']:,}"),
                ("turns/s", lambda c: f"{c['turns_per_s']:.0f}"),
                ("client busy", lambda c: f"{c['client_busy']:.2f}"),
                ("lag p99 ms", lambda c: f"{c['lag_p99_ms']}"),
                ("mock busy", lambda c: f"{c['mock_busy']:.2f}"),
                ("TTFT p50 ms", lambda c: f"{c['ttft_p50_ms']:.0f}"),
                ("TTFT p95 ms", lambda c: f"{c['ttft_p95_ms']:.0f}"),
                ("errors", lambda c: str(c["errors"])),
                ("worker ok", lambda c: "yes" if c["client_ok"] else "no"),
                ("mock ok", lambda c: "yes" if c["mock_ok"] else "no"),
            ],
            cells,
        )
    )

    def healthy(key: str) -> str:
        passing = [c["sessions"] for c in cells if c[key]]
        best = 0
        for cell in cells:
            if not cell[key]:
                break
            best = cell["sessions"]
        suffix = " (not reached: every cell passed)" if len(passing) == len(cells) else ""
        return f"{best:,}{suffix}" if best else f"< {cells[0]['sessions']:,}"

    print(f"\nsessions per worker core (lag p99 <= {LAG_LIMIT_MS:g} ms): {healthy('client_ok')}")
    print(
        f"sessions per mock core (TTFT p50 <= {TTFT_FACTOR}x {reference:.0f} ms, busy <= "
        f"{BUSY_LIMIT}): {healthy('mock_ok')}"
    )
    warning = noisy_warning([c["other_busy"] for c in cells])
    if warning:
        print("\n" + warning)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(cells, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
