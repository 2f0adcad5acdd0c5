"""The gateway's HTTP/1.1 client (rig.gateway.http1): answers read the same however the
socket cuts them, kept-alive connections reused, and every failure an exception the
upstream layer maps to the API's error shapes."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.gateway.http1 import (
    Answer,
    ConnectionPool,
    MalformedAnswerError,
    Origin,
    PrematureCloseError,
    _Connection,
    header_line,
    request_head,
)

ORIGIN = Origin("http://127.0.0.1:9/v1")
HEAD = request_head("POST", "/v1/responses", ORIGIN, {"content-type": "application/json"})


class _Transport:
    """What a connection writes and whether it was closed (no socket)."""

    def __init__(self) -> None:
        self.written = b""
        self.aborted = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, parts: Any) -> None:
        self.written += b"".join(parts)

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def _answer(status: int, headers: list[tuple[str, str]], body: bytes, framing: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X\r\n"] + [f"{k}: {v}\r\n" for k, v in headers]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}\r\n")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked\r\n")
        pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:  # until the connection closes
        lines.append("Connection: close\r\n")
        payload = body
    return "".join(lines).encode("latin-1") + b"\r\n" + payload


def _connected() -> tuple[ConnectionPool, _Connection, _Transport]:
    """A pool and one of its connections, made on a recording transport."""
    pool = ConnectionPool(ORIGIN, connect_timeout_s=1, read_timeout_s=30)
    connection = _Connection(pool)
    transport = _Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return pool, connection, transport


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


async def _read_cut(
    connection: _Connection, answer: Answer, wire: bytes, cuts: list[int], eof: bool
) -> tuple[bytes, int]:
    """Feed ``wire`` cut at ``cuts``, reading as it goes: the body and the reads."""
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    body, reads = b"", 0
    for start, stop in itertools.pairwise(bounds):
        connection.data_received(wire[start:stop])
        while answer._pieces:
            body += await answer.read()
            reads += 1
    if eof:
        connection.connection_lost(None)
    body += await answer.read_all()
    return body, reads


_headers = st.lists(
    st.tuples(
        st.sampled_from(["Retry-After", "x-ratelimit-remaining-requests", "X-Request-Id"]),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from([200, 429, 500]),
    headers=_headers,
    body=st.binary(max_size=300),
    framing=st.sampled_from(["length", "chunked", "close"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000), max_size=12),
    interim=st.booleans(),
)
def test_an_answer_reads_the_same_however_it_is_cut(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    framing: str,
    cuts: list[int],
    interim: bool,
) -> None:
    wire = _answer(status, headers, body, framing)
    if interim:
        wire = b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n" + wire

    async def test() -> None:
        pool, connection, transport = _connected()
        answer = connection.send(HEAD + b"content-length: 2\r\n\r\n", b"{}")
        assert transport.written.endswith(b"\r\n\r\n{}")
        waiting = asyncio.ensure_future(answer._headers())
        got, _ = await _read_cut(connection, answer, wire, cuts, eof=framing == "close")
        await waiting
        assert answer.status == status
        assert got == body
        expected = {k.lower(): v for k, v in headers}
        assert {k: v for k, v in answer.headers.items() if k in expected} == expected
        assert "x-interim" not in answer.headers
        # A framed answer leaves its connection in the pool; one ended by a close does not.
        assert pool.idle == ([connection] if framing != "close" else [])
        assert transport.aborted is False

    _run(test)


def test_a_connection_closed_before_the_end_fails_the_read() -> None:
    async def test() -> None:
        pool, connection, _ = _connected()
        answer = connection.send(HEAD + b"\r\n", b"")
        connection.data_received(_answer(200, [], b"x" * 50, "length")[:-10])
        await answer._headers()
        assert await answer.read() == b"x" * 40
        connection.connection_lost(None)
        with pytest.raises(PrematureCloseError):
            await answer.read()
        assert pool.idle == []

    _run(test)


def test_bytes_that_are_not_http_fail_the_answer_and_close_the_connection() -> None:
    async def test() -> None:
        _, connection, transport = _connected()
        answer = connection.send(HEAD + b"\r\n", b"")
        connection.data_received(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        with pytest.raises(MalformedAnswerError):
            await answer._headers()
        assert transport.aborted

    _run(test)


def test_a_reader_behind_pauses_the_socket_and_resumes_it_when_it_reads() -> None:
    async def test() -> None:
        _, connection, transport = _connected()
        answer = connection.send(HEAD + b"\r\n", b"")
        body = b"y" * (1 << 19)
        wire = _answer(200, [], body, "length")
        connection.data_received(wire[: len(wire) - 100])
        assert transport.paused
        got = await answer.read()
        assert not transport.paused
        connection.data_received(wire[len(wire) - 100 :])
        assert got + await answer.read_all() == body

    _run(test)


def test_a_header_a_head_cannot_carry_is_refused() -> None:
    assert header_line("authorization", "Bearer sk-1") == b"authorization: Bearer sk-1\r\n"
    for value in ("sk\r\nx-injected: 1", "sk\n", "sk\0", "s\u20ack"):
        with pytest.raises(ValueError, match="cannot carry"):
            header_line("authorization", value)
    with pytest.raises(ValueError):
        Origin("http://user:secret@example.com/v1")


def test_the_host_line_and_target_follow_the_base_url() -> None:
    assert Origin("https://api.example.com/v1/").host_line == b"host: api.example.com\r\n"
    origin = Origin("http://[::1]:8080/openai/v1")
    assert origin.host_line == b"host: [::1]:8080\r\n"
    assert origin.target("/responses") == "/openai/v1/responses"
    assert origin.url("/openai/v1/responses") == "http://[::1]:8080/openai/v1/responses"
    assert Origin("https://api.example.com:443/v1").url("/v1/models") == (
        "https://api.example.com/v1/models"
    )
    head = request_head("GET", origin.target("/models"), origin, {"accept": "application/json"})
    assert head == (
        b"GET /openai/v1/models HTTP/1.1\r\nhost: [::1]:8080\r\naccept: application/json\r\n"
    )


# A real server on a loopback port: connections, reuse, timeouts.


_CLOSE = b""
"""An answer that is the connection closed, no byte sent."""


class _Server:
    """A loopback server that answers each request with ``answers``' next bytes (or
    nothing, for ``None``: the read timeout's case; ``_CLOSE`` closes the connection);
    counts its connections. Over TLS with ``tls`` (a server context)."""

    def __init__(self, answers: list[bytes | None], tls: ssl.SSLContext | None = None):
        self.answers = answers
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0)
                if answer is None:
                    await reader.read()  # never answer: the client's read timeout
                    return
                if answer == _CLOSE:
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_a_kept_alive_connection_is_reused_and_the_request_is_sent_whole() -> None:
    ok = _answer(200, [], b"data: 1\n\n", "chunked")

    async def test() -> None:
        server = _Server([ok, ok, ok])
        async with server as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=5)
            head = request_head("POST", "/v1/responses", pool.origin, {"x-a": "1"})
            for _ in range(3):
                answer = await pool.request(head, b'{"input":[]}')
                assert await answer.read_all() == b"data: 1\n\n"
                answer.close()
            pool.close()
        assert server.connections == 1
        assert server.requests[0] == (
            b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nx-a: 1\r\n"
            b'content-length: 12\r\n\r\n{"input":[]}' % pool.origin.port
        )

    _run(test)


def test_an_answer_left_before_its_end_closes_its_connection() -> None:
    long = _answer(200, [], b"z" * 4_000_000, "length")  # beyond what a read holds
    ok = _answer(200, [], b"ok", "length")

    async def test() -> None:
        server = _Server([long, ok])
        async with server as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=5)
            head = request_head("GET", "/v1/models", pool.origin, {})
            answer = await pool.request(head)
            answer.close()  # before the body was read
            second = await pool.request(head)
            assert await second.read_all() == b"ok"
            pool.close()
        assert server.connections == 2

    _run(test)


def test_an_upstream_that_stops_answering_is_a_timeout_and_a_closed_port_an_oserror() -> None:
    async def test() -> None:
        async with _Server([None]) as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=0.2)
            with pytest.raises(TimeoutError):
                await pool.request(request_head("GET", "/v1/models", pool.origin, {}))
            assert all(connection.closed for connection in pool.open)
            pool.close()
        pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=1)
        with pytest.raises(OSError):
            await pool.request(request_head("GET", "/v1/models", pool.origin, {}))

    _run(test)


def test_a_kept_alive_connection_closed_with_no_answer_sends_the_request_again_once() -> None:
    ok = _answer(200, [], b"ok", "length")

    async def test() -> None:
        # The second request meets the upstream's close of the kept-alive connection (no
        # byte answered): it goes again on a new connection and is answered there.
        server, retries = _Server([ok, _CLOSE, ok]), []
        async with server as url:
            pool = ConnectionPool(
                Origin(url),
                connect_timeout_s=1,
                read_timeout_s=5,
                on_retry=lambda: retries.append(1),
            )
            head = request_head("POST", "/v1/responses", pool.origin, {})
            for _ in range(2):
                answer = await pool.request(head, b"{}")
                assert await answer.read_all() == b"ok"
            pool.close()
        assert server.connections == 2
        assert len(server.requests) == 3
        assert retries == [1]  # counted (the gateway's upstream_retries)

        # A new connection closed with no answer is the upstream's failure, not retried;
        # nor is a kept-alive one that closed after its answer began.
        server = _Server([_CLOSE])
        async with server as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=5)
            with pytest.raises(PrematureCloseError):
                await pool.request(head, b"{}")
            pool.close()
        assert server.connections == 1
        cut = _answer(200, [], b"hello", "length")[:-3]  # the body's first two bytes
        server = _Server([ok, cut])
        async with server as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=1, read_timeout_s=5)
            assert await (await pool.request(head, b"{}")).read_all() == b"ok"
            with pytest.raises(PrematureCloseError):
                answer = await pool.request(head, b"{}")
                await answer.read_all()
            pool.close()
        assert server.connections == 1

    _run(test)


def test_an_https_upstream_is_verified_against_the_certificate_authorities(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    ok = _answer(200, [], b"data: 1\n\n", "chunked")

    async def test(trusted: bool) -> None:
        server = _Server([ok, ok], tls=server_tls)
        async with server as url:
            pool = ConnectionPool(Origin(url), connect_timeout_s=2, read_timeout_s=5)
            head = request_head("POST", "/v1/responses", pool.origin, {})
            if not trusted:
                with pytest.raises(ssl.SSLCertVerificationError):
                    await pool.request(head, b"{}")
                return
            for _ in range(2):
                answer = await pool.request(head, b"{}")
                assert await answer.read_all() == b"data: 1\n\n"
            pool.close()
        assert server.connections == 1
        assert server.requests[0].startswith(b"POST /v1/responses HTTP/1.1\r\n")

    # Not trusted by the system's authorities: refused before a byte of the request.
    _run(lambda: test(trusted=False))
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    _run(lambda: test(trusted=True))
