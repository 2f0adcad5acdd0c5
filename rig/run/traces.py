"""``rig trace import codex`` and ``rig trace export-scenarios``.

``import codex`` converts Codex CLI session rollouts into a trace file
(:mod:`rig.traces.codex`). ``export-scenarios`` plays each built-in scenario once with the
rig's own agent against an embedded mock that records (``rig mock --record``), so the
trace is the rig's own traffic as the mock saw it; the tool time between turns is the
scenario's simulated tool time (taken from the session instead of slept).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rig.errors import RigError
from rig.traces.codex import RequestShape, find_rollouts, import_rollouts
from rig.traces.format import (
    Session,
    TraceError,
    TraceHeader,
    load_trace,
    read_trace,
    write_trace,
)

__all__ = ["add_parser", "export_scenarios", "import_codex", "run"]

_PROG = "rig trace"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``trace`` with ``import codex`` and ``export-scenarios`` to ``rig``'s parser."""
    parser = subparsers.add_parser(
        "trace",
        help="agent traces: import Codex CLI sessions, export the built-in scenarios",
        description="Agent traces (docs/traces.md): the shapes of real sessions, as a "
        "versioned JSONL file. Record one with `rig mock --record DIR`.",
    )
    actions = parser.add_subparsers(dest="trace_command", required=True)
    imports = actions.add_parser(
        "import",
        help="convert another agent's session files into a trace",
        description="Convert another agent's session files into a trace.",
    )
    agents = imports.add_subparsers(dest="agent", required=True)
    codex = agents.add_parser(
        "codex",
        help="Codex CLI rollouts ($CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl)",
        description="Convert Codex CLI session rollouts into one trace file: one session "
        "per rollout, content stripped unless --keep-content.",
    )
    codex.add_argument(
        "paths", nargs="+", metavar="PATH", help="rollout files, or directories to search"
    )
    codex.add_argument(
        "-o", "--out", default="codex-trace.jsonl", help="the trace file to write "
        "(default: codex-trace.jsonl)"
    )  # fmt: skip
    codex.add_argument(
        "--keep-content",
        action="store_true",
        help="keep instructions and items (texts, arguments, outputs) in the trace",
    )
    codex.add_argument(
        "--shape-from",
        metavar="NAME|PATH",
        help="take what a rollout lacks (the tool schemas' count and size, the request's "
        "other fields) from a recording of the same Codex version: a shipped trace set "
        "such as codex, a trace file or a `rig mock --record` directory; the turns then "
        "get tools_bytes and body_bytes, so a replay is sized and compared",
    )
    export = actions.add_parser(
        "export-scenarios",
        help="play each built-in scenario once against a recording mock; write its trace",
        description="Play each built-in scenario once with the rig's own agent against an "
        "embedded recording mock and write DIR/<scenario>.jsonl.",
    )
    export.add_argument("out_dir", metavar="DIR", help="where to write the traces")
    export.add_argument(
        "--transports",
        default="http",
        help="comma-separated transports, one session each per scenario (default: http)",
    )
    export.add_argument("--seed", type=int, default=0, help="the plans' seed (default: 0)")
    export.add_argument(
        "--keep-content", action="store_true", help="keep instructions, tools and items"
    )
    return parser


def import_codex(
    paths: Sequence[str], out: str, *, keep_content: bool = False, shape_from: str | None = None
) -> tuple[list[Session], Counter[str]]:
    """Convert the rollouts under ``paths`` into the trace file ``out``: its sessions and
    the lines skipped, by type. ``shape_from`` names a recording (a shipped set, a file or
    a directory) to take each Codex version's tools and request size from."""
    files = find_rollouts(paths)
    if not files:
        raise TraceError("no rollout-*.jsonl files found", path=", ".join(paths))
    shaping = load_trace(shape_from) if shape_from is not None else None
    shapes: dict[str, RequestShape] = {}
    sessions: list[Session] = []
    skipped: Counter[str] = Counter()
    for result in import_rollouts(files, keep_content=keep_content):
        session = result.session
        if shaping is not None:
            version = session.info.agent.rpartition("/")[2]
            if version not in shapes:
                shapes[version] = RequestShape.of(shaping, version, str(shape_from))
            session = shapes[version].apply(session)
        sessions.append(session)
        skipped.update(result.skipped)
    note = "imported from Codex CLI rollouts"
    if shape_from is not None:
        note += f"; tools and request sizes from {shape_from}"
    header = TraceHeader(
        source="codex",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        content=keep_content,
        note=note,
    )
    write_trace(out, header, sessions)
    return sessions, skipped


def export_scenarios(
    out_dir: str,
    *,
    transports: Sequence[str] = ("http",),
    seed: int = 0,
    keep_content: bool = False,
) -> list[Path]:
    """Play each built-in scenario once per transport against a recording mock and write
    ``out_dir/<scenario>.jsonl``; the written files."""
    from rig.workload.scenarios import builtin_scenarios

    written: list[Path] = []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for name, scenario in builtin_scenarios().items():
        sessions = [_play(scenario, transport, seed, keep_content) for transport in transports]
        header = TraceHeader(
            source="scenario",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            content=keep_content,
            note=f"the built-in scenario {name}, played by the rig's agent (seed {seed})",
        )
        path = Path(out_dir) / f"{name}.jsonl"
        write_trace(path, header, sessions)
        written.append(path)
    return written


def _play(scenario: Any, transport: str, seed: int, keep_content: bool) -> Session:
    """One task of ``scenario`` over ``transport`` against a recording mock: the session
    the mock recorded, with the simulated tool time as its gaps."""
    from rig.loadgen.registry import TransportContext
    from rig.loadgen.session import AgentSession, SessionConfig
    from rig.loadgen.target import Target
    from rig.metrics.records import RecordTags, TurnRecord
    from rig.run.mock_process import MockProcess

    name = scenario.name
    tool_times: dict[int, float] = {}
    records: list[Any] = []

    def wait(seconds: float) -> None:  # the tool time after the turn last recorded
        done = sum(isinstance(r, TurnRecord) for r in records)
        tool_times[done - 1] = tool_times.get(done - 1, 0.0) + seconds

    with tempfile.TemporaryDirectory(prefix="rig-trace-") as recording:
        args = ["--preset", "instant", "--seed", str(seed), "--record", recording]
        if keep_content:
            args.append("--keep-content")
        with MockProcess(args) as mock:
            config = SessionConfig(
                transport=transport,
                scenario=scenario,
                target=Target.from_url(mock.base_url),
                tags=RecordTags("trace-export", name, transport, "mock"),
                seed=seed,
                time_scale=1.0,
                context=TransportContext(),
            )
            session = AgentSession(config, records.append, sleep=wait)
            try:
                task = session.run_task()
            finally:
                session.close()
            if not task.ok:
                raise TraceError(f"scenario {name} over {transport} failed: {task.error}")
        trace = read_trace(recording)  # complete: the mock wrote its last turns as it stopped
    if len(trace.sessions) != 1:
        raise TraceError(
            f"scenario {name} over {transport}: the mock recorded "
            f"{len(trace.sessions)} sessions, expected 1"
        )
    return _with_tool_time(trace.sessions[0], f"{name}-{transport}", tool_times)


def _with_tool_time(session: Session, key: str, tool_times: dict[int, float]) -> Session:
    """The recorded session under ``key``, the gap after each turn grown by the simulated
    tool time the agent would have waited after it (and later turns moved on)."""
    shift = 0.0
    turns = []
    for turn in session.turns:
        gap = turn.gap_s
        extra = tool_times.get(turn.index, 0.0) if gap is not None else 0.0
        turns.append(
            dataclasses.replace(
                turn,
                session=key,
                at_s=round(turn.at_s + shift, 6),
                gap_s=round(gap + extra, 6) if gap is not None else None,
            )
        )
        shift += extra
    info = dataclasses.replace(session.info, session=key, origin=f"scenario {key}", start_s=None)
    return Session(info, tuple(turns))


def run(args: argparse.Namespace) -> int:
    """Run ``rig trace ...``."""
    try:
        if args.trace_command == "import":
            sessions, skipped = import_codex(
                args.paths, args.out, keep_content=args.keep_content, shape_from=args.shape_from
            )
            turns = sum(len(s.turns) for s in sessions)
            print(f"{_PROG}: {len(sessions)} session(s), {turns} turn(s) -> {args.out}")
            if skipped:
                listed = ", ".join(f"{kind} {n}" for kind, n in sorted(skipped.items()))
                print(f"{_PROG}: lines skipped: {listed}", file=sys.stderr)
            return 0
        transports = [t.strip() for t in args.transports.split(",") if t.strip()]
        for path in export_scenarios(
            args.out_dir, transports=transports, seed=args.seed, keep_content=args.keep_content
        ):
            print(path)
        return 0
    except RigError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
