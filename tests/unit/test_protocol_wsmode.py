"""The WebSocket-mode server rules: lanes, in-flight limit, stream limit, age - plain calls."""

from __future__ import annotations

import pytest

from rig.protocol.errors import BusyError, ConnectionLimitError, StreamLimitError
from rig.protocol.wsmode import CLOSE_CODE, CLOSE_REASON, WSModeRules


def test_a_default_lane_create_starts_at_once() -> None:
    rules: WSModeRules[str] = WSModeRules()
    assert rules.create("a", None) == ["a"]
    assert rules.in_flight == 1


def test_a_second_default_lane_create_while_one_runs_is_busy() -> None:
    rules: WSModeRules[str] = WSModeRules()
    rules.create("a", None)
    with pytest.raises(BusyError) as refused:
        rules.create("b", None)
    assert refused.value.code == "conversation_already_has_active_response"
    assert rules.done(None) == []
    assert rules.create("c", None) == ["c"]  # idle again: accepted


def test_a_named_lane_is_first_in_first_out() -> None:
    rules: WSModeRules[str] = WSModeRules()
    assert rules.create("a1", "a") == ["a1"]
    assert rules.create("a2", "a") == []
    assert rules.create("a3", "a") == []
    assert rules.done("a") == ["a2"]
    assert rules.done("a") == ["a3"]
    assert rules.done("a") == []
    assert rules.idle


def test_lanes_run_concurrently_with_each_other_and_the_default_lane() -> None:
    rules: WSModeRules[str] = WSModeRules()
    assert rules.create("d", None) == ["d"]
    assert rules.create("a", "a") == ["a"]
    assert rules.create("b", "b") == ["b"]
    assert rules.in_flight == 3


def test_beyond_the_in_flight_limit_creates_wait_in_arrival_order() -> None:
    rules: WSModeRules[str] = WSModeRules(max_in_flight=2)
    assert rules.create("a", "a") == ["a"]
    assert rules.create("b", "b") == ["b"]
    assert rules.create("c", "c") == []
    assert rules.create("d", None) == []
    assert rules.in_flight == 2
    assert rules.done("b") == ["c"]
    assert rules.done("a") == ["d"]
    assert rules.in_flight == 2


def test_a_waiting_default_lane_create_still_makes_the_default_lane_busy() -> None:
    rules: WSModeRules[str] = WSModeRules(max_in_flight=1)
    rules.create("a", "a")
    assert rules.create("d", None) == []
    with pytest.raises(BusyError):
        rules.create("e", None)


def test_a_lane_that_finishes_queues_behind_lanes_already_waiting() -> None:
    rules: WSModeRules[str] = WSModeRules(max_in_flight=1)
    rules.create("a1", "a")
    rules.create("a2", "a")
    rules.create("b1", "b")
    assert rules.done("a") == ["b1"]  # b waited before a's second request was due
    assert rules.done("b") == ["a2"]


def test_the_default_limits_are_the_apis() -> None:
    rules: WSModeRules[int] = WSModeRules()
    started = [r for i in range(20) for r in rules.create(i, f"s{i}")]
    assert started == list(range(16))
    for i in range(20, 32):
        rules.create(i, f"s{i}")
    with pytest.raises(StreamLimitError):
        rules.create(32, "s32")


def test_one_stream_too_many_is_refused_with_the_apis_code() -> None:
    rules: WSModeRules[str] = WSModeRules(max_streams=2)
    rules.create("a", "a")
    rules.create("b", "b")
    with pytest.raises(StreamLimitError) as refused:
        rules.create("c", "c")
    assert refused.value.code == "websocket_stream_limit_reached"
    assert refused.value.param == "stream_id"
    assert refused.value.status == 400
    assert rules.create("a2", "a") == []  # known streams and the default lane still work
    assert rules.create("d", None) == ["d"]


def test_an_idle_stream_still_counts_toward_the_stream_limit() -> None:
    rules: WSModeRules[str] = WSModeRules(max_streams=1)
    rules.create("a", "a")
    rules.done("a")
    with pytest.raises(StreamLimitError):
        rules.create("b", "b")


def test_at_its_age_an_idle_connection_closes_at_once() -> None:
    rules: WSModeRules[str] = WSModeRules()
    assert rules.expire(3600) is True
    assert rules.should_close
    error = rules.close_error()
    assert error.code == CLOSE_REASON == "websocket_connection_limit_reached"
    assert "3600" in error.message
    assert CLOSE_CODE == 1000


def test_at_its_age_a_busy_connection_refuses_new_creates_and_finishes_the_others() -> None:
    rules: WSModeRules[str] = WSModeRules(max_in_flight=1)
    rules.create("a1", "a")
    rules.create("b1", "b")  # accepted, waiting for a slot
    assert rules.expire(60) is False
    with pytest.raises(ConnectionLimitError) as refused:
        rules.create("c1", "c")
    assert refused.value.code == "websocket_connection_limit_reached"
    assert rules.done("a") == ["b1"]
    assert not rules.should_close
    assert rules.done("b") == []
    assert rules.should_close


def test_done_on_a_lane_with_nothing_running_is_a_bug() -> None:
    rules: WSModeRules[str] = WSModeRules()
    rules.create("a", "a")
    rules.done("a")
    with pytest.raises(ValueError):
        rules.done("a")
