"""Sessions over TLS (HTTPS and WSS): counted in encrypted bytes, as the kernel sees them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import TurnInput
from rig.metrics.records import RecordTags
from rig.workload.scenarios import builtin_scenarios
from tests.servers import require_binary, start_mock

SCENARIO = builtin_scenarios()["refactor_api_layer"]


@pytest.fixture(scope="module")
def tls_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    openssl = require_binary("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    process, url = start_mock("--tls-cert", str(cert), "--tls-key", str(key))
    yield url.replace("http://", "https://"), cert
    process.stop()


@pytest.mark.parametrize("transport", ["http", "ws", "chat"])
def test_tls_sessions_verify_the_server_and_count_every_encrypted_byte(
    tls_mock: tuple[str, Path], transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_mock
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test CA, as a user would
    records: list = []
    config = SessionConfig(
        transport,
        SCENARIO,
        Target.from_url(url),
        RecordTags("t", SCENARIO.name, transport, "mock"),
        time_scale=0,
    )
    session = AgentSession(config, records.append)
    prompt = {"role": "user", "content": "Refactor the API client, please."}
    transcript, new_items, previous = [prompt], [prompt], None
    try:
        for _ in range(3):
            outcome = session.transport.turn(
                TurnInput(transcript, new_items, previous, {"scenario": SCENARIO.name})
            )
            assert outcome.status == "ok", outcome.error
            info = session.transport.tcp_info()
            assert (session.counter.sent, session.counter.received) == (
                info.payload_acked,
                info.bytes_received,
            )
            # TLS records wrap the plaintext: more wire bytes than HTTP/WebSocket bytes.
            assert outcome.bytes_sent > outcome.body_bytes_sent + 22
            previous = outcome.response_id
            transcript.extend(outcome.output)
            new_items = [
                {"type": "function_call_output", "call_id": c["call_id"], "output": "done"}
                for c in outcome.tool_calls
            ]
            transcript.extend(new_items)
    finally:
        session.close()


def test_an_untrusted_certificate_is_refused(tls_mock: tuple[str, Path]) -> None:
    url, _ = tls_mock
    records: list = []
    config = SessionConfig(
        "http",
        SCENARIO,
        Target.from_url(url),
        RecordTags("t", SCENARIO.name, "http", "mock"),
        time_scale=0,
    )
    session = AgentSession(config, records.append)
    task = session.run_task()
    session.close()
    assert not task.ok
    assert "CERTIFICATE_VERIFY_FAILED" in records[0].error
