"""The rig's run options that are not Locust's: parsed and checked without Locust.

``rig compare`` validates with these before any load starts; the Locust plugin applies
them. Importing this module does not import Locust (which monkey-patches the process).
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.loadgen.registry import parse_transports
from rig.traces.format import Trace, TraceError, load_trace
from rig.workload.scenarios import Scenario, builtin_scenarios, load_scenario

__all__ = [
    "ARRIVALS",
    "RECORDED",
    "SPAWN",
    "TRACE_PREFIX",
    "TracedWorkload",
    "parse_transports",
    "parse_weights",
    "parse_workload",
    "resolve_scenarios",
    "turn_bucket",
]

TRACE_PREFIX = "trace:"
"""``--workload trace:NAME|PATH``: replay a trace instead of the scenarios."""

SPAWN = "spawn"
"""``--arrivals spawn``: a session starts its first task as soon as Locust spawns it."""
RECORDED = "recorded"
"""``--arrivals recorded``: a session replaying a trace starts its first task its traced
session's ``start_s`` times ``--time-scale`` after the run started."""
ARRIVALS: tuple[str, ...] = (SPAWN, RECORDED)
"""The choices of ``--arrivals``."""


def turn_bucket(turn: int) -> str:
    """A bounded name for a turn index in Locust's statistics."""
    if turn < 3:
        return str(turn)
    if turn < 10:
        return "3-9"
    if turn < 20:
        return "10-19"
    return "20+"


def parse_weights(value: str, transports: list[str]) -> dict[str, int]:
    """``--transport-weights`` such as ``http=3,ws=1``, checked against the transports."""
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, number = part.partition("=")
        if not sep or name not in transports or not number.isdigit() or int(number) < 1:
            raise ValueError(
                f"--transport-weights {value!r}: expected NAME=WEIGHT pairs with NAME one of "
                f"{', '.join(transports)} and WEIGHT a positive integer"
            )
        weights[name] = int(number)
    return weights


def resolve_scenarios(value: str) -> list[Scenario]:
    """``--scenario``: a built-in name, a file, or ``mixed`` (all built-ins)."""
    builtins = builtin_scenarios()
    if value == "mixed":
        return [builtins[name] for name in sorted(builtins)]
    return [load_scenario(value)]


@dataclass(frozen=True)
class TracedWorkload:
    """A trace to replay (``--workload trace:...``): its name as given and its sessions."""

    name: str
    trace: Trace

    @property
    def turns(self) -> int:
        """Every traced turn of every session."""
        return sum(len(session.turns) for session in self.trace.sessions)

    def describe(self) -> dict[str, object]:
        """``workload`` of meta.json and summary.json."""
        return {"trace": self.name, "sessions": len(self.trace.sessions), "turns": self.turns}


def parse_workload(value: str) -> TracedWorkload | None:
    """``--workload``: ``scenarios`` (or empty: the ``--scenario`` tasks; ``None``) or
    ``trace:NAME|PATH`` (a shipped trace set, a trace file or a recording directory).
    Raises :class:`~rig.traces.format.TraceError` for a trace that cannot be read or has
    no sessions, and ``ValueError`` for anything else."""
    if value in ("", "scenarios"):
        return None
    if not value.startswith(TRACE_PREFIX) or not value[len(TRACE_PREFIX) :]:
        raise ValueError(
            f"--workload {value!r}: expected 'scenarios' or 'trace:NAME|PATH' "
            "(a shipped trace set such as trace:codex, a trace file or a directory)"
        )
    name = value[len(TRACE_PREFIX) :]
    trace = load_trace(name)
    if not any(session.turns for session in trace.sessions):
        raise TraceError("no sessions with turns to replay", path=name)
    sessions = tuple(session for session in trace.sessions if session.turns)
    return TracedWorkload(name, Trace(trace.headers, sessions))
