"""The gateway's upstream calls over HTTP/2 (``--upstream-http2``), against the mock's app
served by Hypercorn (a real HTTP/2 server; uvicorn speaks only HTTP/1.1), whose access log
says which protocol each call came in: negotiated by TLS ALPN, HTTP/1.1 where the upstream
offers nothing else, prior knowledge over cleartext; multi-turn WebSocket continuation,
the Models API, a passed-through key (carried, never logged), a rate limit's refusal with
its headers, an upstream gone or cut mid-stream, and calls in flight sharing one
connection."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import psutil
import pytest
import trustme

from tests.h2_refusing import READY as REFUSING_READY
from tests.h2_upstream import READY
from tests.sdk import check_rate_limit_passes_through, until_done
from tests.servers import ManagedProcess, free_port, server_stats, start_gateway, start_mock

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


@dataclass
class Through:
    """An upstream under Hypercorn and a gateway calling it, both running."""

    upstream: Upstream
    gateway: ManagedProcess
    url: str


@contextlib.contextmanager
def _through_gateway(
    *upstream_args: str,
    tls: tuple[Path, Path] | None = None,
    gateway_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Through]:
    """:class:`Upstream` with ``upstream_args`` and ``rig gateway --upstream-http2`` with
    ``gateway_args`` in front of it; both stopped on exit."""
    upstream = Upstream(*upstream_args, tls=tls)
    try:
        gateway, url = start_gateway(upstream.url, "--upstream-http2", *gateway_args, env=env)
        try:
            yield Through(upstream, gateway, url)
        finally:
            gateway.stop()
    finally:
        upstream.stop()


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


def test_an_upstream_offering_http2_over_tls_is_called_with_it_across_turns(
    certificates: tuple[Path, Path, Path],
) -> None:
    bundle, cert, key = certificates
    with _through_gateway(tls=(cert, key), env={"SSL_CERT_FILE": str(bundle)}) as setup:
        with _sdk(setup.url) as client:
            answer = client.responses.create(model="mock-agent", input="Explain the fix")
            assert answer.status == "completed" and answer.output_text
            with client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="Read the parser", store=False)
                first = until_done(connection)
                assert first.type == "response.completed", first
                connection.response.create(
                    model="mock-agent",
                    previous_response_id=first.response.id,
                    input=[{"role": "user", "content": "Now fix it"}],
                    store=False,
                )
                second = until_done(connection)
                assert second.type == "response.completed", second
                # the upstream was given the first turn again: its input grew by that turn
                assert second.response.usage.input_tokens > first.response.usage.input_tokens
            assert [m.id for m in client.models.list().data] == ["mock-agent"]
        stats = server_stats(setup.url)
    calls = setup.upstream.calls()
    assert [call[1:] for call in calls] == [
        ("POST", "/v1/responses", 200),
        ("POST", "/v1/responses", 200),
        ("POST", "/v1/responses", 200),
        ("GET", "/v1/models", 200),
    ]
    assert {call[0] for call in calls} == {"2"}
    assert stats["upstream_requests"] == 3 and stats["upstream_errors"] == 0
    assert [u["http2"] for u in stats["upstreams"]] == [True]


def test_an_upstream_offering_only_http11_over_tls_is_called_with_http11(
    certificates: tuple[Path, Path, Path],
) -> None:
    bundle, cert, key = certificates
    tls, env = (cert, key), {"SSL_CERT_FILE": str(bundle)}
    with _through_gateway("--alpn", "http/1.1", tls=tls, env=env) as setup, _sdk(setup.url) as sdk:
        assert sdk.responses.create(model="mock-agent", input="hi").status == "completed"
    assert setup.upstream.calls() == [("1.1", "POST", "/v1/responses", 200)]


def test_an_untrusted_upstream_certificate_is_refused_over_http2(
    certificates: tuple[Path, Path, Path],
) -> None:
    _, cert, key = certificates
    with _through_gateway(tls=(cert, key)) as setup:  # no SSL_CERT_FILE
        answer = httpx.post(setup.url + "/responses", json={"model": "mock-agent", "input": "hi"})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "upstream_error"
    assert setup.upstream.calls() == []


def test_a_cleartext_upstream_is_called_with_http2_from_the_first_byte() -> None:
    with (
        _through_gateway() as setup,
        _sdk(setup.url) as client,
        client.responses.connect() as connection,
    ):
        connection.response.create(model="mock-agent", input="hi", store=False)
        assert until_done(connection).type == "response.completed"
    assert setup.upstream.calls() == [("2", "POST", "/v1/responses", 200)]


def test_a_rate_limit_over_http2_reaches_the_client_with_its_headers() -> None:
    """As over HTTP/1.1 (tests/integration/test_gateway_sdk.py): the 429 and its headers
    reach the client over HTTP and as the WebSocket error event."""
    with _through_gateway("--rpm", "1") as setup:
        with _sdk(setup.url) as client:
            check_rate_limit_passes_through(client)
        assert server_stats(setup.url)["upstream_rate_limited"] == 2
    assert [call[0] for call in setup.upstream.calls()] == ["2", "2", "2"]


def test_an_http2_upstream_gone_is_the_apis_error_and_the_connection_stays() -> None:
    with _through_gateway() as setup:
        with _sdk(setup.url) as client, client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="hi", store=False)
            assert until_done(connection).type == "response.completed"
            os.killpg(setup.upstream.process.process.pid, signal.SIGKILL)
            setup.upstream.process.process.wait()
            connection.response.create(model="mock-agent", input="again", store=False)
            event = until_done(connection)
            assert event.type == "error" and event.status == 502
            assert event.error.code == "upstream_error"
            connection.response.create(model="mock-agent", input="and again", store=False)
            assert until_done(connection).type == "error"  # the connection stayed open
        answer = httpx.post(setup.url + "/responses", json={"model": "mock-agent", "input": "hi"})
        assert answer.status_code == 502 and answer.json()["error"]["type"] == "server_error"


SLOW_PRESET = str(Path(__file__).resolve().parents[1] / "data" / "slow.yaml")
"""A response that streams for a few seconds."""


def test_an_http2_stream_cut_midway_is_an_error_event_not_a_hang() -> None:
    with _through_gateway("--preset", SLOW_PRESET) as setup:
        with _sdk(setup.url) as client, client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="Explain the fix", store=False)
            for event in connection:  # the stream has begun
                if event.type == "response.output_text.delta":
                    break
            os.killpg(setup.upstream.process.process.pid, signal.SIGKILL)
            event = until_done(connection)
            assert event.type == "error" and event.status == 502, event
            assert event.error.code == "upstream_error"
        stats = server_stats(setup.url)
    assert stats["upstream_errors"] == 1 and stats["responses_completed"] == 0


def test_a_passed_through_key_is_carried_over_http2_and_never_logged() -> None:
    key, wrong = "sk-h2-pass-7d1c5e9a3b", "sk-h2-wrong-2f8b6a0c4e"
    options = ("--client-keys", "pass-through", "--log-level", "debug")
    with _through_gateway("--api-key", key, gateway_args=options) as setup:
        with openai.OpenAI(base_url=setup.url, api_key=key, max_retries=0) as client:
            assert client.responses.create(model="mock-agent", input="hi").status == "completed"
        with (
            openai.OpenAI(base_url=setup.url, api_key=wrong, max_retries=0) as client,
            pytest.raises(openai.AuthenticationError),
        ):
            client.responses.create(model="mock-agent", input="hi")
    assert [call[0::3] for call in setup.upstream.calls()] == [("2", 200), ("2", 401)]
    logged = "".join(setup.gateway.output)
    assert "listening on" in logged
    assert key not in logged and wrong not in logged


def test_calls_in_flight_share_one_http2_connection() -> None:
    """What HTTP/2 buys: ten streams through the gateway at once, and the gateway holds one
    connection to the upstream (its HTTP/1.1 client would hold one per call)."""
    streams = 10

    async def play(url: str, upstream_port: int, gateway_pid: int) -> tuple[int, list[str]]:
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-h2-test", max_retries=0)
        started = asyncio.Event()
        waiting = [streams]

        async def one(n: int) -> str:
            stream = await client.responses.create(
                model="mock-agent", input=f"Explain fix {n}", stream=True
            )
            kind = ""
            async for event in stream:
                if event.type == "response.output_text.delta" and kind == "":
                    kind = "streaming"
                    waiting[0] -= 1
                    if waiting[0] == 0:
                        started.set()
                if event.type == "response.completed":
                    kind = event.type
            return kind

        tasks = [asyncio.create_task(one(n)) for n in range(streams)]
        await asyncio.wait_for(started.wait(), 30)  # every stream has begun, none ended
        gateway = psutil.Process(gateway_pid)
        upstream = [
            c
            for c in gateway.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == upstream_port and c.status == psutil.CONN_ESTABLISHED
        ]
        kinds = await asyncio.gather(*tasks)
        await client.close()
        return len(upstream), kinds

    with _through_gateway("--preset", SLOW_PRESET) as setup:
        port = int(setup.upstream.url.rsplit(":", 1)[1].split("/")[0])
        connections, kinds = asyncio.run(play(setup.url, port, setup.gateway.process.pid))
    assert kinds == ["response.completed"] * streams
    assert connections == 1
    assert [call[0] for call in setup.upstream.calls()] == ["2"] * streams


@contextlib.contextmanager
def _behind_a_refusing_front(*front_args: str) -> Iterator[tuple[ManagedProcess, str, str]]:
    """The mock (HTTP/1.1), ``tests/h2_refusing.py`` in front of it with ``front_args``, and
    ``rig gateway --upstream-http2`` calling the front: the front, the mock's and the
    gateway's ``/v1`` URLs."""
    mock, mock_url = start_mock()
    try:
        port = free_port()
        argv = [sys.executable, "-m", "tests.h2_refusing", "--port", str(port),
                "--upstream", mock_url.removesuffix("/v1"), *front_args]  # fmt: skip
        front = ManagedProcess(argv, REFUSING_READY)
        try:
            front.wait_ready()
            upstream = f"http://127.0.0.1:{port}/v1"
            gateway, url = start_gateway(upstream, "--upstream-http2")
            try:
                yield front, mock_url, url
            finally:
                gateway.stop()
        finally:
            front.stop()
    finally:
        mock.stop()


def _front_said(front: ManagedProcess) -> list[str]:
    return [line.strip() for line in front.output if not line.startswith(REFUSING_READY)]


@pytest.mark.parametrize(
    ("front_args", "turned_away"),
    [
        (("--refuse", "2"), ["refused /v1/responses", "refused /v1/responses"]),
        (("--go-away", "1"), ["went away /v1/responses"]),
    ],
    ids=["refused-stream", "goaway-none-processed"],
)
def test_a_call_the_upstream_did_not_process_is_sent_again(
    front_args: tuple[str, ...], turned_away: list[str]
) -> None:
    """RFC 9113 8.7: a stream reset with REFUSED_STREAM, or a connection going away with
    none of its streams processed, is safe to send again; the client sees one answer (over
    HTTP and WebSocket) and the upstream (the mock behind the front) one call each."""
    with _behind_a_refusing_front(*front_args) as (front, mock_url, url):
        with _sdk(url) as client, client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="Read the parser", store=False)
            first = until_done(connection)
            assert first.type == "response.completed", first
            answer = client.responses.create(model="mock-agent", input="hi")
            assert answer.status == "completed"
        stats, served = server_stats(url), server_stats(mock_url)
    assert _front_said(front) == [
        *turned_away,
        "served POST /v1/responses 200",
        "served POST /v1/responses 200",
    ]
    assert served["responses_completed"] == 2
    assert stats["responses_completed"] == 2 and stats["upstream_errors"] == 0
    assert stats["upstream_retries"] == len(turned_away)
    # a call sent again is one call: its body counted once, as the upstream received it
    assert stats["upstream_requests"] == 2
    assert stats["upstream_bytes_out"] == served["bytes_in"]


def test_an_upstream_that_keeps_refusing_is_the_apis_error() -> None:
    """Retries are bounded: a stream refused every time ends as the API's 502."""
    with _behind_a_refusing_front("--refuse", "100") as (front, mock_url, url):
        answer = httpx.post(url + "/responses", json={"model": "mock-agent", "input": "hi"})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "upstream_error"
        stats, served = server_stats(url), server_stats(mock_url)
    refused = _front_said(front)
    assert refused == ["refused /v1/responses"] * (1 + stats["upstream_retries"])
    assert 1 <= stats["upstream_retries"] <= 3
    assert served["responses_completed"] == 0
