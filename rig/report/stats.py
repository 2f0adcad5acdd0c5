"""Order statistics and means for report figures, with ``None`` for "no data"."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["mean", "mean_of", "nearest_rank", "percentile", "rounded"]


def mean(values: Iterable[float]) -> float | None:
    """The arithmetic mean, exactly rounded (``math.fsum``: the order of records does not
    change the result); ``None`` when there are no values."""
    items = list(values)
    if not items:
        return None
    return mean_of(items)


def mean_of(values: Sequence[float]) -> float:
    """:func:`mean` of values the caller knows are there; ``ValueError`` when empty."""
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``q`` percent of the
    values at or below it (rank ``ceil(q / 100 * n)``, at least 1). Always one of the
    values, never interpolated; ``None`` when there are no values."""
    _check_q(q)
    return nearest_rank(sorted(values), q) if values else None


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """:func:`percentile` of values already sorted ascending that the caller knows are
    there (a box plot takes three from one sort); ``ValueError`` when empty."""
    _check_q(q)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _check_q(q: float) -> None:
    if not 0 < q <= 100:
        raise ValueError(f"percentile q must be in (0, 100], got {q}")


def rounded(value: float | None, digits: int) -> float | None:
    """``round(value, digits)``, passing ``None`` through and refusing NaN or infinity."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"not a finite figure: {value!r}")
    return round(value, digits)
