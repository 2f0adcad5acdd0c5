"""Stalled and abandoned requests: the mock closes what stalls, by its own time limits,
and logs a client that left as one info line, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.servers import ManagedProcess, start_mock

LIMIT_S = "0.5"  # the mock's header and body timeouts in these tests


@pytest.fixture(scope="module")
def timed_mock() -> Iterator[tuple[ManagedProcess, str, int]]:
    process, url = start_mock("--header-timeout", LIMIT_S, "--body-timeout", LIMIT_S)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    yield process, url, port
    process.stop()


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; the socket's own timeout (far beyond
    the server's limit) fails the test if the server never does."""
    sock.settimeout(20)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _error_of(reply: bytes, status: int) -> dict:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), reply[:300]
    assert b"connection: close" in head.lower()
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_a_connection_that_sends_nothing_is_closed(timed_mock) -> None:
    _, _, port = timed_mock
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _read_until_closed(sock) == b""


def test_partial_headers_get_408_and_the_connection_is_closed(timed_mock) -> None:
    _, _, port = timed_mock
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Le")
        error = _error_of(_read_until_closed(sock), 408)
    assert error["code"] == "request_timeout"


def test_a_partial_body_gets_408_and_the_connection_is_closed(timed_mock) -> None:
    _, _, port = timed_mock
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model": "m", '
        )
        error = _error_of(_read_until_closed(sock), 408)
    assert error["code"] == "request_timeout"


def test_partial_headers_of_a_second_request_on_a_keep_alive_connection_are_timed(
    timed_mock,
) -> None:
    _, _, port = timed_mock
    body = b'{"model": "m", "input": "hi"}'
    request = b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request + body + b"GET /health HTTP/1.1\r\nHo")
        reply = _read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in reply


def test_unparsable_http_gets_the_apis_error_shape(timed_mock) -> None:
    _, _, port = timed_mock
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"\x00\x01 NOT HTTP\r\n\r\n")
        error = _error_of(_read_until_closed(sock), 400)
    assert error["type"] == "invalid_request_error"


def test_a_client_that_leaves_mid_body_is_one_info_line() -> None:
    process, url = start_mock()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        for path in (b"/v1/responses", b"/v1/chat/completions"):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
                )
        stats_url = url.removesuffix("/v1") + "/stats"
        for _ in range(500):  # bounded by count: each poll is a request to the mock
            if httpx.get(stats_url, timeout=10).json()["client_disconnects"] >= 2:
                break
        assert httpx.get(stats_url, timeout=10).json()["client_disconnects"] == 2
    finally:
        process.stop()
    output = "".join(process.output)
    assert "Traceback" not in output and "unhandled error" not in output, output[-3000:]
    assert output.count("client disconnected before its request was read") == 2, output
