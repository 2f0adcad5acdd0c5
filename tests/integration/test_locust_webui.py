"""Plain Locust with its web UI: the rig's options are in the form, users are ours."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.servers import ManagedProcess, free_port

LOCUSTFILE = str(Path(__file__).resolve().parents[2] / "locustfiles" / "agent_sessions.py")


def test_the_web_ui_offers_the_rig_options_and_user_classes() -> None:
    port = free_port()
    locust = ManagedProcess(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
        ],
        "Starting web interface at",
    )
    locust.wait_ready()
    try:
        # Locust logs "Starting web interface" just before its server binds: poll the port
        # (the process's own state) until it answers.
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30).text
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or locust.process.poll() is not None:
                    raise
                time.sleep(0.05)
    finally:
        locust.stop()
    for option in ("target_url", "transports", "scenario", "time_scale", "seed"):
        assert option in page, option
    assert "api_key_env" not in page  # a secret's name stays off the form
    for user in ("HttpAgent", "WsAgent", "ChatAgent"):
        assert user in page
