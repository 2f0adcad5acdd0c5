"""No API key in any log at any level: ``rig mock --log-level debug`` and a
``rig locust -L DEBUG`` run with a known key, their whole output scanned for it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
from websockets.sync.client import connect

from rig.redact import RedactingFilter, redact
from tests.servers import start_mock

KEY = "sk-rigtest-9f3c2a7d41e8b6055aa1c0ffee"


def test_redact_masks_bearer_tokens_headers_and_configured_keys() -> None:
    assert KEY not in redact(f"Authorization: Bearer {KEY}")
    assert KEY not in redact(f"(b'authorization', b'Bearer {KEY}')")
    assert KEY not in redact(f"{{'authorization': '{KEY}'}}")
    assert KEY not in redact(f"api_key={KEY}&x=1")
    assert KEY not in redact(f"the key was {KEY} here", [KEY])
    assert redact("nothing secret here") == "nothing secret here"


def test_the_filter_masks_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "header %s", (KEY,), None)
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactingFilter([KEY]).filter(record)
    assert KEY not in record.getMessage()
    assert record.exc_text is not None and KEY not in record.exc_text


def test_no_key_in_the_logs_of_a_debug_mock_and_a_debug_locust_run(tmp_path: Path) -> None:
    mock, url = start_mock("--log-level", "debug", "--api-key", KEY)
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        with connect(url.replace("http", "ws") + "/responses", additional_headers=headers) as ws:
            ws.send(orjson.dumps({"type": "response.create", "model": "m", "input": "hi"}))
            while orjson.loads(ws.recv(timeout=30))["type"] != "response.completed":
                pass
        answer = httpx.post(url + "/responses", json={"model": "m", "input": "hi"}, headers=headers)
        assert answer.status_code == 200
        wrong = httpx.post(
            url + "/responses", json={"model": "m", "input": "hi"},
            headers={"Authorization": f"Bearer {KEY}x"},
        )  # fmt: skip
        assert wrong.status_code == 401
        done = subprocess.run(
            [
                sys.executable, "-m", "rig", "locust", "--headless", "-L", "DEBUG",
                "-u", "2", "-r", "2", "-t", "4s", "--stop-timeout", "10",
                "--target-url", url, "--api-key-env", "RIG_TEST_TARGET_KEY",
                "--time-scale", "0.02", "--out", str(tmp_path / "runs"),
            ],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "RIG_TEST_TARGET_KEY": KEY},
        )  # fmt: skip
        stats = httpx.get(url.removesuffix("/v1") + "/stats", headers=headers).json()
    finally:
        mock.stop()
    mock_output = "".join(mock.output)
    assert "DEBUG" in mock_output  # the debug level was on
    assert "authorization" in mock_output.lower()  # the handshake headers were logged...
    assert KEY not in mock_output  # ...masked
    assert KEY[:-4] not in mock_output
    locust_output = done.stdout + done.stderr
    assert stats["responses_completed"] > 2, stats  # the run used the key
    assert "DEBUG" in locust_output, locust_output[-2000:]
    assert KEY not in locust_output
    assert KEY[:-4] not in locust_output
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
