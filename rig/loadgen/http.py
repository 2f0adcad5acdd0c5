"""An HTTP/1.1 keep-alive connection that hands over body bytes the moment they arrive.

Parsing is geventhttpclient's (the C parser behind Locust's FastHttpUser); its own
response reader waits for whole blocks, which would distort time to first token, so the
connection reads from its :class:`WireSocket` itself and feeds the parser. The body bytes
of each read go to the caller's sink in one piece as soon as the read is parsed (however
many chunks of the chunked encoding it held); an error answer's body is kept instead and
returned with the status. The request head is one formatted string. Reads wait without a
timeout of their own: the caller bounds the exchange (a transport sets one deadline per
turn), and an :class:`~rig.loadgen.idle.IdleWatch`, when given, hears of every read and
write (the stream idle timeout).

Whatever goes wrong leaves as one of the rig's exceptions: :class:`HTTPProtocolError` when
the server's bytes are not HTTP (the parser's ``HTTPParseError`` never escapes; the message
says what was wrong and shows the first bytes), :class:`HTTPError` when the connection
failed; an exception the body sink raised (an invalid stream) passes through unchanged.
In every case the connection is closed first, so a broken one is never reused.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import HTTPException

from geventhttpclient.response import HTTPResponse

from rig.errors import RigError
from rig.loadgen.idle import IdleWatch, StreamIdleTimeout
from rig.loadgen.wire import TcpInfo, TLSWireSocket, WireCounter, WireSocket, open_wire

__all__ = ["ERROR_BODY_LIMIT", "HTTPConnection", "HTTPError", "HTTPProtocolError", "HTTPResult"]

BodySink = Callable[[bytes], None]


class HTTPError(RigError, ConnectionError):
    """The connection failed or the server broke the protocol."""


class HTTPProtocolError(HTTPError):
    """The server answered with bytes that are not a valid HTTP/1.1 response."""


SHOWN_BYTES = 80
"""How many of the server's first bytes an :class:`HTTPProtocolError` quotes."""


def _parse_failure(exc: Exception, received: bytes, eof: bool) -> HTTPProtocolError:
    """The parser's complaint as a message naming what the server sent."""
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    if eof:
        what = "closed the connection in the middle of its response"
    elif not received.startswith(b"HTTP/"):
        what = "answered with something that is not HTTP"
    else:
        what = "sent an invalid HTTP response"
    return HTTPProtocolError(f"the target {what} ({detail}); it began {received[:SHOWN_BYTES]!r}")


ERROR_BODY_LIMIT = 64 * 1024
"""How much of an error answer's body is kept for its message."""


@dataclass(frozen=True, slots=True)
class HTTPResult:
    """Status line and headers of a finished response, and what its body came to."""

    status: int
    headers: dict[str, str]
    body_bytes: int = 0
    """Body bytes received (after the chunked framing), whoever got them."""
    error_body: bytes = b""
    """The start of the body (up to :data:`ERROR_BODY_LIMIT`) when the status is not
    2xx; such a body does not go to the sink."""


class _StreamedResponse(HTTPResponse):
    """geventhttpclient's parser collecting the body pieces of one read."""

    def __init__(self) -> None:
        super().__init__("POST")
        self.pieces: list[bytearray] = []
        # The C parser looks ``_on_body`` up on the instance for every piece; a list's own
        # append takes each new bytearray without a Python frame or a copy.
        # Set in the instance's own dict, where attribute lookup finds it before the method.
        self.__dict__["_on_body"] = self.pieces.append


class _Body:
    """Where one response's body goes: a 2xx body to the sink, read by read; the start
    of any other to :attr:`error`."""

    __slots__ = ("error", "received", "sink")

    def __init__(self, sink: BodySink):
        self.sink = sink
        self.received = 0
        self.error = bytearray()

    def take(self, status: int, pieces: list[bytearray]) -> None:
        """Hand over the pieces the parser produced from one read (and clear them)."""
        data = b"".join(pieces)
        pieces.clear()
        self.received += len(data)
        if 200 <= status < 300:
            self.sink(data)
        elif len(self.error) < ERROR_BODY_LIMIT:
            self.error += data[: ERROR_BODY_LIMIT - len(self.error)]


Dialer = Callable[[], tuple[str, int, WireSocket | TLSWireSocket]]
"""Opens a connection for an :class:`HTTPConnection` and says where it went (host, port):
a target of several base URLs picks one per connection (:mod:`rig.loadgen.dial`)."""


class HTTPConnection:
    """One keep-alive connection to one host, reopened when the server closes it.

    ``timeout`` bounds connecting; a request's reads are bounded by the caller. With
    ``dial``, each new connection is opened by it (and may go to another host, whose
    ``Host`` header the requests on it then carry) instead of to ``host:port``. ``watch``
    hears of each read and write (the stream idle timeout).
    """

    def __init__(
        self,
        host: str,
        port: int,
        counter: WireCounter,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 120.0,
        user_agent: str = "agentic-load-rig",
        dial: Dialer | None = None,
        watch: IdleWatch | None = None,
    ):
        self.host = host
        self.port = port
        self.counter = counter
        self.tls = tls
        self.timeout = timeout
        self._dial = dial
        self._host_header = self._host_for(host, port)
        self._user_agent = user_agent
        self._wire: WireSocket | TLSWireSocket | None = None
        self.connects = 0
        self.watch = watch

    def _host_for(self, host: str, port: int) -> str:
        default_port = 443 if self.tls else 80
        return host if port == default_port else f"{host}:{port}"

    def _connect(self) -> WireSocket | TLSWireSocket:
        if self._dial is None:
            wire = open_wire(self.host, self.port, self.counter, timeout=self.timeout, tls=self.tls)
        else:
            host, port, wire = self._dial()
            if (host, port) != (self.host, self.port):
                self.host, self.port = host, port
                self._host_header = self._host_for(host, port)
        self.connects += 1
        return wire

    def _head(self, method: str, path: str, length: int, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self._host_header}",
            f"User-Agent: {self._user_agent}",
            f"Content-Length: {length}",
        ]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def request(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        sink: BodySink,
        on_written: Callable[[float], None] | None = None,
    ) -> HTTPResult:
        """Send a request and stream a 2xx response's body into ``sink`` (any other
        status's body comes back in the result).

        A kept-alive connection the server closed while idle is noticed before reuse (as
        urllib3 does); if the close races the request, it is reopened once, as browsers
        and HTTP libraries do, and the failed attempt's bytes stay counted.
        ``on_written`` is called with the seconds the request took to write, once it is
        written (each time it is).
        """
        if self._wire is not None and self._wire.dropped():
            self.close()  # the server closed it while idle: don't write into a dead socket
        for attempt in (1, 2):
            reused = self._wire is not None
            if self._wire is None:
                self._wire = self._connect()  # OSError, TimeoutError: the caller's to name
            wire = self._wire
            # After connecting: the Host header is that of where the connection went.
            payload = self._head(method, path, len(body), headers) + body
            response = _StreamedResponse()
            pieces = response.pieces
            answer = _Body(sink)
            start = b""  # the answer's first bytes, for an error message
            watch = self.watch
            try:
                began = time.perf_counter()
                if watch is not None:
                    watch.writing()
                wire.sendall(payload)
                if watch is not None:
                    watch.heard()
                if on_written is not None:
                    on_written(time.perf_counter() - began)
                while not response.message_complete:
                    data = wire.recv()
                    if watch is not None:
                        watch.heard()
                    if not data:
                        self._feed_eof(response, start)
                        if pieces:
                            answer.take(response.status_code, pieces)
                        if response.message_complete:
                            break
                        raise HTTPError("connection closed before the response was complete")
                    if len(start) < SHOWN_BYTES:
                        start += data[: SHOWN_BYTES - len(start)]
                    try:
                        response.feed(data)
                    except HTTPException as exc:
                        raise _parse_failure(exc, start, eof=False) from None
                    if pieces:
                        answer.take(response.status_code, pieces)
            except HTTPProtocolError as exc:
                self.close()
                exc.args = (f"{method} {path}: {exc}",)
                raise
            except HTTPError as exc:
                self.close()
                if reused and not start and attempt == 1:
                    continue  # stale keep-alive connection: retry once on a fresh one
                exc.args = (f"{method} {path}: {exc}",)
                raise
            except StreamIdleTimeout:
                self.close()  # the target went silent: the caller's to repeat or not
                raise
            except OSError as exc:
                self.close()
                if reused and not start and attempt == 1:
                    continue  # stale keep-alive connection: retry once on a fresh one
                raise HTTPError(f"{method} {path}: {exc}") from exc
            except BaseException:
                self.close()  # the sink's own error (an invalid stream), or a deadline
                raise
            if response.should_close():
                self.close()
            return HTTPResult(
                response.status_code,
                {k.lower(): v for k, v in response.items()},
                answer.received,
                bytes(answer.error),
            )
        raise AssertionError("unreachable")

    @staticmethod
    def _feed_eof(response: _StreamedResponse, start: bytes) -> None:
        """Let the parser finish a close-delimited body; a close anywhere else is the
        server's error."""
        try:
            response.feed(b"")
        except HTTPException as exc:
            raise _parse_failure(exc, start, eof=True) from None

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's byte counters of the open connection (``None`` when closed)."""
        return self._wire.tcp_info() if self._wire is not None else None

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None
