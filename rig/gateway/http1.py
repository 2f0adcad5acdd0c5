"""The gateway's HTTP/1.1 client for its upstream calls: kept-alive pooled connections, a
request head built once, the answer parsed by llhttp (``httptools``, the parser uvicorn
uses), its body read as it arrives.

Why not aiohttp (which the gateway used before): per streamed call, aiohttp's request
path (a ``ClientRequest`` with its header multidicts, the connector's pool lookup, a new
response parser, the timers and the release) cost about 15-18% of the gateway's CPU at the
bench's load, more than anything else the gateway does per turn. This client does only what
the gateway's calls need: one method, one host, a body it already has as bytes, an answer
streamed back (``chunked``, ``content-length`` or until the connection closes).

* :class:`ConnectionPool` holds the idle connections to one origin (LIFO, so the warm ones
  are reused; one idle longer than :attr:`ConnectionPool.idle_s` is closed, as the server
  may be about to close it). It bounds nothing: its caller bounds the calls in flight, and
  a connection is opened only when none is idle, so there are never more connections than
  calls in flight at once.
* :class:`Answer` is one response: its status and headers once they arrived, then its body
  a read at a time (:meth:`Answer.read`: whatever the socket gave since the last read, as
  aiohttp's ``iter_any``). The connection goes back to the pool the moment the body ends,
  whether or not it was read; an answer closed before its end closes its connection.
* Timeouts: connecting, and reading (no byte for ``read_timeout_s`` while an answer is
  awaited) raise :class:`TimeoutError`. Other failures raise :class:`OSError` (refused,
  reset) or an :class:`HTTPClientError`. A kept-alive connection that closes with no byte
  of its answer (the upstream's idle close crossing the request) is not a failure: the
  request goes once more, on a new connection.
* ``https://`` upstreams are verified against the system's certificate authorities
  (OpenSSL's defaults: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name others).

Nothing here logs; a request's head (which may carry a key) is never kept beyond its write.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from rig.errors import RigError

__all__ = [
    "Answer",
    "ConnectionPool",
    "HTTPClientError",
    "MalformedAnswerError",
    "Origin",
    "PrematureCloseError",
    "header_line",
    "request_head",
]

_PAUSE_BYTES = 1 << 18
"""Body bytes held unread before the connection stops reading (flow control)."""


class HTTPClientError(RigError):
    """An upstream answer could not be read to its end."""


class PrematureCloseError(HTTPClientError):
    """The connection closed before the answer ended."""


class MalformedAnswerError(HTTPClientError):
    """The answer is not HTTP/1.x that can be parsed."""


class Origin:
    """Where a base URL's requests go: scheme, host, port, the path prefix, and the
    ``Host`` header's line."""

    __slots__ = ("authority", "host", "host_line", "port", "prefix", "tls")

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in an upstream URL are not sent: use its key instead")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = self.port == (443 if self.tls else 80)
        self.authority = name if default else f"{name}:{self.port}"
        self.host_line = header_line("host", self.authority)

    def target(self, path: str) -> str:
        """The request target of ``path`` under the base URL's own path."""
        return self.prefix + path

    def url(self, target: str) -> str:
        """The absolute URL of a request ``target``."""
        return f"{'https' if self.tls else 'http'}://{self.authority}{target}"


def header_line(name: str, value: str) -> bytes:
    """``name: value`` and its CRLF; :class:`ValueError` for a name or value that would
    break the head (a CR, LF or NUL; a character beyond Latin-1)."""
    try:
        line = f"{name}: {value}\r\n".encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name} has a character a header cannot carry") from None
    if line.count(b"\r") != 1 or line.count(b"\n") != 1 or b"\0" in line:
        raise ValueError(f"header {name} has a character a header cannot carry")
    return line


def request_head(method: str, target: str, origin: Origin, headers: Mapping[str, str]) -> bytes:
    """A request's head up to its last header (no ``content-length``, no blank line):
    built once per kind of call; :meth:`ConnectionPool.request` adds the rest.
    Raises :class:`ValueError` for a header a head cannot carry."""
    if any(c in target for c in " \r\n\0"):
        raise ValueError("the upstream path has a character a request line cannot carry")
    lines = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), origin.host_line]
    lines += [header_line(name, value) for name, value in headers.items()]
    return b"".join(lines)


class Answer:
    """One upstream response: :attr:`status` and :attr:`headers` (names lower-cased, the
    last of a repeated name), then its body a read at a time (:meth:`read`)."""

    __slots__ = (
        "_complete",
        "_connection",
        "_error",
        "_loop",
        "_pieces",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, connection: _Connection):
        self._connection: _Connection | None = connection
        self._loop = connection.loop
        self._pieces: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._complete = False
        self.status = 0
        self.headers: dict[str, str] = {}

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._complete:
            self._error = error
        self._wake()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def _headers(self) -> None:
        while not self.status and self._error is None:
            await self._wait()
        if self._error is not None and not self.status:
            raise self._error

    async def read(self) -> bytes:
        """The body bytes that arrived since the last read (waiting for some); ``b""``
        once the body ended. Raises what broke the connection before that."""
        while True:
            pieces = self._pieces
            if pieces:
                data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                pieces.clear()
                connection = self._connection
                if connection is not None:
                    connection.drained()
                return data
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read_all(self) -> bytes:
        """The rest of the body, to its end."""
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Done with this answer: its connection is closed if the body has not ended (it
        went back to the pool already if it has)."""
        connection, self._connection = self._connection, None
        if connection is not None and not self._complete:
            connection.abort()

    async def aclose(self) -> None:
        """:meth:`close`, as the HTTP/2 client's answer is closed."""
        self.close()


class _Connection(asyncio.Protocol):
    """One kept-alive connection: parses what arrives into its current :class:`Answer`."""

    def __init__(self, pool: ConnectionPool):
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.closed = False
        self.paused = False
        self.buffered = 0
        self.idle_since = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.framed = False
        """The current answer says where its body ends (a length or chunks)."""
        self.received = False
        """A byte arrived for the current answer."""

    # asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None:  # bytes nobody asked for: the connection is not reusable
            self.abort()
            return
        self.last_read = self.loop.time()
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            answer._fail(MalformedAnswerError(f"the upstream's answer is not HTTP: {exc}"))
            self.abort()
            return
        if answer._pieces or answer._complete or answer._error is not None:
            answer._wake()
        elif answer.status and answer._waiter is not None:
            answer._wake()  # the headers, awaited
        if self.buffered > _PAUSE_BYTES and self.answer is not None and not self.paused:
            assert self.transport is not None
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        answer = self.answer
        if answer is not None:
            self.answer = None
            if answer.status and not self.framed and exc is None:
                answer._complete = True  # a body that ends with the connection
                answer._connection = None
                answer._wake()
            else:
                answer._fail(PrematureCloseError("the upstream closed the connection"))
        self.pool._forget(self)

    # the parser's side (httptools)
    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self.answer
        if answer is not None:
            key = name.decode("latin-1").lower()
            answer.headers[key] = value.decode("latin-1")
            if key == "content-length" or key == "transfer-encoding":
                self.framed = True

    def on_headers_complete(self) -> None:
        answer = self.answer
        if answer is not None:
            status = self.parser.get_status_code()
            if status >= 200:
                answer.status = status
            else:  # an interim answer (1xx): its headers are not the final one's
                answer.headers.clear()
                self.framed = False

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        if answer is not None:
            answer._pieces.append(body)
            self.buffered += len(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        if answer is None or not answer.status:
            return  # the end of an interim answer
        self.answer = None
        answer._complete = True
        answer._connection = None
        self._stop_timer()
        if self.parser.should_keep_alive() and not self.closed:
            self.pool._release(self)
        else:
            self.abort()

    # the pool's side
    def send(self, head: bytes, body: bytes) -> Answer:
        """Write one request; its answer (parsed as it arrives)."""
        assert self.transport is not None
        answer = self.answer = Answer(self)
        self.framed = False
        self.received = False
        self.drained()
        self.last_read = self.loop.time()
        self.timer = self.loop.call_at(self.last_read + self.pool.read_timeout_s, self._check)
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        return answer

    def drained(self) -> None:
        """Its answer's reader took the buffered body."""
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.last_read = self.loop.time()
            self.transport.resume_reading()

    def abort(self) -> None:
        """Close now (an unfinished answer fails)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _check(self) -> None:
        """The read timer: fail the answer if nothing arrived for the read timeout."""
        self.timer = None
        if self.answer is None or self.closed:
            return
        now = self.loop.time()
        if self.paused:  # the reader is behind, not the upstream
            self.last_read = now
        due = self.last_read + self.pool.read_timeout_s
        if now < due:  # something arrived since the timer was set
            self.timer = self.loop.call_at(due, self._check)
            return
        self.answer._fail(TimeoutError())
        self.abort()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class ConnectionPool:
    """Kept-alive connections to one :class:`Origin`, reused last-in first-out."""

    idle_s = 15.0
    """An idle connection older than this is closed rather than reused (aiohttp's
    default keep-alive)."""

    def __init__(
        self,
        origin: Origin,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        loop: asyncio.AbstractEventLoop | None = None,
        on_retry: Callable[[], None] | None = None,
    ):
        self.origin = origin
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.on_retry = on_retry
        """Called for each request sent again (the upstream closed it unanswered)."""
        self.loop = loop or asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def request(self, head: bytes, body: bytes = b"") -> Answer:
        """Send ``head`` (from :func:`request_head`) with ``body`` on an idle connection
        or a new one; the answer once its status and headers arrived."""
        if body:
            head += b"content-length: %d\r\n\r\n" % len(body)
        else:
            head += b"\r\n"
        connection = self._idle_connection()
        if connection is not None:
            try:
                return await self._exchange(connection, head, body)
            except PrematureCloseError:
                if connection.received:
                    raise
                # The upstream closed the kept-alive connection as the request went out
                # (its idle timeout crossed it) and sent nothing back: it did not answer
                # this request, so it goes again once, on a new connection (as Go's
                # net/http does for a server that closed an idle connection).
                if self.on_retry is not None:
                    self.on_retry()
        return await self._exchange(await self._connect(), head, body)

    @staticmethod
    async def _exchange(connection: _Connection, head: bytes, body: bytes) -> Answer:
        """Send on ``connection``; the answer once its headers arrived (closed if they
        did not)."""
        answer = connection.send(head, body)
        try:
            await answer._headers()
        except BaseException:
            answer.close()
            raise
        return answer

    def _idle_connection(self) -> _Connection | None:
        idle = self.idle
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_s:
                return connection
            connection.abort()
        return None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise PrematureCloseError("the upstream's connection pool is closed")
        origin = self.origin
        tls = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        _, connection = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: _Connection(self),
                origin.host,
                origin.port,
                ssl=tls,
                server_hostname=origin.host if tls is not None else None,
            ),
            self.connect_timeout_s,
        )
        self.open.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
            return
        connection.idle_since = self.loop.time()
        self.idle.append(connection)

    def _forget(self, connection: _Connection) -> None:
        self.open.discard(connection)

    def close(self) -> None:
        """Close every connection (an answer being read fails)."""
        self._closed = True
        self.idle.clear()
        for connection in list(self.open):
            connection.abort()
