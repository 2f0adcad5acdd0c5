"""What an agent does when a connection breaks, without sockets: the stream idle watch's
arithmetic on a fake clock, the stream policy's back-off (Codex's), the options that set
them, and the jittered WebSocket age limit of the servers' shared shell."""

from __future__ import annotations

import argparse
import dataclasses
import random
from pathlib import Path

import pytest

from rig.loadgen.backoff import DEFAULT_STREAM_POLICY, StreamPolicy
from rig.loadgen.idle import IdleWatch
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.options import RUN_COMMANDS, RunOptions, add_arguments
from rig.report import build_summary
from rig.report.html import render_html
from rig.report.summary import summarize
from rig.report.table import render_table
from rig.serving.wsmode import WSModeConnection
from tests.unit.test_report_summary import write_run


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_idle_watch_counts_silence_from_the_last_byte() -> None:
    clock = FakeClock()
    watch = IdleWatch(5.0, clock)
    watch.heard()
    clock.now += 2.0
    assert watch.left() == pytest.approx(3.0)
    watch.heard()  # a byte: the silence starts again
    clock.now += 4.0
    assert watch.left() == pytest.approx(1.0)
    clock.now += 1.5
    assert watch.left() < 0  # timed out


def test_the_idle_watch_counts_no_silence_while_the_client_writes() -> None:
    clock = FakeClock()
    watch = IdleWatch(5.0, clock)
    watch.writing()
    clock.now += 60.0  # a long upload on a slow link
    assert watch.left() == 5.0
    watch.heard()  # written: waiting for the answer starts now
    clock.now += 1.0
    assert watch.left() == pytest.approx(4.0)


def test_the_stream_policy_is_codexs_by_default() -> None:
    assert DEFAULT_STREAM_POLICY.idle_timeout_s == 300.0
    assert DEFAULT_STREAM_POLICY.retries == 5
    assert DEFAULT_STREAM_POLICY.ws_fallback == 0


def test_stream_repeats_wait_200_ms_doubling_within_10_percent_then_give_up() -> None:
    policy = StreamPolicy(retries=5)
    rng = random.Random(1)
    waits = [policy.delay(attempt, rng) for attempt in range(1, 7)]
    for attempt, wait in enumerate(waits[:5], start=1):
        nominal = 0.2 * 2 ** (attempt - 1)
        assert wait is not None and 0.9 * nominal <= wait <= 1.1 * nominal
    assert waits[5] is None
    assert StreamPolicy(retries=0).delay(1, rng) is None


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_the_run_commands_take_the_stream_options(command: str) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, command)
    defaults = RunOptions.from_namespace(parser.parse_args([]))
    assert (defaults.stream_idle_timeout, defaults.stream_retries, defaults.ws_fallback) == (
        300.0,
        5,
        0,
    )
    given = RunOptions.from_namespace(
        parser.parse_args(
            ["--stream-idle-timeout", "1m", "--stream-retries", "2", "--ws-fallback", "6"]
        )
    )
    assert (given.stream_idle_timeout, given.stream_retries, given.ws_fallback) == (60.0, 2, 6)
    with pytest.raises(SystemExit):
        parser.parse_args(["--stream-retries", "-1"])


class _Socket:
    """A WebSocket the shell is never asked to use here."""


def test_a_websocket_age_limit_without_jitter_is_the_limit() -> None:
    connection = WSModeConnection(_Socket(), max_age_s=3600.0, max_message_bytes=1)  # type: ignore[arg-type]
    assert connection.max_age_s == 3600.0


def test_a_jittered_websocket_age_limit_stays_within_the_jitter_below_the_limit() -> None:
    ages = {
        WSModeConnection(
            _Socket(),  # type: ignore[arg-type]
            max_age_s=60.0,
            max_message_bytes=1,
            max_age_jitter_s=10.0,
        ).max_age_s
        for _ in range(200)
    }
    assert all(50.0 <= age <= 60.0 for age in ages)
    assert len(ages) > 1  # drawn per connection


def _turn(status: str, session: str, **fields: object) -> TurnRecord:
    base = TurnRecord(
        tags=RecordTags("r1", "fix_failing_test", "ws", "mock"),
        session=session,
        turn=0,
        ts=1000.0,
        bytes_sent=1000,
        bytes_recv=2000,
        body_bytes_sent=800,
        body_bytes_recv=1800,
        ttfb_ms=50.0,
        ttft_ms=100.0,
        turn_ms=300.0,
        input_tokens=100,
        cached_tokens=0,
        output_tokens=20,
        tool_calls=0,
        status=status,  # type: ignore[arg-type]
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_the_summary_counts_breaks_recoveries_losses_resends_and_fallback_sessions() -> None:
    turns = [
        _turn("ok", "ws-local-0-0"),
        _turn("reconnected", "ws-local-0-1", breaks=1, resent_bytes=700, recover_ms=40.0),
        _turn("reconnected", "ws-local-1-0", breaks=2, resent_bytes=900, recover_ms=80.0),
        _turn("timeout", "ws-local-2-0", breaks=6, resent_bytes=4000),
        # One session fell back, and went on over HTTP in its next task.
        _turn("reconnected", "ws-local-3-0", breaks=6, recover_ms=10.0, fallback=True),
        _turn("ok", "ws-local-3-1", fallback=True),
    ]
    summary = summarize({"run_id": "r1"}, turns, [])
    recovery = summary["transports"]["ws"]["recovery"]
    assert recovery == {
        "breaks": 15,
        "reconnected_turns": 3,
        "reconnect_rate": 0.5,
        "lost_turns": 1,
        "resent_bytes": 5600,
        "recover_ms_mean": pytest.approx(130 / 3, abs=0.01),
        "recover_ms_p95": 80.0,
        "fallback_sessions": 1,
        "fallback_turns": 2,
    }
    table = render_table(summary)
    assert "broken connections / reconnected turns (rate) / lost turns / fallback" in table
    assert "WebSocket 15 / 3 (50.0%) / 1 / 1" in table


def test_a_run_without_breaks_adds_no_recovery_line() -> None:
    summary = summarize({"run_id": "r1"}, [_turn("ok", "ws-local-0-0")], [])
    assert summary["transports"]["ws"]["recovery"]["breaks"] == 0
    assert summary["transports"]["ws"]["recovery"]["recover_ms_mean"] is None
    assert "broken connections" not in render_table(summary)


def test_the_report_shows_broken_connections_only_for_a_run_that_had_them(
    tmp_path: Path,
) -> None:
    broken = [
        _turn("reconnected", "ws-local-0-0", breaks=1, resent_bytes=700, recover_ms=40.0),
        _task("ws-local-0-0"),
    ]
    clean = [_turn("ok", "ws-local-0-0"), _task("ws-local-0-0")]
    pages = {}
    for name, records in (("broken", broken), ("clean", clean)):
        run = write_run(tmp_path / name, records)
        pages[name] = render_html(build_summary(run), run)
    assert "<h3>Broken connections</h3>" in pages["broken"]
    assert "<td>50.0%</td>" not in pages["broken"]  # one turn, reconnected: 100%
    assert "<td>100.0%</td><td>40.0 ms</td>" in pages["broken"]
    assert "Broken connections" not in pages["clean"]


def _task(session: str) -> TaskRecord:
    return TaskRecord(
        tags=RecordTags("r1", "fix_failing_test", "ws", "mock"),
        session=session,
        ts=1000.0,
        task_ms=1000.0,
        turns=1,
        bytes_sent=1000,
        bytes_recv=2000,
        tool_calls=0,
        ok=True,
    )
