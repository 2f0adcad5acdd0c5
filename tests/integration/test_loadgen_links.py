"""Sessions over an emulated link against a real mock: turns take what the link model
says, and the bytes are exactly those of the same session without a link."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.loadgen.link import Link, LinkProfile, Outage
from rig.metrics.records import TaskRecord, TurnRecord
from tests.link_probe import run_task
from tests.servers import start_mock

SLOW = LinkProfile("slow", uplink_bps=4e6, downlink_bps=8e6, rtt_s=0.1)
"""No jitter or loss: the model's figures are exact, the rest is the mock and the host."""


def _run(url: str, transport: str, link: LinkProfile | None) -> tuple[TaskRecord, list[TurnRecord]]:
    return run_task(url, transport, link, run_id="test")


def _predicted(turns: list[TurnRecord]) -> list[float]:
    """Each turn's time by the model: its request up, then its answer down, on one
    connection whose state carries over (the instant mock answers at once)."""
    connection = Link(SLOW, clock=lambda: 0.0).connection()
    now = connection.handshake(0.0)
    times = []
    for turn in turns:
        left = connection.send(turn.bytes_sent, now)
        arrived = connection.receive(turn.bytes_recv, left)
        times.append(arrived - now)
        now = arrived
    return times


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_turns_take_what_the_link_model_says_and_bytes_do_not_change(
    mock_url: str, transport: str
) -> None:
    direct_task, direct = _run(mock_url, transport, None)
    task, shaped = _run(mock_url, transport, SLOW)
    assert task.ok and direct_task.ok, (task.error, direct_task.error)
    assert {t.tags.link for t in shaped} == {"slow"}
    # The counters count what crossed the socket: the link changes when, not what.
    assert [(t.bytes_sent, t.bytes_recv) for t in shaped] == [
        (t.bytes_sent, t.bytes_recv) for t in direct
    ]
    predicted = _predicted(shaped)
    for turn, model_s, plain in zip(shaped, predicted, direct, strict=True):
        measured_s = turn.turn_ms / 1000
        if turn.turn == 0 and transport == "ws":
            # Its clock includes the TCP handshake and the upgrade: two round trips more.
            model_s += 2 * SLOW.rtt_s
        assert measured_s >= 0.95 * model_s, (turn.turn, measured_s, model_s)
        assert measured_s <= 1.3 * model_s + plain.turn_ms / 1000 + 0.05, (
            turn.turn,
            measured_s,
            model_s,
        )
    # Every turn pays at least a round trip and its bytes at the rates.
    for turn in shaped[1:]:
        floor = SLOW.rtt_s + turn.bytes_sent * 8 / SLOW.uplink_bps
        assert turn.turn_ms / 1000 >= floor + turn.bytes_recv * 8 / SLOW.downlink_bps


def test_an_outage_in_reset_mode_resets_connections_and_websocket_reconnects(
    mock_url: str,
) -> None:
    # Outages every 0.77 s (not a multiple of the SYN time-out of 1 s, so a reconnect gets
    # through): the ~2 s task meets at least two.
    flaky = LinkProfile(
        "flaky", 8e6, 8e6, 0.02, outage=Outage(every_s=0.77, for_s=0.1, mode="reset")
    )
    _, turns = _run(mock_url, "ws", flaky)
    assert {t.status for t in turns} <= {"ok", "reconnected", "error"}
    assert any(t.status == "reconnected" for t in turns), [(t.status, t.error) for t in turns]
    for turn in turns:
        if turn.status == "error":
            assert "outage" in turn.error or "kept closing" in turn.error, turn.error


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    """A mock that streams at a pace (the ``fast`` preset: 1,000 tokens/s)."""
    process, url = start_mock("--preset", "fast")
    yield url
    process.stop()


def test_a_paced_stream_arrives_one_round_trip_later_not_in_batches(paced_url: str) -> None:
    # A wide window and fast rates: only the round trip is left to see. Bytes are read from
    # the kernel while earlier ones wait to be delivered, so the stream is shifted by one
    # round trip; reading only after each delivery would add up to one more at its end.
    far = LinkProfile("far", 1e9, 1e9, 0.2, initial_window=1000)
    _, direct = _run(paced_url, "http", None)
    _, shaped = _run(paced_url, "http", far)
    pairs = list(zip(direct, shaped, strict=True))
    ttft = sum(s.ttft_ms - d.ttft_ms for d, s in pairs) / len(pairs)
    turn = sum(s.turn_ms - d.turn_ms for d, s in pairs) / len(pairs)
    assert 150 < ttft < 260, ttft
    assert 150 < turn < 260, turn


SESSION_LINKS = r"""
import json, sys
from locust.env import Environment
from locust.event import Events
from rig.locust.plugin import LocustRun, user_classes
from rig.options import RunOptions

options = RunOptions(target_url="http://127.0.0.1:9/v1", transports="http,ws,ws_mux",
                     links=sys.argv[1], out=sys.argv[2])
environment = Environment(user_classes=user_classes(["http", "ws", "ws_mux"]), events=Events())
environment.create_local_runner()
run = LocustRun.attach(environment, options)
picked = {}
for transport in ("http", "ws", "ws_mux"):
    for _ in range(20):
        config, index = run.session_config(transport, 0)
        link = config.link.name if config.link is not None else None
        picked.setdefault(transport, []).append([index, link, config.tags.link])
print(json.dumps({"picked": picked, "meta_links": run.meta()["links"]}))
"""


def test_each_locust_session_gets_its_link_in_its_config_and_tags(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SESSION_LINKS, "lte=1,geo=1", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    picked = report["picked"]
    assert report["meta_links"] == ["lte", "geo"]
    for _, link, tag in picked["http"]:
        assert link == tag and link in ("lte", "geo")
    assert {link for _, link, _ in picked["http"]} == {"lte", "geo"}
    assert picked["ws"] == picked["http"]  # user k of every transport: the same link
    # ws_mux shares connections between sessions: never shaped, and tagged so.
    assert {(link, tag) for _, link, tag in picked["ws_mux"]} == {("direct", "direct")}
