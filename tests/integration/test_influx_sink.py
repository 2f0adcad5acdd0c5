"""The InfluxDB sink against real servers: InfluxDB 1.x (v1 write path, InfluxQL read-back)
and VictoriaMetrics (a real ``/api/v2/write`` for influxdb-client's v2 path).

Every point written is checked against the run directory's record of the same turn, task or
health sample, one by one; ``rig report --influx`` rebuilds the same summary; bad
configuration fails before the run; an outage loses nothing that fits in the buffer and
counts what does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.metrics.influxql import InfluxQLClient
from rig.metrics.lineproto import MEASUREMENTS, TAG_KEYS
from rig.metrics.records import record_to_dict
from rig.metrics.rundir import RunDirectory
from tests.servers import InfluxDBServer, ManagedProcess, free_port

QUICK = ["--users", "2", "--duration", "4", "--time-scale", "0.02", "--preset", "instant"]
_FILES = {"turn": "turns", "task": "tasks", "rig": "health", "ratelimit": "ratelimits"}


def _rig(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "rig", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )


def _database(influxdb: InfluxDBServer, name: str) -> str:
    influxdb.query(f'CREATE DATABASE "{name}"')
    return name


def _only_run(parent: Path) -> RunDirectory:
    (path,) = [p for p in parent.iterdir() if p.is_dir()]
    return RunDirectory(path)


def _key(kind: str, row: dict) -> tuple:
    """What identifies a point of ``kind``: its tags, its time (ns) and, for turns, session."""
    tags = tuple(str(row.get(name) or "") for name in MEASUREMENTS[kind].tags)
    return (tags, row.get("session", ""), row["time"])


@pytest.fixture(scope="module")
def v1_run(influxdb: InfluxDBServer, tmp_path_factory: pytest.TempPathFactory):
    """One rig compare run writing through --sink influx-v1 into a fresh database."""
    tmp_path = tmp_path_factory.mktemp("influx-v1")
    database = _database(influxdb, "rig_v1")
    done = _rig(
        tmp_path,
        "compare", *QUICK, "--transports", "http,ws", "--out", str(tmp_path / "runs"),
        "--sink", "influx-v1", "--influx-url", influxdb.url, "--influx-database", database,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, database, _only_run(tmp_path / "runs")


def test_every_record_of_the_run_directory_is_a_point_with_the_same_values(
    influxdb: InfluxDBServer, v1_run
) -> None:
    _, database, run = v1_run
    client = InfluxQLClient(influxdb.url, database)
    run_id = run.path.name
    for kind, measurement in MEASUREMENTS.items():
        records = list(run.records(kind))
        rows = list(client.rows(f"SELECT * FROM \"{measurement.name}\" WHERE run = '{run_id}'"))
        assert len(rows) == len(records), kind
        if kind in ("turn", "task", "rig"):
            assert records, f"the run made no {kind} records"
        # Point by point: each record's own values at its own time, under its own tags.
        points = {_key(kind, row): row for row in rows}
        assert len(points) == len(rows), f"two {kind} points share tags and time"
        for record in records:
            expected = record_to_dict(record)
            candidates = [
                row
                for row in rows
                if all(str(row.get(t) or "") == str(expected.get(t, "")) for t in TAG_KEYS)
                and row.get("session", "") == expected.get("session", "")
                and abs(row["time"] - record.ts * 1e9) < 1_000
            ]
            assert len(candidates) == 1, (kind, expected)
            (row,) = candidates
            for name, field_type in measurement.fields:
                value = expected[name]
                if field_type == "float":
                    assert row[name] == pytest.approx(value, rel=1e-12, abs=1e-9), name
                else:
                    assert row[name] == value, (kind, name)
            for name in measurement.extra_tags:
                assert row[name] == str(expected[name])


def test_summary_counts_the_points_written_and_the_run_point_carries_meta(
    influxdb: InfluxDBServer, v1_run
) -> None:
    _, database, run = v1_run
    summary = json.loads((run.path / "summary.json").read_text())
    records = sum(len(list(run.records(kind))) for kind in _FILES)
    assert summary["rig"]["sink"] == "influx-v1"
    assert summary["rig"]["points_written"] == records
    assert summary["rig"]["points_dropped"] == 0
    client = InfluxQLClient(influxdb.url, database)
    (row,) = client.rows(f"SELECT meta FROM run WHERE run = '{run.path.name}'")
    meta = json.loads(row["meta"])
    assert meta["transports"] == ["http", "ws"] and meta["preset"] == "instant"


def test_rig_report_from_influx_rebuilds_the_same_summary(influxdb: InfluxDBServer, v1_run) -> None:
    tmp_path, database, run = v1_run
    done = _rig(
        tmp_path,
        "report", "--influx-url", influxdb.url, "--influx-database", database,
        "--run", run.path.name, "--out", str(tmp_path / "rebuilt"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "avg bytes sent / task" in done.stdout
    rebuilt = json.loads((tmp_path / "rebuilt" / run.path.name / "summary.json").read_text())
    original = json.loads((run.path / "summary.json").read_text())
    assert rebuilt == original
    assert (tmp_path / "rebuilt" / run.path.name / "report.html").is_file()


def test_rig_report_names_an_unknown_run(influxdb: InfluxDBServer, v1_run) -> None:
    tmp_path, database, _ = v1_run
    done = _rig(
        tmp_path,
        "report", "--influx-url", influxdb.url, "--influx-database", database,
        "--run", "no-such-run", "--out", str(tmp_path / "none"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "no run 'no-such-run'" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--influx-database", "missing_db"], "database 'missing_db' not found"),
        (
            ["--influx-database", "rig_v1", "--influx-url", "http://127.0.0.1:{port}"],
            "cannot reach",
        ),
        ([], "needs --influx-database"),
    ],
)
def test_bad_v1_configuration_fails_before_the_run(
    influxdb: InfluxDBServer, v1_run, tmp_path: Path, args: list[str], message: str
) -> None:
    url = ["--influx-url", influxdb.url] if "--influx-url" not in args else []
    args = [a.replace("{port}", str(free_port())) for a in args]
    done = _rig(
        tmp_path, "compare", *QUICK, "--out", str(tmp_path / "runs"),
        "--sink", "influx-v1", *url, *args, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (tmp_path / "runs").exists(), "nothing may run with a broken sink"


def test_wrong_v1_credentials_fail_before_the_run(tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="rig-influxdb-auth-") as directory:
        server = InfluxDBServer(directory, auth=True)
        server.start()
        try:
            server.query("CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")
            server.query('CREATE DATABASE "rig"', auth=("admin", "right"))
            env = {"RIG_TEST_INFLUX_USER": "admin", "RIG_TEST_INFLUX_PASSWORD": "wrong"}
            done = _rig(
                tmp_path, "compare", *QUICK, "--out", str(tmp_path / "runs"),
                "--sink", "influx-v1", "--influx-url", server.url, "--influx-database", "rig",
                "--influx-user-env", "RIG_TEST_INFLUX_USER",
                "--influx-password-env", "RIG_TEST_INFLUX_PASSWORD",
                env=env, timeout=60,
            )  # fmt: skip
            assert done.returncode == 2, done.stdout + done.stderr
            assert "refused the credentials (401)" in done.stderr
            assert "wrong" not in done.stderr + done.stdout, "a secret was printed"
        finally:
            server.stop()


def test_the_v2_write_path_through_influxdb_client_reaches_a_real_server(
    victoria_metrics, tmp_path: Path
) -> None:
    env = {"RIG_TEST_INFLUX_TOKEN": "secret-token-value"}
    done = _rig(
        tmp_path, "compare", *QUICK, "--transports", "http,ws", "--out", str(tmp_path / "runs"),
        "--sink", "influx", "--influx-url", victoria_metrics.url, "--influx-org", "rig",
        "--influx-bucket", "rig", "--influx-token-env", "RIG_TEST_INFLUX_TOKEN", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "secret-token-value" not in done.stdout + done.stderr
    run = _only_run(tmp_path / "runs")
    turns = run.turns()
    # VictoriaMetrics keeps numeric fields as series named <measurement>_<field>, one sample
    # per point; compare counts and sums per transport and turn index with the records.
    expected: Counter[tuple[str, str]] = Counter()
    expected_sums: Counter[tuple[str, str]] = Counter()
    for t in turns:
        expected[(t.tags.transport, str(t.turn))] += 1
        expected_sums[(t.tags.transport, str(t.turn))] += t.bytes_sent

    def exported() -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        got: Counter[tuple[str, str]] = Counter()
        sums: Counter[tuple[str, str]] = Counter()
        match = f'{{__name__="turn_bytes_sent",run="{run.path.name}"}}'
        for item in victoria_metrics.export(match):
            key = (item["metric"]["transport"], item["metric"]["turn"])
            got[key] += len(item["values"])
            sums[key] += sum(item["values"])
        return got, sums

    # New series become searchable a moment after a flush: poll VictoriaMetrics' own answer.
    _wait_for(lambda: exported()[0] == expected, "VictoriaMetrics to show every turn", 30)
    assert exported() == (expected, expected_sums)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["rig"]["sink"] == "influx"
    assert summary["rig"]["points_dropped"] == 0


def test_the_v2_sink_names_a_missing_token_variable(tmp_path: Path) -> None:
    done = _rig(
        tmp_path, "compare", *QUICK, "--out", str(tmp_path / "runs"),
        "--sink", "influx", "--influx-url", "http://127.0.0.1:9", "--influx-org", "o",
        "--influx-bucket", "b", "--influx-token-env", "RIG_TEST_UNSET_TOKEN", timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "RIG_TEST_UNSET_TOKEN is not set" in done.stderr


# -- outage --------------------------------------------------------------------------------


@pytest.fixture
def own_influxdb() -> Iterator[InfluxDBServer]:
    with tempfile.TemporaryDirectory(prefix="rig-influxdb-outage-") as directory:
        server = InfluxDBServer(directory)
        server.start()
        yield server
        server.stop()


def _wait_for(condition, what: str, timeout_s: float = 60.0) -> None:
    """Poll a condition on the processes' own state (not a timed sleep) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _count_points(server: InfluxDBServer, database: str) -> int:
    try:
        answer = server.query("SELECT count(bytes_sent) FROM turn", database)
    except Exception:
        return 0
    series = answer["results"][0].get("series") or [{"values": [[0, 0]]}]
    return series[0]["values"][0][1]


def _run_through_outage(server: InfluxDBServer, tmp_path: Path, *extra: str) -> RunDirectory:
    database = _database(server, "rig")
    argv = [
        sys.executable, "-m", "rig", "compare", "--users", "2", "--duration", "12",
        "--time-scale", "0.02", "--preset", "instant", "--transports", "http,ws",
        "--out", str(tmp_path / "runs"), "--sink", "influx-v1", "--influx-url", server.url,
        "--influx-database", database, "--influx-flush-interval", "0.2", *extra,
    ]  # fmt: skip
    rig = ManagedProcess(argv, "duration reached")
    try:
        # Stop InfluxDB once the sink has written, restart it once the run has made more
        # turns without it, and let the run end.
        _wait_for(lambda: _count_points(server, database) > 0, "the first points")
        server.stop()
        turns_file = tmp_path / "runs"

        def turns_made() -> int:
            files = list(turns_file.glob("*/turns.jsonl"))
            return sum(1 for _ in files[0].open()) if files else 0

        before = turns_made()
        _wait_for(lambda: turns_made() > before + 20, "turns during the outage")
        server.start()
        rig.wait_ready(timeout=120)
        assert rig.process.wait(timeout=120) == 0, "".join(rig.output)[-3000:]
    finally:
        rig.stop()
    return _only_run(tmp_path / "runs")


def test_an_outage_within_the_buffer_loses_nothing(
    own_influxdb: InfluxDBServer, tmp_path: Path
) -> None:
    run = _run_through_outage(own_influxdb, tmp_path)
    summary = json.loads((run.path / "summary.json").read_text())
    turns = len(run.turns())
    assert summary["rig"]["points_dropped"] == 0
    assert _count_points(own_influxdb, "rig") == turns
    records = sum(len(list(run.records(kind))) for kind in _FILES)
    assert summary["rig"]["points_written"] == records


def test_an_outage_beyond_the_buffer_counts_every_dropped_point(
    own_influxdb: InfluxDBServer, tmp_path: Path
) -> None:
    run = _run_through_outage(own_influxdb, tmp_path, "--influx-buffer", "10")
    summary = json.loads((run.path / "summary.json").read_text())
    records = sum(len(list(run.records(kind))) for kind in _FILES)
    written, dropped = summary["rig"]["points_written"], summary["rig"]["points_dropped"]
    assert dropped > 0
    assert written + dropped == records, "every record is either written or counted dropped"
    client = InfluxQLClient(own_influxdb.url, "rig")
    stored = sum(
        len(list(client.rows(f"SELECT * FROM \"{m}\" WHERE run = '{run.path.name}'")))
        for m in MEASUREMENTS
    )
    assert stored == written
    assert any("dropped" in warning for warning in summary["warnings"])
