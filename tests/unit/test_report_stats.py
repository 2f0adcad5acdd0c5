"""Order statistics for report figures: nearest rank, exact means, ``None`` for no data."""

from __future__ import annotations

import pytest

from rig.report.stats import mean, mean_of, nearest_rank, percentile, rounded


@pytest.mark.parametrize(
    ("q", "expected"), [(25, 2.0), (50, 4.0), (75, 6.0), (95, 8.0), (100, 8.0)]
)
def test_percentile_is_the_nearest_rank_value_never_interpolated(q: float, expected: float) -> None:
    values = [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]  # unsorted on purpose
    assert percentile(values, q) == expected
    assert nearest_rank(sorted(values), q) == expected


def test_a_tiny_q_takes_the_smallest_value() -> None:
    assert nearest_rank([3.0, 9.0], 0.1) == 3.0


def test_percentile_of_no_values_is_none_but_nearest_rank_refuses() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)


@pytest.mark.parametrize("q", [0, -5, 100.5])
def test_q_outside_0_to_100_is_refused_even_without_values(q: float) -> None:
    with pytest.raises(ValueError, match="percentile q must be in"):
        percentile([], q)
    with pytest.raises(ValueError, match="percentile q must be in"):
        nearest_rank([1.0], q)


def test_mean_is_exact_and_none_without_values_while_mean_of_refuses() -> None:
    values = [1e16, 1.0, -1e16, 1.0]  # a naive running sum loses the ones
    assert mean(iter(values)) == 0.5
    assert mean_of(values) == 0.5
    assert mean([]) is None
    with pytest.raises(ValueError, match="no values"):
        mean_of([])


def test_rounded_passes_none_through_and_refuses_non_finite_figures() -> None:
    assert rounded(None, 1) is None
    assert rounded(2.345, 1) == 2.3
    with pytest.raises(ValueError, match="not a finite figure"):
        rounded(float("nan"), 1)
