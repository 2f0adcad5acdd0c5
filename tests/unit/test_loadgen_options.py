"""The rig's Locust options: transports and weights parse with clear errors."""

from __future__ import annotations

import pytest

from rig.loadgen.options import parse_transports, parse_weights, turn_bucket


def test_transports_keep_order_and_refuse_unknown_names() -> None:
    assert parse_transports(" ws, http ") == ["ws", "http"]
    with pytest.raises(ValueError, match="pigeon"):
        parse_transports("http,pigeon")
    with pytest.raises(ValueError, match="none given"):
        parse_transports(" , ")


def test_weights_name_transports_that_run() -> None:
    assert parse_weights("http=3, ws=1", ["http", "ws"]) == {"http": 3, "ws": 1}
    assert parse_weights("", ["http"]) == {}
    for bad in ("http", "http=0", "http=x", "chat=2"):
        with pytest.raises(ValueError, match="NAME=WEIGHT"):
            parse_weights(bad, ["http", "ws"])


def test_turn_buckets_are_few_and_ordered() -> None:
    assert [turn_bucket(t) for t in (0, 1, 2, 3, 9, 10, 19, 20, 55)] == [
        "0", "1", "2", "3-9", "3-9", "10-19", "10-19", "20+", "20+",
    ]  # fmt: skip
