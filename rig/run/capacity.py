"""``rig capacity``: how many concurrent agents each transport sustains under one quota.

For each transport in turn (a phase), it runs a ``steps`` load shape (N sessions more every
T seconds up to M) against the target: by default a fresh embedded mock with the given
limits (``--rpm``, ``--tpm``, ...), so every transport meets the same quota from a full
bucket; with ``--target gateway``, a fresh embedded gateway in front of it too, whose
``/stats`` the phase reads (``--gateway-stats``; a deployed gateway's with
``--target-url``), so each transport's capacity section says what the gateway did over
its phase: ingress saved, upstream bytes, misses, memory per session at the peak.

Each phase is a ``rig locust --headless`` child process writing its own run
directory; the phases are then merged into one run directory whose meta.json records each
phase's shape and start (the phases' own directories and logs are kept under
``phases/``), and rendered: summary.json gains ``capacity.<transport>``
(:mod:`rig.report.capacity`), and report.html plots throughput, rejected fraction and TTFT
p95 against sessions.

Exit codes as ``rig compare``: 0 ok, 1 a ``--check`` failed, 2 bad usage, 3 the target
was unreachable or a phase failed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from rig.options import GATEWAY, RunOptions, to_argv

__all__ = ["render_capacity_table", "run_capacity"]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TARGET = 3


def _shape(options: RunOptions) -> str:
    return f"steps:users={options.step_users},every={options.step_time:g}s,max={options.max_users}"


def _phase(
    options: RunOptions,
    transport: str,
    target_url: str,
    run_id: str,
    workdir: Path,
    out: TextIO,
    processes: int = 1,
    gateway_stats: str = "",
) -> Path:
    shape = _shape(options)
    phase = options.replace(
        shape=shape,
        transports=transport,
        target_url=target_url,
        out=str(workdir),
        run_id=run_id,
        check=[],  # judged on the merged run, not per phase
        gateway_stats=gateway_stats,
        target_name=GATEWAY if options.target == GATEWAY else options.target_name,
    )
    argv = [sys.executable, "-m", "rig", "locust", "--headless", *to_argv(phase, "locust")]
    argv += ["--stop-timeout", f"{max(1, round(options.stop_timeout))}"]
    if processes > 1:  # Locust's own: a master and that many forked workers
        argv += ["--processes", str(processes)]
    log_path = workdir / f"{run_id}.log"
    spread = f" in {processes} worker processes" if processes > 1 else ""
    print(f"phase {transport}: {shape}{spread} (log: {log_path})", file=out, flush=True)
    with open(log_path, "w", encoding="utf-8") as log:
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode not in (0, 1):  # 1: Locust counted failed requests, still a run
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"phase {transport} exited with {done.returncode}:\n{tail}")
    return workdir / run_id


def run_capacity(options: RunOptions, out: TextIO = sys.stdout) -> int:
    """Run every phase, merge, report; return the exit code."""
    from rig.loadgen.link import link_mix
    from rig.loadgen.options import parse_transports
    from rig.loadgen.target import parse_base_urls
    from rig.metrics.rundir import RunDirectory, new_run_id
    from rig.mock.latency import PresetError, load_preset
    from rig.report import CheckError, ReportError, evaluate, parse_check, render_run
    from rig.run.gateway_process import GatewayProcess
    from rig.run.mock_process import MockProcess, MockProcessError
    from rig.run.workers import resolve_processes
    from rig.workload.shapes import ShapeError, parse_shape

    def fail(code: int, message: str) -> int:
        print(f"rig capacity: {message}", file=sys.stderr)
        return code

    try:
        transports = parse_transports(options.transports)
        checks = [parse_check(text) for text in options.check]
        link_mix(options.link, options.links)  # LinkError (a ValueError): --link with --links
        parse_shape(_shape(options))
        latency = load_preset(options.preset) if options.target_url is None else None
        if options.target_url is not None:  # one base URL or a list: each one valid
            parse_base_urls(options.target_url)
    except (ValueError, ShapeError, CheckError, PresetError) as exc:
        return fail(EXIT_USAGE, str(exc))
    if options.target_url is not None and options.quota.given():
        return fail(EXIT_USAGE, "--rpm/--tpm/... configure the embedded mock; drop --target-url")

    gateway = options.target == GATEWAY
    # Each phase's embedded mock (and gateway) keeps a core of its own under ``auto``.
    processes = resolve_processes(
        options.processes, embedded_servers=0 if options.target_url else 2 if gateway else 1
    )
    # The gateway's /stats: as given, else a deployed gateway's own URL(s).
    stats_url = options.gateway_stats or ((options.target_url or "") if gateway else "")
    run_id = new_run_id()
    workdir = Path(options.out) / f".{run_id}-phases"
    workdir.mkdir(parents=True, exist_ok=False)
    phases: dict[str, Any] = {}
    phase_dirs: list[Path] = []
    mock_limits = options.quota.mock_argv()
    mock_args = ["--preset", options.preset, "--seed", str(options.seed), *mock_limits]
    try:
        for transport in transports:
            phase_id = f"{run_id}-{transport}"
            with contextlib.ExitStack() as servers:
                url, stats = options.target_url, stats_url
                if url is None:  # fresh embedded servers for each phase
                    url = servers.enter_context(MockProcess(mock_args)).base_url
                    if gateway:
                        url = stats = servers.enter_context(GatewayProcess(url)).base_url
                path = _phase(
                    options, transport, url, phase_id, workdir, out, processes, gateway_stats=stats
                )
            meta = RunDirectory(path).read_json("meta.json")
            phases[transport] = {
                "shape": meta.get("shape"),
                "started_at": meta.get("started_at"),
                "duration_s": meta.get("duration_s"),
                "phase_run_id": phase_id,
            }
            phase_dirs.append(path)
    except (MockProcessError, RuntimeError, OSError) as exc:
        return fail(EXIT_TARGET, str(exc))

    first = RunDirectory(phase_dirs[0]).read_json("meta.json")
    meta = {
        key: first.get(key)
        for key in (
            "target",
            "scenario",
            "workload",
            "arrivals",
            "seed",
            "time_scale",
            "model",
            "rig_version",
        )
    }
    meta.update(
        transports=transports,
        phases=phases,
        capacity_criteria={
            "max_rate_limited": options.max_rate_limited,
            "ttft_slo_ms": options.ttft_slo_ms,
        },
        started_at=phases[transports[0]]["started_at"],
        duration_s=round(sum(p.get("duration_s") or 0 for p in phases.values()), 3),
        target_url=options.target_url or ("embedded gateway" if gateway else "embedded mock"),
        processes=processes,
    )
    if latency is not None:
        meta.update(preset=options.preset, latency_model=latency.as_dict(), mock_limits=mock_limits)
    merged = RunDirectory.create(options.out, run_id, meta)
    for path in phase_dirs:
        source = RunDirectory(path)
        for kind in ("turn", "task", "ratelimit", "rig"):
            merged.append(source.records(kind))
    merged.close()
    shutil.move(str(workdir), str(merged.path / "phases"))  # each phase's records and log
    try:
        rendered = render_run(merged.path)
    except ReportError as exc:
        return fail(EXIT_TARGET, str(exc))
    summary = rendered.summary
    print("", file=out)
    print(render_capacity_table(summary), file=out)
    print(f"\nrun directory: {merged.path}\nreport: {rendered.report_path}", file=out)
    if options.json_path:
        Path(options.json_path).write_bytes(rendered.summary_path.read_bytes())
    failed = 0
    for result in evaluate(checks, summary):
        print(f"check {'ok  ' if result.passed else 'FAIL'} {result.message}", file=out)
        failed += not result.passed
    return EXIT_CHECK_FAILED if failed else 0


def render_capacity_table(summary: dict[str, Any]) -> str:
    """Per transport and level: sessions, turns/s, rejected fraction, TTFT p95, KB/s sent;
    then the gateway's figures over the transport's phase, if one was read."""
    from rig.report.table import gateway_rows

    lines = []
    for transport, figures in (summary.get("capacity") or {}).items():
        criteria = figures["criteria"]
        lines.append(
            f"{transport}: knee at {figures['max_sessions']} sessions "
            f"(rejected <= {criteria['max_rate_limited']:.1%}, TTFT p95 <= "
            f"{criteria['ttft_slo_ms']:g} ms)"
            + (f"; the next level broke {figures['bound_by']}" if figures["bound_by"] else "")
        )
        lines.append(
            f"  {'sessions':>8}  {'turns/s':>8}  {'rejected':>8}  {'TTFT p95':>9}  {'KB/s sent':>9}"
        )
        for level in figures["levels"]:
            fraction = level["rate_limited_fraction"]
            p95 = level["ttft_ms_p95"]
            lines.append(
                f"  {level['sessions']:>8}  {level['turns_per_s']:>8.2f}  "
                f"{'-' if fraction is None else f'{fraction:.1%}':>8}  "
                f"{'-' if p95 is None else f'{p95:.0f} ms':>9}  "
                f"{level['bytes_sent_per_s'] / 1000:>9.1f}"
            )
        for row, value in gateway_rows({"gateway": figures.get("gateway")}):
            lines.append(f"  {row}: {value}")
    return "\n".join(lines)
