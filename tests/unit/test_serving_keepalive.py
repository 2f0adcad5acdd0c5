"""The servers' WebSocket keepalive settings: the options, the gateway's file, and what
uvicorn is told (0 turns a setting off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.cli import build_parser, gateway_config
from rig.mock.server import MockConfig
from rig.options import MockOptions
from rig.serving.wsproto import ws_keepalive


def test_uvicorn_gets_the_seconds_or_none_for_off() -> None:
    assert ws_keepalive(20.0, 20.0) == {"ws_ping_interval": 20.0, "ws_ping_timeout": 20.0}
    # uvicorn reads a timeout of 0 as "close at once": off is None.
    assert ws_keepalive(0.0, 0.0) == {"ws_ping_interval": None, "ws_ping_timeout": None}


def test_the_mock_s_defaults_are_uvicorn_s_and_negative_seconds_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = MockOptions.from_namespace(build_parser().parse_args(["mock"]))
    assert (given.ws_ping_interval, given.ws_ping_timeout) == (20.0, 20.0)
    assert (MockConfig().ws_ping_interval_s, MockConfig().ws_ping_timeout_s) == (20.0, 20.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["mock", "--ws-ping-timeout", "-1"])
    assert "must be >= 0 (0 = off)" in capsys.readouterr().err


def test_the_gateway_takes_them_from_its_options_or_its_file(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    config = gateway_config(parse(["gateway", "--upstream", "http://u/v1"]), {})
    assert (config.ws_ping_interval_s, config.ws_ping_timeout_s) == (20.0, 20.0)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "ws_ping_interval_s: 0\nws_ping_timeout_s: 60\nupstreams: [{base_url: http://u/v1}]\n"
    )
    config = gateway_config(parse(["gateway", "--config", str(path)]), {})
    assert (config.ws_ping_interval_s, config.ws_ping_timeout_s) == (0.0, 60.0)
    config = gateway_config(
        parse(["gateway", "--config", str(path), "--ws-ping-interval", "5"]), {}
    )
    assert config.ws_ping_interval_s == 5.0
