"""Faults with real processes: a server the run depends on dies mid-run (SIGKILL).

Each test asserts what the run's records, its summary.json and its exit code say, and
waits only on the processes' own output, files and answers (never a timed sleep):

* InfluxDB killed and never restarted during the run: the run ends within the sink's one
  bounded final wait, every point the run made is either written (and stored) or counted
  dropped, the terminal says so, and ``--check rig.points_dropped==0`` fails the run;
* the mock killed mid-run with the Redis store: turns after the kill are error records
  with their cause (none lost); a mock restarted on the same port with the same Redis
  continues responses stored before the kill, and the run recovers;
* a target that never answers: the run ends within its duration, request timeout and stop
  timeout; every turn is a ``timeout`` record (or, cut off at the stop, an ``error``
  record with cause "stopped"), and the exit code is 3 with the cause;
* a target that answers garbage: every turn is an ``error`` record naming what it sent,
  with no traceback and a bounded number of attempts (the task back-off), exit code 3.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rig.loadgen.transports.base import STOPPED
from rig.metrics.lineproto import MEASUREMENTS
from rig.metrics.rundir import RunDirectory
from tests.misbehaving import NEVER, MisbehavingServer
from tests.servers import InfluxDBServer, ManagedProcess, free_port, start_mock

RECORD_FILES = {"turn": "turns", "task": "tasks", "rig": "health", "ratelimit": "ratelimits"}
FINAL_FLUSH_S = 15.0
"""The sink's final wait in these runs (``--influx-final-flush``): long enough that the rest
of the run's end (tasks in flight, the report) fits in a second one with room to spare on a
busy machine, so "one wait, not two" is what the bound below tells apart."""


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    """Poll the processes' own state (a file, an answer) until ``condition`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill(process: ManagedProcess) -> None:
    """SIGKILL the process's whole group: no shutdown, no goodbye."""
    os.killpg(process.process.pid, signal.SIGKILL)
    process.process.wait(timeout=30)
    process.stop()  # reaps the output reader


def _turn_lines(out: Path) -> list[dict]:
    """The complete lines of the run's turns.jsonl so far (empty before it exists)."""
    files = list(out.glob("*/turns.jsonl"))
    if not files:
        return []
    text = files[0].read_text()
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def _only_run(out: Path) -> RunDirectory:
    (path,) = [p for p in out.iterdir() if p.is_dir()]
    return RunDirectory(path)


def _rig_compare(*args: str) -> ManagedProcess:
    argv = [sys.executable, "-m", "rig", "compare", "--time-scale", "0.02", *args]
    return ManagedProcess(argv, "duration reached")


# -- InfluxDB killed and never restarted ---------------------------------------------------


@pytest.fixture
def own_influxdb() -> Iterator[InfluxDBServer]:
    with tempfile.TemporaryDirectory(prefix="rig-influxdb-fault-") as directory:
        server = InfluxDBServer(directory)
        server.start()
        yield server
        server.stop()


def _turn_points(server: InfluxDBServer, database: str) -> int:
    answer = server.query("SELECT count(bytes_sent) FROM turn", database)
    series = answer["results"][0].get("series") or [{"values": [[0, 0]]}]
    return series[0]["values"][0][1]


def test_influxdb_killed_mid_run_every_point_is_written_or_counted_dropped_and_a_check_fails(
    own_influxdb: InfluxDBServer, tmp_path: Path
) -> None:
    server = own_influxdb
    server.query('CREATE DATABASE "rig"')
    out = tmp_path / "runs"
    rig = _rig_compare(
        "--users", "2", "--duration", "8", "--preset", "instant", "--transports", "http,ws",
        "--out", str(out), "--sink", "influx-v1", "--influx-url", server.url,
        "--influx-database", "rig", "--influx-final-flush", f"{FINAL_FLUSH_S:g}",
        "--check", "rig.points_dropped==0",
    )  # fmt: skip
    try:
        # Kill InfluxDB once it holds some of the run's points; it stays dead to the end.
        _wait_for(lambda: _turn_points(server, "rig") > 0, "the first points in InfluxDB")
        assert server.process is not None
        _kill(server.process)
        server.process = None
        before = len(_turn_lines(out))
        _wait_for(lambda: len(_turn_lines(out)) > before + 10, "turns after InfluxDB died")
        rig.wait_ready(timeout=120)
        stopping = time.monotonic()
        code = rig.process.wait(timeout=120)
        ending_s = time.monotonic() - stopping
    finally:
        rig.stop()
    output = "".join(rig.output)
    assert code == 1, output[-3000:]
    # One bounded wait, not one at the test's stop and another at quitting (it was 30 s
    # + 30 s): tasks in flight finish at once with instant tools, and the rest (the
    # report) takes far less than a second wait would.
    assert FINAL_FLUSH_S <= ending_s < 2 * FINAL_FLUSH_S, f"the run took {ending_s:.1f} s to end"

    run = _only_run(out)
    made = sum(len(list(run.records(kind))) for kind in RECORD_FILES)
    summary = json.loads((run.path / "summary.json").read_text())
    written, dropped = summary["rig"]["points_written"], summary["rig"]["points_dropped"]
    assert summary["rig"]["sink"] == "influx-v1"
    assert dropped > 0
    assert written + dropped == made, "every record is either written or counted dropped"
    assert any("sink dropped" in warning for warning in summary["warnings"])
    assert re.search(rf"warning: the metrics sink dropped {dropped} points of {made}\b", output)
    assert "check FAIL rig.points_dropped==0" in output

    # What InfluxDB acknowledged is on its disk (the WAL is synced before the answer):
    # started again after the run, it holds every point counted written. It may hold a
    # batch more: one it stored but was killed before acknowledging, which the rig cannot
    # know arrived and so counts dropped. Never more than written + dropped.
    server.start()
    stored = 0
    for measurement in MEASUREMENTS.values():
        answer = server.query(
            f"SELECT * FROM \"{measurement.name}\" WHERE run = '{run.path.name}'", "rig"
        )
        for series in answer["results"][0].get("series") or ():
            stored += len(series["values"])
    assert written <= stored <= written + dropped, (written, stored, dropped)


# -- the mock killed mid-run with the Redis store ------------------------------------------

CREATE = {"model": "mock-agent", "input": "Remember the billing module", "store": True}


def _continue(base_url: str, response_id: str) -> httpx.Response:
    body = dict(CREATE, input="go on", previous_response_id=response_id)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        return client.post("/responses", json=body)


def test_the_mock_killed_mid_run_turns_become_errors_and_a_restart_continues_from_redis(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    mock, base_url = start_mock("--store", redis_url, "--preset", "instant", port=port)
    restarted: ManagedProcess | None = None
    out = tmp_path / "runs"
    # No repeats of a refused attempt (--stream-retries 0): every turn started during the
    # outage fails on its own (repeats are tested in test_loadgen_breaks.py).
    rig = _rig_compare(
        "--target-url", base_url, "--users", "2", "--duration", "12",
        "--transports", "ws_stored,http_chained", "--out", str(out), "--stream-retries", "0",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            stored = client.post("/responses", json=CREATE)
        assert stored.status_code == 200, stored.text
        stored_id = stored.json()["id"]

        _wait_for(lambda: len(_turn_lines(out)) >= 20, "20 turns before the kill")
        _kill(mock)
        killed_at = time.time()  # the mock is dead (reaped): no turn after this is answered
        _wait_for(
            lambda: (
                sum(t["ts"] > killed_at and t["status"] == "error" for t in _turn_lines(out)) >= 5
            ),
            "failed turns while the mock is dead",
        )
        restarting_at = time.time()
        restarted, _ = start_mock("--store", redis_url, "--preset", "instant", port=port)
        _wait_for(
            lambda: any(
                t["ts"] > restarting_at and t["status"] in ("ok", "reconnected")
                for t in _turn_lines(out)
            ),
            "answered turns after the restart",
        )
        # The restarted mock continues a conversation stored before the kill: from Redis.
        continued = _continue(base_url, stored_id)
        assert continued.status_code == 200, continued.text
        assert continued.json()["previous_response_id"] == stored_id
        rig.wait_ready(timeout=120)
        code = rig.process.wait(timeout=120)
    finally:
        rig.stop()
        for process in (mock, restarted):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
    output = "".join(rig.output)
    # Tasks completed before the kill and after the restart: not "every session failed".
    assert code == 0, output[-3000:]

    run = _only_run(out)
    turns, tasks = run.turns(), run.tasks()
    outage = [t for t in turns if killed_at < t.ts < restarting_at]
    assert outage, "no turn started while the mock was dead"
    assert all(t.status == "error" for t in outage), Counter(t.status for t in outage)
    assert all(t.error for t in outage), "a failed turn without its cause"
    assert any("refused" in t.error.lower() for t in outage), {t.error for t in outage}
    # Not lost: every task's turns are all recorded, the failed ones included.
    per_session = Counter(t.session for t in turns)
    assert all(per_session[task.session] == task.turns for task in tasks)
    failed_tasks = [task for task in tasks if not task.ok]
    assert failed_tasks and all(task.error for task in failed_tasks)
    assert any(t.ts > restarting_at and t.status in ("ok", "reconnected") for t in turns)

    summary = json.loads((run.path / "summary.json").read_text())
    for name in ("ws_stored", "http_chained"):
        figures = summary["transports"][name]
        assert figures["tasks"] > 0, name
        assert figures["errors"] == sum(
            t.status in ("error", "timeout") for t in turns if t.tags.transport == name
        )
    assert sum(summary["transports"][n]["errors"] for n in ("ws_stored", "http_chained")) > 0
    assert "turns failed (error or timeout)" in output


# -- a target that never answers, or answers garbage ---------------------------------------


def _compare_against(url: str, out: Path, *args: str, bound_s: float) -> tuple[int, str]:
    """``rig compare`` against ``url``; its exit code and output. It must end by itself
    within ``bound_s`` (derived from the options by the caller)."""
    argv = [
        sys.executable, "-m", "rig", "compare", "--target-url", url, "--time-scale", "0",
        "--transports", "http,ws", "--users", "2", "--out", str(out), *args,
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=bound_s)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"rig compare did not end within {bound_s:g} s: {exc.output}"
        ) from None
    return done.returncode, done.stdout + done.stderr


STARTUP_S = 30.0
"""What a bound on a run's end allows for starting Python, Locust and the report."""


def test_a_target_that_never_answers_ends_within_the_timeouts_with_timeout_records(
    tmp_path: Path,
) -> None:
    duration, request_timeout, stop_timeout = 3, 2, 5
    out = tmp_path / "runs"
    with MisbehavingServer(lambda request: NEVER) as server:
        code, output = _compare_against(
            server.url, out,
            "--duration", str(duration), "--request-timeout", str(request_timeout),
            "--stop-timeout", str(stop_timeout),
            bound_s=duration + stop_timeout + STARTUP_S,
        )  # fmt: skip
    assert code == 3, output[-3000:]
    assert "every session failed: timed out: the turn took longer than 2 s" in output
    assert "Traceback" not in output
    run = _only_run(out)
    turns, tasks = run.turns(), run.tasks()
    assert turns and all(t.status == "timeout" for t in turns), Counter(t.status for t in turns)
    assert all(1900 < t.turn_ms < 4000 for t in turns), [t.turn_ms for t in turns]
    assert {t.tags.transport for t in turns} == {"http", "ws"}
    per_session = Counter(t.session for t in turns)
    assert all(per_session[task.session] == task.turns for task in tasks)  # none lost
    assert len(tasks) == len(turns) and not any(task.ok for task in tasks)
    summary = json.loads((run.path / "summary.json").read_text())
    for name in ("http", "ws"):
        figures = summary["transports"][name]
        assert figures["tasks"] == 0
        assert figures["errors"] == sum(t.tags.transport == name for t in turns)


def test_turns_cut_off_at_the_stop_timeout_are_recorded_as_stopped(tmp_path: Path) -> None:
    # The request timeout (60 s) outlasts the run: the users are stopped while waiting.
    duration, stop_timeout = 2, 1
    out = tmp_path / "runs"
    with MisbehavingServer(lambda request: NEVER) as server:
        code, output = _compare_against(
            server.url, out,
            "--duration", str(duration), "--request-timeout", "60",
            "--stop-timeout", str(stop_timeout),
            bound_s=duration + stop_timeout + STARTUP_S,
        )  # fmt: skip
    assert code == 3, output[-3000:]
    assert "every session failed: stopped: the run ended while the turn was waiting" in output
    run = _only_run(out)
    turns, tasks = run.turns(), run.tasks()
    assert turns and all(
        (t.status, t.error)
        == ("error", "stopped: the run ended while the turn was waiting for the target")
        for t in turns
    ), {(t.status, t.error) for t in turns}
    assert len(tasks) == len(turns) == len(server.requests)  # every turn sent is recorded
    summary = json.loads((run.path / "summary.json").read_text())
    assert sum(f["errors"] for f in summary["transports"].values()) == len(turns)


def _attempts_allowed(duration_s: float, base_s: float, cap_s: float) -> int:
    """The most tasks one session can start in ``duration_s`` against a dead target: one
    at once, then one after each wait, each at least half of ``min(cap, base * 2^k)``."""
    attempts, elapsed = 1, 0.0
    while True:
        elapsed += min(cap_s, base_s * 2 ** (attempts - 1)) / 2
        if elapsed > duration_s:
            return attempts
        attempts += 1


def test_against_a_dead_port_the_task_backoff_bounds_the_attempts(tmp_path: Path) -> None:
    users, duration = 4, 3
    out = tmp_path / "runs"
    # A port bound but not listening refuses connections, and no other process can take
    # it meanwhile (a merely free port could be given to another test's server).
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    argv = [
        sys.executable, "-m", "rig", "locust", "--headless", "-u", str(users), "-r", str(users),
        "-t", f"{duration}s", "--stop-timeout", "2", "--transports", "http,ws",
        "--target-url", f"http://127.0.0.1:{dead.getsockname()[1]}/v1", "--time-scale", "0",
        "--task-backoff", "base=1,cap=30", "--out", str(out), "--run-id", "dead",
        "--stream-retries", "0",  # one attempt per turn: the task back-off is what is bounded
    ]  # fmt: skip
    with dead:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + STARTUP_S)
    output = done.stdout + done.stderr
    run = RunDirectory(out / "dead")
    turns, tasks = run.turns(), run.tasks()
    # Every attempt is a refused turn of a failed one-turn task (or one cut off by the
    # stop, recorded as such): none lost, none more than the back-off allows (without it:
    # about 560 a second per transport).
    causes = {t.error for t in turns}
    assert turns and all(t.status == "error" for t in turns), {t.status for t in turns}
    assert causes - {STOPPED} == {"ConnectionRefusedError: [Errno 111] Connection refused"}
    assert len(tasks) == len(turns) and not any(task.ok for task in tasks)
    per_session: Counter[str] = Counter()
    for turn in turns:  # a session's tasks are named <transport>-<worker>-<index>-<task>
        per_session[turn.session.rsplit("-", 1)[0]] += 1
    assert len(per_session) == users, per_session
    assert max(per_session.values()) <= _attempts_allowed(duration, 1.0, 30.0), per_session
    assert "Traceback" not in output, output[-3000:]


def test_a_target_that_answers_garbage_gives_error_records_and_exit_3(tmp_path: Path) -> None:
    duration, stop_timeout = 3, 5
    out = tmp_path / "runs"
    garbage = b"\x00\x01\x02 this is not HTTP at all\r\n\r\n"
    with MisbehavingServer(lambda request: garbage) as server:
        code, output = _compare_against(
            server.url, out, "--duration", str(duration), "--stop-timeout", str(stop_timeout),
            bound_s=duration + stop_timeout + STARTUP_S,
        )  # fmt: skip
    assert code == 3, output[-3000:]
    assert "every session failed: " in output and "answered with something that is not" in output
    assert "Traceback" not in output, output[-3000:]
    run = _only_run(out)
    turns, tasks = run.turns(), run.tasks()
    causes = {t.tags.transport: t.error for t in turns}
    assert "HTTPProtocolError" in causes["http"] and "not HTTP" in causes["http"]
    assert "WSProtocolError" in causes["ws"] and "not a valid HTTP response" in causes["ws"]
    assert all(t.status == "error" for t in turns), Counter(t.status for t in turns)
    assert len(tasks) == len(turns) == len(server.requests)  # every attempt is recorded
    # Each of the 4 sessions backs off after its failed task: a handful of attempts each.
    assert len(turns) <= 4 * _attempts_allowed(duration + 1, 1.0, 30.0)
    assert server.connections == len(server.requests) + 1  # + rig compare's reachability check
    summary = json.loads((run.path / "summary.json").read_text())
    for name in ("http", "ws"):
        figures = summary["transports"][name]
        assert figures["tasks"] == 0
        assert figures["tasks_failed"] == sum(t.tags.transport == name for t in turns)
        assert figures["errors"] == sum(t.tags.transport == name for t in turns)
