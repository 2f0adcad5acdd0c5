"""The rig's run options: defined once, the same on every parser; transports and weights
parse with clear errors."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest

from rig.cli import build_parser
from rig.loadgen import registry
from rig.loadgen.options import parse_transports, parse_weights, turn_bucket
from rig.loadgen.registry import TransportOption
from rig.options import MockOptions, Quota, RunOptions, add_arguments, iter_options, to_argv


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


# --- One definition per option: every parser and the typed object derive from it. ---


class LocustLikeParser(argparse.ArgumentParser):
    """Takes ``include_in_web_ui`` as Locust's parser does, without importing Locust
    (which patches the process with gevent); the real one is in tests/e2e/test_cli_help.py
    and tests/integration/test_locust_webui.py."""

    def add_argument(self, *args: Any, include_in_web_ui: bool = True, **kwargs: Any) -> Any:
        action = super().add_argument(*args, **kwargs)
        action.include_in_web_ui = include_in_web_ui  # type: ignore[attr-defined]
        return action


def _locust_parser() -> argparse.ArgumentParser:
    parser = LocustLikeParser(add_help=False)
    add_arguments(parser, "locust", locust=True)
    return parser


def test_every_run_option_parses_to_the_typed_object_with_its_documented_default() -> None:
    compare = RunOptions.from_namespace(build_parser().parse_args(["compare"]))
    assert compare.target_url is None  # the embedded mock
    assert (compare.users, compare.duration, compare.stop_timeout) == (10, 60.0, 300.0)
    assert compare.preset == "fast" and compare.quota == Quota()
    capacity = RunOptions.from_namespace(build_parser().parse_args(["capacity"]))
    assert (capacity.step_users, capacity.step_time, capacity.stop_timeout) == (10, 30.0, 60.0)
    locust = RunOptions.from_namespace(_locust_parser().parse_args([]))
    assert locust.target_url == "http://127.0.0.1:8000/v1"
    assert locust.sink == "dir" and locust.check == [] and locust.request_timeout == 120.0
    mock = MockOptions.from_namespace(build_parser().parse_args(["mock"]))
    assert (mock.port, mock.preset, mock.quota) == (8000, "instant", Quota())


def test_the_same_flag_means_the_same_thing_on_every_command() -> None:
    argv = ["--seed", "7", "--time-scale", "0.5", "--retry-policy", "fail-fast",
            "--influx-batch-size", "10", "--check", "a>=1", "--check", "b<=2"]  # fmt: skip
    compare = RunOptions.from_namespace(build_parser().parse_args(["compare", *argv]))
    locust = RunOptions.from_namespace(_locust_parser().parse_args(argv))
    for name in ("seed", "time_scale", "retry_policy", "influx_batch_size", "check"):
        assert getattr(compare, name) == getattr(locust, name), name
    assert compare.check == ["a>=1", "b<=2"]


def test_arrivals_are_offered_on_every_run_command_and_checked() -> None:
    for argv in (["compare"], ["capacity"]):
        given = build_parser().parse_args([*argv, "--arrivals", "recorded"])
        assert RunOptions.from_namespace(given).arrivals == "recorded"
        assert RunOptions.from_namespace(build_parser().parse_args(argv)).arrivals == "spawn"
    locust = RunOptions.from_namespace(_locust_parser().parse_args(["--arrivals", "recorded"]))
    assert to_argv(locust, "locust") == ["--arrivals", "recorded"]  # to a child Locust
    with pytest.raises(SystemExit):
        _locust_parser().parse_args(["--arrivals", "rate"])


def test_the_web_ui_never_shows_a_variable_naming_a_secret() -> None:
    parser = _locust_parser()
    hidden = {a.dest for a in parser._actions if getattr(a, "include_in_web_ui", True) is False}
    assert hidden == {"api_key_env", "influx_token_env", "influx_user_env", "influx_password_env"}


def test_the_embedded_mock_gets_only_the_limits_given_and_parses_them_back() -> None:
    args = build_parser().parse_args(["compare", "--rpm", "600", "--burst", "0.5"])
    quota = RunOptions.from_namespace(args).quota
    assert quota.mock_argv() == ["--rpm", "600", "--burst", "0.5"]
    mock = MockOptions.from_namespace(build_parser().parse_args(["mock", *quota.mock_argv()]))
    assert mock.quota == quota


def test_a_child_locust_gets_back_the_options_it_was_given() -> None:
    given = ["--transports", "ws", "--seed", "3", "--sink", "influx-v1", "--influx-url",
             "http://x:8086", "--summary-stdout", "--check", "a>=1"]  # fmt: skip
    options = RunOptions.from_namespace(_locust_parser().parse_args(given))
    again = RunOptions.from_namespace(_locust_parser().parse_args(to_argv(options, "locust")))
    assert again == options
    assert to_argv(RunOptions.from_namespace(_locust_parser().parse_args([])), "locust") == []


def test_every_option_of_the_typed_objects_is_on_some_parser() -> None:
    offered = {a.dest for a in _locust_parser()._actions}
    for command in ("compare", "capacity", "mock"):
        sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        offered |= {a.dest for a in sub._actions}
    for cls in (RunOptions, MockOptions):
        for name, _, _ in iter_options(cls):
            assert name in offered, name


def test_a_transports_own_option_becomes_a_flag_on_every_run_command(monkeypatch) -> None:
    setting = TransportOption("sessions_per_connection", int, 8, "sessions sharing a socket")
    ws = dataclasses.replace(registry.REGISTRY["ws"], options=(setting,))
    monkeypatch.setitem(registry.REGISTRY, "ws", ws)
    for parse in (
        lambda argv: build_parser().parse_args(["compare", *argv]),
        lambda argv: build_parser().parse_args(["capacity", *argv]),
        lambda argv: _locust_parser().parse_args(argv),
    ):
        assert RunOptions.from_namespace(parse([])).transport_options == {}
        options = RunOptions.from_namespace(parse(["--ws-sessions-per-connection", "4"]))
        assert options.transport_options == {"ws": {"sessions_per_connection": 4}}
    assert to_argv(options, "locust") == ["--ws-sessions-per-connection", "4"]
    assert registry.TransportContext(options.transport_options).options("ws") == {
        "sessions_per_connection": 4
    }
