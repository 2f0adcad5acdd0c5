"""The load generator's garbage-collector settings (rig.collector): what each mode
does to the interpreter's collector, and the pause counter on a fake clock."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rig.collector import THRESHOLDS, CollectorPauses, settle


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """Whatever a test does to the collector is undone after it."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuned_freezes_what_exists_and_sets_the_thresholds(restored_collector: None) -> None:
    survivors = [[i] for i in range(1000)]  # tracked containers alive at the spawn
    settle("tuned")
    assert gc.get_freeze_count() >= len(survivors)
    assert gc.get_threshold() == THRESHOLDS
    collected = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert not collected & {id(x) for x in survivors}  # none left for a collection to walk


def test_freeze_keeps_the_thresholds(restored_collector: None) -> None:
    before = gc.get_threshold()
    settle("freeze")
    assert gc.get_freeze_count() > 0 and gc.get_threshold() == before


def test_default_changes_nothing_and_an_unknown_mode_is_refused(
    restored_collector: None,
) -> None:
    before = (gc.get_freeze_count(), gc.get_threshold())
    settle("default")
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
    with pytest.raises(ValueError, match="unknown collector mode 'often'"):
        settle("often")


def test_pauses_are_counted_by_generation_on_the_given_clock() -> None:
    ticks = iter([1.0, 1.004, 2.0, 2.05, 3.0, 3.002])
    pauses = CollectorPauses(clock=lambda: next(ticks))
    pauses("start", {"generation": 0})
    pauses("stop", {"generation": 0})
    pauses("start", {"generation": 2})
    pauses("stop", {"generation": 2})
    pauses("start", {"generation": 0})
    pauses("stop", {"generation": 0})
    figures = pauses.figures()
    assert figures["gen0_count"] == 2 and figures["gen2_count"] == 1
    assert figures["gen1_count"] == 0
    assert figures["gen0_ms_total"] == pytest.approx(6.0)
    assert figures["gen0_ms_max"] == pytest.approx(4.0)
    assert figures["gen2_ms_max"] == pytest.approx(50.0)


def test_a_started_counter_sees_a_real_full_collection() -> None:
    pauses = CollectorPauses()
    pauses.start()
    try:
        gc.collect()
    finally:
        pauses.stop()
    assert pauses.count[2] >= 1 and pauses.max_ms[2] >= 0.0
    assert pauses not in gc.callbacks
