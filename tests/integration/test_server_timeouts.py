"""Stalled and abandoned requests, against the mock and the gateway (one server protocol,
``rig/serving/httpproto.py``, and one body reader, ``rig/serving/body.py``): each closes
what stalls by its own time limits, and logs a client that left as one info line, never a
traceback."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.servers import ManagedProcess, start_gateway, start_mock

LIMIT_S = "0.5"  # the servers' header and body timeouts in these tests
TIMEOUTS = ("--header-timeout", LIMIT_S, "--body-timeout", LIMIT_S)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextlib.contextmanager
def _server(kind: str, *args: str) -> Iterator[tuple[ManagedProcess, str]]:
    """``rig mock`` with ``args``, or ``rig gateway`` with them in front of a mock."""
    if kind == "mock":
        process, url = start_mock(*args)
        try:
            yield process, url
        finally:
            process.stop()
        return
    upstream, upstream_url = start_mock()
    try:
        process, url = start_gateway(upstream_url, *args)
        try:
            yield process, url
        finally:
            process.stop()
    finally:
        upstream.stop()


@pytest.fixture(scope="module", params=["mock", "gateway"])
def timed_server(request: pytest.FixtureRequest) -> Iterator[tuple[ManagedProcess, str, int]]:
    with _server(request.param, *TIMEOUTS) as (process, url):
        yield process, url, _port(url)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; the socket's own timeout (far beyond
    the server's limit) fails the test if the server never does."""
    sock.settimeout(20)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's head and body (by its ``content-length``), as it arrives."""
    sock.settimeout(20)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def _error_of(reply: bytes, status: int) -> dict:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), reply[:300]
    assert b"connection: close" in head.lower()
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_a_connection_that_sends_nothing_is_closed(timed_server) -> None:
    _, _, port = timed_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _read_until_closed(sock) == b""


def test_partial_headers_get_408_and_the_connection_is_closed(timed_server) -> None:
    _, _, port = timed_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Le")
        error = _error_of(_read_until_closed(sock), 408)
    assert error["code"] == "request_timeout"


def test_a_partial_body_gets_408_and_the_connection_is_closed(timed_server) -> None:
    _, _, port = timed_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model": "m", '
        )
        error = _error_of(_read_until_closed(sock), 408)
    assert error["code"] == "request_timeout"


def test_partial_headers_of_a_second_request_on_a_keep_alive_connection_are_timed(
    timed_server,
) -> None:
    _, _, port = timed_server
    body = b'{"model": "m", "input": "hi"}'
    request = b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request + body + b"GET /health HTTP/1.1\r\nHo")
        reply = _read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in reply


def test_unparsable_http_gets_the_apis_error_shape(timed_server) -> None:
    _, _, port = timed_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"\x00\x01 NOT HTTP\r\n\r\n")
        error = _error_of(_read_until_closed(sock), 400)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("kind", ["mock", "gateway"])
def test_a_client_that_leaves_mid_body_is_one_info_line(kind: str) -> None:
    paths = [b"/v1/responses", b"/v1/chat/completions"] if kind == "mock" else [b"/v1/responses"]
    with _server(kind) as (process, url):
        for path in paths:
            with socket.create_connection(("127.0.0.1", _port(url))) as sock:
                sock.sendall(
                    b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
                )
        stats_url = url.removesuffix("/v1") + "/stats"
        for _ in range(500):  # bounded by count: each poll is a request to the server
            if httpx.get(stats_url, timeout=10).json()["client_disconnects"] >= len(paths):
                break
        assert httpx.get(stats_url, timeout=10).json()["client_disconnects"] == len(paths)
    output = "".join(process.output)
    assert "Traceback" not in output and "unhandled error" not in output, output[-3000:]
    assert output.count("client disconnected before its request was read") == len(paths), output


@pytest.mark.parametrize("kind", ["mock", "gateway"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(kind: str) -> None:
    """413 from the ``Content-Length`` alone (none of the body sent), and 400 for one that
    is not a number."""
    with _server(kind, "--max-body-bytes", "1000") as (_, url):
        for length, status in ((b"1001", 413), (b"12x", 400)):
            with socket.create_connection(("127.0.0.1", _port(url))) as sock:
                sock.sendall(
                    b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nContent-Length: " + length + b"\r\n\r\n"
                )
                head, body = _response(sock)
            assert head.startswith(b"HTTP/1.1 %d " % status), head
            error = orjson.loads(body)["error"]
            assert set(error) == {"message", "type", "param", "code"}
