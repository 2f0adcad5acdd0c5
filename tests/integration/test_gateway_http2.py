"""The gateway's upstream calls over HTTP/2 (``--upstream-http2``), against the mock's app
served by Hypercorn (a real HTTP/2 server; uvicorn speaks only HTTP/1.1), whose access log
says which protocol each call came in: negotiated by TLS ALPN, HTTP/1.1 where the upstream
offers nothing else, prior knowledge over cleartext; multi-turn WebSocket continuation,
the Models API, a passed-through key (carried, never logged), a rate limit's refusal with
its headers, and an upstream gone."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import trustme

from tests.h2_upstream import READY
from tests.servers import ManagedProcess, free_port, start_gateway

_LOGGED = re.compile(r"protocol=(\S+) (\S+) (\S+) (\d{3})")


class Upstream:
    """``tests/h2_upstream.py`` on a free port: the mock's app under Hypercorn."""

    def __init__(self, *args: str, tls: tuple[Path, Path] | None = None):
        port = free_port()
        argv = [sys.executable, "-m", "tests.h2_upstream", "--port", str(port), *args]
        if tls is not None:
            argv += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
        self.process = ManagedProcess(argv, READY)
        self.process.wait_ready()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"

    def calls(self) -> list[tuple[str, str, str, int]]:
        """``(protocol, method, path, status)`` of every request its access log shows."""
        return [
            (m[1], m[2], m[3], int(m[4]))
            for line in self.process.output
            if (m := _LOGGED.search(line)) is not None
        ]

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A test authority's bundle, and a certificate for 127.0.0.1 with its key."""
    directory = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    bundle, cert, key = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    authority.cert_pem.write_to_path(str(bundle))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return bundle, cert, key


def _sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sk-h2-test", max_retries=0)


def _until_done(connection):
    for event in connection:
        if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
            return event
    raise AssertionError("the connection closed before the response ended")


def _gateway_stats(url: str) -> dict:
    return httpx.get(url.removesuffix("/v1") + "/stats").json()


@pytest.fixture
def tls_upstream(certificates: tuple[Path, Path, Path]) -> Iterator[tuple[Upstream, str]]:
    """An upstream offering HTTP/2 over TLS, and a gateway calling it with ``http2``."""
    bundle, cert, key = certificates
    upstream = Upstream(tls=(cert, key))
    try:
        gateway, url = start_gateway(
            upstream.url, "--upstream-http2", env={"SSL_CERT_FILE": str(bundle)}
        )
        try:
            yield upstream, url
        finally:
            gateway.stop()
    finally:
        upstream.stop()


def test_an_upstream_offering_http2_over_tls_is_called_with_it_across_turns(
    tls_upstream: tuple[Upstream, str],
) -> None:
    upstream, url = tls_upstream
    with _sdk(url) as client:
        answer = client.responses.create(model="mock-agent", input="Explain the fix")
        assert answer.status == "completed" and answer.output_text
        with client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="Read the parser", store=False)
            first = _until_done(connection)
            assert first.type == "response.completed", first
            connection.response.create(
                model="mock-agent",
                previous_response_id=first.response.id,
                input=[{"role": "user", "content": "Now fix it"}],
                store=False,
            )
            second = _until_done(connection)
            assert second.type == "response.completed", second
            # the upstream was given the first turn again: its input grew by that turn
            assert second.response.usage.input_tokens > first.response.usage.input_tokens
        assert [m.id for m in client.models.list().data] == ["mock-agent"]
    calls = upstream.calls()
    assert [call[1:] for call in calls] == [
        ("POST", "/v1/responses", 200),
        ("POST", "/v1/responses", 200),
        ("POST", "/v1/responses", 200),
        ("GET", "/v1/models", 200),
    ]
    assert {call[0] for call in calls} == {"2"}
    stats = _gateway_stats(url)
    assert stats["upstream_requests"] == 3 and stats["upstream_errors"] == 0
    assert [u["http2"] for u in stats["upstreams"]] == [True]


def test_an_upstream_offering_only_http11_over_tls_is_called_with_http11(
    certificates: tuple[Path, Path, Path],
) -> None:
    bundle, cert, key = certificates
    upstream = Upstream("--alpn", "http/1.1", tls=(cert, key))
    try:
        gateway, url = start_gateway(
            upstream.url, "--upstream-http2", env={"SSL_CERT_FILE": str(bundle)}
        )
        try:
            with _sdk(url) as client:
                assert client.responses.create(model="mock-agent", input="hi").status == (
                    "completed"
                )
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    assert upstream.calls() == [("1.1", "POST", "/v1/responses", 200)]


def test_an_untrusted_upstream_certificate_is_refused_over_http2(
    certificates: tuple[Path, Path, Path],
) -> None:
    _, cert, key = certificates
    upstream = Upstream(tls=(cert, key))
    try:
        gateway, url = start_gateway(upstream.url, "--upstream-http2")  # no SSL_CERT_FILE
        try:
            answer = httpx.post(url + "/responses", json={"model": "mock-agent", "input": "hi"})
            assert answer.status_code == 502
            error = answer.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "upstream_error"
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    assert upstream.calls() == []


def test_a_cleartext_upstream_is_called_with_http2_from_the_first_byte() -> None:
    upstream = Upstream()
    try:
        gateway, url = start_gateway(upstream.url, "--upstream-http2")
        try:
            with _sdk(url) as client, client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="hi", store=False)
                assert _until_done(connection).type == "response.completed"
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    assert upstream.calls() == [("2", "POST", "/v1/responses", 200)]


def test_a_rate_limit_over_http2_reaches_the_client_with_its_headers() -> None:
    upstream = Upstream("--rpm", "1")
    try:
        gateway, url = start_gateway(upstream.url, "--upstream-http2")
        try:
            with _sdk(url) as client:
                client.responses.create(model="mock-agent", input="one")
                with pytest.raises(openai.RateLimitError) as caught:
                    client.responses.create(model="mock-agent", input="two")
                assert caught.value.response.headers.get("retry-after")
                with client.responses.connect() as connection:
                    connection.response.create(model="mock-agent", input="three", store=False)
                    event = _until_done(connection)
                    assert event.type == "error" and event.status == 429
                    assert event.error.code == "rate_limit_exceeded"
                    assert event.error.headers.get("retry-after")
            assert _gateway_stats(url)["upstream_rate_limited"] == 2
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    assert [call[0] for call in upstream.calls()] == ["2", "2", "2"]


def test_an_http2_upstream_gone_is_the_apis_error_and_the_connection_stays() -> None:
    upstream = Upstream()
    try:
        gateway, url = start_gateway(upstream.url, "--upstream-http2")
        try:
            with _sdk(url) as client, client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="hi", store=False)
                assert _until_done(connection).type == "response.completed"
                os.killpg(upstream.process.process.pid, signal.SIGKILL)
                upstream.process.process.wait()
                connection.response.create(model="mock-agent", input="again", store=False)
                event = _until_done(connection)
                assert event.type == "error" and event.status == 502
                assert event.error.code == "upstream_error"
                connection.response.create(model="mock-agent", input="and again", store=False)
                assert _until_done(connection).type == "error"  # the connection stayed open
            answer = httpx.post(url + "/responses", json={"model": "mock-agent", "input": "hi"})
            assert answer.status_code == 502 and answer.json()["error"]["type"] == "server_error"
        finally:
            gateway.stop()
    finally:
        upstream.stop()


def test_a_passed_through_key_is_carried_over_http2_and_never_logged() -> None:
    key, wrong = "sk-h2-pass-7d1c5e9a3b", "sk-h2-wrong-2f8b6a0c4e"
    upstream = Upstream("--api-key", key)
    try:
        gateway, url = start_gateway(
            upstream.url,
            "--upstream-http2",
            "--client-keys",
            "pass-through",
            "--log-level",
            "debug",
        )
        try:
            with openai.OpenAI(base_url=url, api_key=key, max_retries=0) as client:
                assert client.responses.create(model="mock-agent", input="hi").status == (
                    "completed"
                )
            with (
                openai.OpenAI(base_url=url, api_key=wrong, max_retries=0) as client,
                pytest.raises(openai.AuthenticationError),
            ):
                client.responses.create(model="mock-agent", input="hi")
        finally:
            gateway.stop()
    finally:
        upstream.stop()
    assert [call[0::3] for call in upstream.calls()] == [("2", 200), ("2", 401)]
    logged = "".join(gateway.output)
    assert "listening on" in logged
    assert key not in logged and wrong not in logged
