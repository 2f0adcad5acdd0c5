"""Real server processes for tests: started on free loopback ports, stopped afterwards.

Readiness is the server's own word (a line it prints when it accepts connections), read by
a thread that keeps draining the output; no test sleeps to wait for a server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, NoReturn

import httpx
import pytest

__all__ = [
    "InfluxDBServer",
    "ManagedProcess",
    "VictoriaMetricsServer",
    "free_port",
    "missing_tool",
    "require_binary",
    "start_gateway",
    "start_mock",
]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str) -> str:
    """The path of ``name``; in CI a missing server binary fails the test, locally it skips."""
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path is None:
        missing_tool(f"{name} is not installed (apt-get install {name})")
    return path


def missing_tool(message: str) -> NoReturn:
    """A test cannot run without a tool: in CI that fails the test, locally it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class ManagedProcess:
    """A child process whose output is drained by a thread that watches for a marker."""

    def __init__(
        self,
        argv: Sequence[str],
        ready_marker: str,
        env: dict[str, str] | None = None,
        ready_count: int = 1,
    ):
        self.argv = list(argv)
        self.ready_marker = ready_marker
        self.ready_count = ready_count
        self.output: list[str] = []
        self._ready = threading.Event()
        self._exited = threading.Event()
        self.process = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        seen = 0
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_marker in line:
                seen += 1
                if seen >= self.ready_count:
                    self._ready.set()
        self._exited.set()
        self._ready.set()  # wake a waiter: the process ended

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the marker appeared ``ready_count`` times; fail with the output if the process dies first."""
        if not self._ready.wait(timeout) or self._exited.is_set():
            self.stop()
            raise RuntimeError(
                f"{self.argv[0]} did not become ready:\n{''.join(self.output)[-3000:]}"
            )

    def stop(self) -> int:
        """Terminate the process group and return the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode


def start_mock(*args: str, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start ``rig mock`` with ``args`` on a free port; return it and its ``/v1`` base URL."""
    port = port or free_port()
    argv = [sys.executable, "-m", "rig", "mock", "--port", str(port), "--log-level", "info", *args]
    process = ManagedProcess(argv, "rig mock listening on")
    process.wait_ready()
    return process, f"http://127.0.0.1:{port}/v1"


def start_gateway(
    upstream: str, *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[ManagedProcess, str]:
    """Start ``rig gateway`` in front of ``upstream`` (a ``/v1`` base URL) with ``args`` on a
    free port; return it and its ``/v1`` base URL."""
    port = port or free_port()
    argv = [sys.executable, "-m", "rig", "gateway", "--port", str(port), "--upstream", upstream,
            "--log-level", "info", *args]  # fmt: skip
    process = ManagedProcess(argv, "rig gateway listening on", env=env)
    process.wait_ready()
    return process, f"http://127.0.0.1:{port}/v1"


class InfluxDBServer:
    """A real InfluxDB 1.x (Debian ``influxd``) on free loopback ports with its own data.

    ``stop()`` and ``start()`` again keep the port and the data: an outage and a restart.
    """

    def __init__(self, directory: str, *, auth: bool = False):
        self.binary = require_binary("influxd")
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(directory, "influxdb.conf")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(
                "reporting-disabled = true\n"
                f'bind-address = "127.0.0.1:{free_port()}"\n'
                f'[meta]\n  dir = "{directory}/meta"\n'
                f'[data]\n  dir = "{directory}/data"\n  wal-dir = "{directory}/wal"\n'
                "  query-log-enabled = false\n"
                "[monitor]\n  store-enabled = false\n"
                f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n'
                f"  auth-enabled = {'true' if auth else 'false'}\n  log-enabled = false\n"
            )
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        """Start (or restart) the server and wait until it listens."""
        self.process = ManagedProcess(
            [self.binary, "run", "-config", self.config], "Listening on HTTP"
        )
        self.process.wait_ready()

    def stop(self) -> None:
        """Stop the server (its data stays)."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    def query(self, statement: str, database: str = "", auth: tuple[str, str] | None = None):
        """Run an InfluxQL statement; the decoded JSON answer."""
        import urllib3

        headers = urllib3.make_headers(basic_auth=":".join(auth)) if auth else {}
        response = urllib3.PoolManager().request(
            "POST",
            f"{self.url}/query",
            fields={"q": statement, "db": database, "epoch": "ns"},
            encode_multipart=False,
            headers=headers,
        )
        answer = response.json()
        if response.status != 200 or any("error" in r for r in answer.get("results", ())):
            raise RuntimeError(f"InfluxDB: {statement!r} failed: {answer}")
        return answer


class VictoriaMetricsServer:
    """A real VictoriaMetrics (Debian ``victoria-metrics``): it serves InfluxDB's
    ``/api/v2/write``, takes Prometheus text on ``/api/v1/import/prometheus`` and answers
    PromQL on ``/api/v1/query``."""

    def __init__(self, directory: str):
        binary = require_binary("victoria-metrics")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            [
                binary,
                f"-storageDataPath={directory}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
            ],
            "starting http server",
        )
        self.process.wait_ready()
        # The line comes just before the listener opens: poll /health until it answers.
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.process.poll() is not None:
                self.process.stop()
                raise RuntimeError("victoria-metrics did not answer /health")
            time.sleep(0.05)

    def export(self, match: str) -> list[dict]:
        """Every sample of the series matching ``match`` (after a forced flush)."""
        import orjson
        import urllib3

        pool = urllib3.PoolManager()
        pool.request("GET", f"{self.url}/internal/force_flush")
        response = pool.request(
            "POST", f"{self.url}/api/v1/export", fields={"match[]": match}, encode_multipart=False
        )
        return [orjson.loads(line) for line in response.data.splitlines() if line.strip()]

    def import_prometheus(self, text: str, extra_labels: dict[str, str] | None = None) -> None:
        """Ingest Prometheus exposition text (samples may carry timestamps in ms), each
        series given ``extra_labels`` as a scrape adds ``job`` and ``instance``."""
        import urllib3

        fields = [("extra_label", f"{k}={v}") for k, v in (extra_labels or {}).items()]
        query = urllib.parse.urlencode(fields)
        response = urllib3.PoolManager().request(
            "POST", f"{self.url}/api/v1/import/prometheus?{query}", body=text.encode()
        )
        if response.status >= 300:
            raise RuntimeError(f"VictoriaMetrics import: {response.status} {response.data!r}")

    def query(self, promql: str, at: float) -> list[dict]:
        """An instant PromQL query at ``at`` (Unix seconds): the result vector, after a
        forced flush (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        import orjson
        import urllib3

        pool = urllib3.PoolManager()
        pool.request("GET", f"{self.url}/internal/force_flush")
        response = pool.request(
            "POST",
            f"{self.url}/api/v1/query",
            fields={"query": promql, "time": f"{at:.3f}"},
            encode_multipart=False,
        )
        answer = orjson.loads(response.data)
        if response.status != 200 or answer.get("status") != "success":
            raise RuntimeError(f"VictoriaMetrics: {promql!r} failed: {answer}")
        assert answer["data"]["resultType"] == "vector", answer
        return list(answer["data"]["result"])

    def stop(self) -> None:
        """Stop the server."""
        self.process.stop()


def server_stats(base_url: str) -> dict[str, Any]:
    """``GET /stats`` of the mock or the gateway at ``base_url`` (its ``/v1`` base URL)."""
    figures: dict[str, Any] = httpx.get(base_url.removesuffix("/v1") + "/stats", timeout=10).json()
    return figures


def settled_stats(url: str, responses: int) -> dict[str, int]:
    """The mock's counters once it has counted ``responses`` (it counts a response just
    after writing its last event); polled with a 10 s deadline."""
    deadline = time.monotonic() + 10
    while True:
        stats = httpx.get(url.removesuffix("/v1") + "/stats", timeout=10).json()
        if stats["responses_completed"] >= responses or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)
