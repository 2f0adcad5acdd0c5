"""Client-to-server ingress at 10k, 100k and 1M concurrent sessions, from measured figures.

A session that finishes a task starts the next, so at steady state ``sessions`` agents each
push ``bytes_sent_per_task`` every ``task_seconds_mean``:

    ingress bits/s = sessions x bytes_sent_per_task x 8 / task_seconds_mean

in decimal gigabits per second (1 Gbps = 10^9 bit/s). The saving is http's ingress minus
the transport's. Each transport uses its own task time: a transport whose tasks finish
sooner starts more of them per second, so its saving is smaller than a comparison at equal
task times. The published example (BACKGROUND.md) uses one 40 s task for both:
1M x (176 KB - 32 KB) x 8 / 40 s = 28.8 Gbps, "about 29 Gbps".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rig.report.palette import BASELINE
from rig.report.stats import rounded

__all__ = ["SESSIONS", "ingress_gbps", "project"]

SESSIONS = (10_000, 100_000, 1_000_000)
"""Concurrent sessions the projection is made for."""

_GBPS_DIGITS = 4


def ingress_gbps(
    sessions: int, bytes_per_task: float | None, task_seconds: float | None
) -> float | None:
    """Gbps that ``sessions`` concurrent agents send; ``None`` without a positive task time."""
    if bytes_per_task is None or task_seconds is None or task_seconds <= 0:
        return None
    return sessions * bytes_per_task * 8 / task_seconds / 1e9


def project(
    transports: Mapping[str, Mapping[str, Any]], sessions: Sequence[int] = SESSIONS
) -> list[dict[str, Any]]:
    """One row per (sessions, transport), in that order: ``sessions``, ``transport``,
    ``ingress_gbps`` and ``saving_vs_http_gbps`` (``None`` for http itself, when http did
    not run, or when a figure is missing)."""
    rows = []
    for count in sessions:
        baseline = None
        if BASELINE in transports:
            baseline = _ingress(count, transports[BASELINE])
        for name, figures in transports.items():
            ingress = _ingress(count, figures)
            saving = None
            if name != BASELINE and baseline is not None and ingress is not None:
                saving = baseline - ingress
            rows.append(
                {
                    "sessions": count,
                    "transport": name,
                    "ingress_gbps": rounded(ingress, _GBPS_DIGITS),
                    "saving_vs_http_gbps": rounded(saving, _GBPS_DIGITS),
                }
            )
    return rows


def _ingress(sessions: int, figures: Mapping[str, Any]) -> float | None:
    return ingress_gbps(
        sessions, figures.get("bytes_sent_per_task"), figures.get("task_seconds_mean")
    )
