"""Load shapes: sessions over run time, and clear errors for bad ``--shape`` values."""

from __future__ import annotations

import pytest

from rig.workload.shapes import Ramp, ShapeError, Soak, Spike, Steps, parse_shape


def test_steps_add_users_every_period_up_to_max_then_end() -> None:
    shape = parse_shape("steps:users=10,every=30s,max=25")
    assert isinstance(shape, Steps)
    assert shape.levels == [10, 20, 25]
    assert [shape.tick(t)[0] for t in (0, 29.9, 30, 60, 89.9)] == [10, 10, 20, 25, 25]
    assert shape.tick(90) is None
    assert shape.duration_s == 90
    assert shape.level_at(45) == 20


def test_ramp_grows_linearly_then_holds() -> None:
    shape = parse_shape("ramp:max=100,over=10s,hold=5s")
    assert isinstance(shape, Ramp)
    assert [shape.tick(t)[0] for t in (0, 5, 9.99, 10, 14.9)] == [1, 50, 100, 100, 100]
    assert shape.tick(15) is None


def test_spike_jumps_for_its_window_and_returns_to_base() -> None:
    shape = parse_shape("spike:base=20,max=200,at=2m,for=1m,duration=6m")
    assert isinstance(shape, Spike)
    assert [shape.tick(t)[0] for t in (0, 119, 120, 179, 180, 359)] == [20, 20, 200, 200, 20, 20]
    assert shape.tick(360) is None


def test_soak_holds_its_users_for_the_duration() -> None:
    shape = parse_shape("soak:users=50,duration=2h,rate=5")
    assert isinstance(shape, Soak)
    assert shape.tick(7199) == (50, 5)
    assert shape.tick(7200) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("stairs:users=1", "unknown shape 'stairs'"),
        ("steps:users=10,every=30s", "missing max"),
        ("steps:users=10,every=soon,max=20", "every='soon' is not a number"),
        ("steps:users=10,every=30s,max=20,color=red", "'color=red' is not one of"),
        ("steps:users=30,every=30s,max=20", "users must not exceed max"),
        ("ramp:max=0,over=1m", "max must be positive"),
        ("spike:base=1,max=5,at=5m,for=2m,duration=6m", "must end before duration"),
    ],
)
def test_bad_shapes_are_named_with_an_example(value: str, message: str) -> None:
    with pytest.raises(ShapeError, match=message) as caught:
        parse_shape(value)
    assert "--shape" in str(caught.value)
