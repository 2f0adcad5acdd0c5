"""What the benchmark scripts share: tables, CPU accounting, argument types, the
noisy-machine warning. Not a benchmark itself."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TypeVar

import psutil

__all__ = [
    "OTHER_BUSY_LIMIT",
    "Column",
    "int_list",
    "machine_cpu_seconds",
    "noisy_warning",
    "percentile",
    "positive_float",
    "positive_int",
    "table",
]

T = TypeVar("T")

OTHER_BUSY_LIMIT = 0.1
"""Cores used by other processes above which a cell's figures are flagged unreliable."""

Column = tuple[str, Callable[[T], str]]
"""A table column: its header and how to render one row's value."""


def table(columns: Sequence[Column[T]], rows: Sequence[T]) -> str:
    """Right-aligned plain-text table."""
    cells = [[render(row) for _, render in columns] for row in rows]
    headers = [header for header, _ in columns]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def machine_cpu_seconds() -> float:
    """Busy CPU time of all cores since boot (``/proc/stat``, 10 ms ticks)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated integers >= 1, such as ``1,8`` or ``250,1000``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,8, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"every value must be >= 1, got {text!r}")
    return values


def noisy_warning(other_busy: Sequence[float]) -> str | None:
    """The warning for cells measured while other processes used the machine, or None."""
    noisy = [busy for busy in other_busy if busy > OTHER_BUSY_LIMIT]
    if not noisy:
        return None
    return (
        f"WARNING: other processes used up to {max(noisy):.2f} of a core during "
        f"{len(noisy)} of {len(other_busy)} cells: those figures are unreliable; rerun on a "
        "quiet machine."
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, by linear interpolation."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
