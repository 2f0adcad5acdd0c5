"""Shared fixtures: real servers on loopback ports."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.servers import (
    InfluxDBServer,
    ManagedProcess,
    VictoriaMetricsServer,
    free_port,
    require_binary,
    start_mock,
)


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    """A mock provider (instant preset) shared by tests that do not change its settings."""
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server with a temporary directory and no persistence."""
    binary = require_binary("redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rig-redis-") as directory:
        process = ManagedProcess(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            "Ready to accept connections",
        )
        process.wait_ready()
        yield f"redis://127.0.0.1:{port}/0"
        process.stop()


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxDBServer]:
    """A real InfluxDB 1.x shared by tests; each test creates its own database."""
    with tempfile.TemporaryDirectory(prefix="rig-influxdb-") as directory:
        server = InfluxDBServer(directory)
        server.start()
        yield server
        server.stop()


@pytest.fixture
def victoria_metrics() -> Iterator[VictoriaMetricsServer]:
    """A real VictoriaMetrics with a temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="rig-vm-") as directory:
        server = VictoriaMetricsServer(directory)
        yield server
        server.stop()
