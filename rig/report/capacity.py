"""The knee of a step-load run: how many concurrent sessions each transport sustains.

A ``steps`` shape (:mod:`rig.workload.shapes`) holds each session level for a fixed time.
For every level this module takes the turns that *started* in the level's window, after a
settling time (sessions just added are still on their first turns), and computes:

* ``turns_per_s``: successful turns (``ok`` or ``reconnected``) per second;
* ``rate_limited_fraction``: rejected attempts (``ratelimit`` records: each 429 or
  ``rate_limit_exceeded`` event) over all attempts (rejected + turns started);
* ``ttft_ms_p95``: nearest-rank p95 TTFT of the successful turns;
* ``bytes_sent_per_s`` / ``bytes_recv_per_s``: wire bytes of the turns started, per second;
* ``limits``: rejected attempts by limit kind (``requests``, ``tokens``, ...).

The knee (``max_sessions``) is the highest level of the unbroken run of levels, from the
first, that keep ``rate_limited_fraction <= max_rate_limited`` and ``ttft_ms_p95 <=
ttft_slo_ms``; ``bound_by`` says which criterion the next level broke (and which limit
kind rejected most there), or ``null`` when every level passed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rig.metrics.records import RateLimitRecord, TurnRecord
from rig.report.errors import ReportError
from rig.report.stats import percentile, rounded
from rig.workload.shapes import ShapeError, Steps, parse_shape

__all__ = [
    "DEFAULT_MAX_RATE_LIMITED",
    "DEFAULT_TTFT_SLO_MS",
    "SETTLE_FRACTION",
    "capacity",
    "phases",
]

DEFAULT_MAX_RATE_LIMITED = 0.01
"""Default criterion: at most 1% of attempts rejected by a rate limit."""
DEFAULT_TTFT_SLO_MS = 2000.0
"""Default criterion: TTFT p95 at most 2 s."""

SETTLE_FRACTION = 0.25
"""Share of each level's time left out at its start (new sessions still ramping)."""

_OK = ("ok", "reconnected")


def phases(meta: Mapping[str, Any], transports: Sequence[str]) -> dict[str, tuple[Steps, float]]:
    """Each transport's steps shape and the wall-clock time its shape started.

    ``meta["phases"][transport]`` (``rig capacity`` runs one phase per transport) or, for a
    run of all transports at once, ``meta["shape"]`` and ``meta["started_at"]``.
    """
    out: dict[str, tuple[Steps, float]] = {}
    recorded = meta.get("phases") or {}
    for name in transports:
        phase = recorded.get(name) or {
            "shape": meta.get("shape"),
            "started_at": meta.get("started_at"),
        }
        text, started = phase.get("shape"), phase.get("started_at")
        if not text or started is None:
            raise ReportError(f"no load shape recorded for {name}: run with --shape steps:...")
        try:
            shape = parse_shape(text)
        except ShapeError as exc:
            raise ReportError(str(exc)) from exc
        if not isinstance(shape, Steps):
            raise ReportError(f"capacity needs a steps shape, the run used {text!r}")
        out[name] = (shape, float(started))
    return out


def _between(records: Sequence[Any], start: float, end: float) -> Sequence[Any]:
    """The records (sorted by ``ts``) with ``start <= ts < end``."""
    return records[bisect_left(records, start, key=_ts) : bisect_left(records, end, key=_ts)]


def _ts(record: Any) -> float:
    return record.ts


def _level_figures(
    level: int,
    window: tuple[float, float],
    turns: Sequence[TurnRecord],
    hits: Sequence[RateLimitRecord],
) -> dict[str, Any]:
    start, end = window
    seconds = end - start
    inside = _between(turns, start, end)
    rejected = _between(hits, start, end)
    good = [t for t in inside if t.status in _OK]
    attempts = len(inside) + len(rejected)
    return {
        "sessions": level,
        "seconds": rounded(seconds, 3),
        "turns": len(inside),
        "turns_per_s": rounded(len(good) / seconds, 3),
        "rate_limited": len(rejected),
        "rate_limited_fraction": rounded(len(rejected) / attempts, 4) if attempts else None,
        "ttft_ms_p95": rounded(percentile([t.ttft_ms for t in good], 95), 1),
        "bytes_sent_per_s": rounded(sum(t.bytes_sent for t in inside) / seconds, 1),
        "bytes_recv_per_s": rounded(sum(t.bytes_recv for t in inside) / seconds, 1),
        "errors": sum(t.status in ("error", "timeout") for t in inside),
        "limits": dict(sorted(Counter(h.limit for h in rejected).items())),
    }


def capacity(
    meta: Mapping[str, Any],
    turns: Sequence[TurnRecord],
    ratelimits: Sequence[RateLimitRecord],
    *,
    max_rate_limited: float,
    ttft_slo_ms: float,
    settle_fraction: float = SETTLE_FRACTION,
) -> dict[str, Any]:
    """``{transport: {"max_sessions", "criteria", "bound_by", "at_knee", "levels"}}``."""
    transports = sorted({t.tags.transport for t in turns} | set(meta.get("phases") or {}))
    result: dict[str, Any] = {}
    for name, (shape, started) in phases(meta, transports).items():
        # Sorted by time once, so each level takes its window by bisection.
        own_turns = sorted((t for t in turns if t.tags.transport == name), key=_ts)
        own_hits = sorted((h for h in ratelimits if h.tags.transport == name), key=_ts)
        levels = []
        for index, level in enumerate(shape.levels):
            start = started + index * shape.every_s
            window = (start + settle_fraction * shape.every_s, start + shape.every_s)
            levels.append(_level_figures(level, window, own_turns, own_hits))
        knee, bound_by = None, None
        for figures in levels:
            fraction = figures["rate_limited_fraction"]
            p95 = figures["ttft_ms_p95"]
            broken = []
            if fraction is not None and fraction > max_rate_limited:
                kinds = figures["limits"]
                worst = max(kinds, key=kinds.get) if kinds else "unknown"
                broken.append(f"rate_limited_fraction ({worst} limit)")
            if p95 is None or p95 > ttft_slo_ms:
                broken.append("ttft_ms_p95")
            if broken:
                bound_by = " and ".join(broken)
                break
            knee = figures
        result[name] = {
            "max_sessions": knee["sessions"] if knee else 0,
            "criteria": {"max_rate_limited": max_rate_limited, "ttft_slo_ms": ttft_slo_ms},
            "bound_by": bound_by,
            "at_knee": knee,
            "levels": levels,
        }
    return result
