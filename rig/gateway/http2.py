"""The gateway's HTTP/2 client for an upstream configured with ``http2``: httpx (on
httpcore and the ``h2`` library), behind the same small interface as the HTTP/1.1 client
of :mod:`rig.gateway.http1` (a request; an answer's status, headers, body a read at a time).

Why httpx here when the HTTP/1.1 path has a client of its own: HTTP/2 is a framing layer,
flow control and header compression (HPACK) that a well-kept library already does well, and
what it buys is fewer connections (many calls multiplexed on one TLS connection to a
provider across the internet), not CPU: per call it costs several times the own client's
(``bench/upstream_clients.py``, docs/performance.md). So it is the upstream's choice, off
by default.

* ``https://``: HTTP/2 where the upstream offers it (TLS ALPN ``h2``), HTTP/1.1 where it
  does not (still through httpx).
* ``http://``: HTTP/2 from the first byte (h2c with prior knowledge, RFC 9113 3.3): the
  upstream must speak it; one that does not fails the call as unreachable.
* Certificates are verified against the system's authorities (OpenSSL's defaults, as the
  HTTP/1.1 client: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name others); no proxy from the
  environment, no redirects.
* A request the upstream says it did not process (RFC 9113 8.7) is sent again, at most
  :data:`RETRIES` times: its stream reset with ``REFUSED_STREAM``, or its connection going
  away with none of the client's streams processed (GOAWAY with last stream id 0). httpcore
  itself sends again a stream above a GOAWAY's non-zero last stream id; these two it raises.
  Nothing else is retried: a request the upstream may have processed is not the gateway's
  to repeat.
* Failures are the HTTP/1.1 client's: :class:`TimeoutError` (connecting, or no byte for
  ``read_timeout_s``), :class:`ConnectionError` (refused, reset, the stream cut), never
  httpx's own exceptions, whose text may hold the URL.

Nothing here logs (httpx's and httpcore's loggers stay at the level the process set, and
neither writes a header's value).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Mapping

import h2.errors
import h2.events
import httpx

from rig.gateway.http1 import ConnectionPool

__all__ = ["RETRIES", "H2Answer", "H2Client"]

RETRIES = 2
"""How many times a request the upstream did not process is sent again."""


def _failure(exc: httpx.TransportError) -> OSError:
    """httpx's failure as the HTTP/1.1 client raises it (only the type's name kept)."""
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError()
    return ConnectionError(type(exc).__name__)


def _unprocessed(exc: httpx.TransportError) -> bool:
    """The upstream said it did not process the request: its stream refused, or the
    connection going away with no stream of the client's processed. httpx keeps httpcore's
    exception as the cause, and httpcore the ``h2`` event as its argument."""
    cause = exc.__cause__
    event = cause.args[0] if cause is not None and cause.args else None
    if isinstance(event, h2.events.StreamReset):
        return event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
    if isinstance(event, h2.events.ConnectionTerminated):
        return event.last_stream_id == 0
    return False


class H2Answer:
    """One upstream response: :attr:`status` and :attr:`headers` (names lower-cased, the
    last of a repeated name), then its body a read at a time (:meth:`read`)."""

    __slots__ = ("_chunks", "_response", "headers", "status")

    def __init__(self, response: httpx.Response):
        self._response = response
        self._chunks: AsyncIterator[bytes] = response.aiter_raw()
        self.status = response.status_code
        self.headers = {name.lower(): value for name, value in response.headers.multi_items()}

    async def read(self) -> bytes:
        """The body bytes that arrived since the last read (waiting for some); ``b""``
        once the body ended."""
        try:
            async for chunk in self._chunks:
                if chunk:
                    return chunk
        except httpx.TransportError as exc:
            raise _failure(exc) from None
        return b""

    async def read_all(self) -> bytes:
        """The rest of the body, to its end."""
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Done with this answer (its stream is reset if the body has not ended)."""
        await self._response.aclose()


class H2Client:
    """httpx's client for one upstream origin, HTTP/2 where it is spoken (see the module)."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int,
        on_retry: Callable[[], None] | None = None,
    ):
        self.on_retry = on_retry
        """Called for each request sent again (the upstream did not process it)."""
        tls = base_url.startswith("https://")
        self._client = httpx.AsyncClient(
            http1=tls,  # over http://, HTTP/2 only (prior knowledge)
            http2=True,
            verify=ssl.create_default_context() if tls else False,
            timeout=httpx.Timeout(
                connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=None
            ),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=ConnectionPool.idle_s,  # as the HTTP/1.1 pool's
            ),
            trust_env=False,
            follow_redirects=False,
        )
        # httpx's defaults the HTTP/1.1 client does not send either (each call names its own
        # accept and accept-encoding).
        for name in ("user-agent", "accept", "accept-encoding"):
            del self._client.headers[name]

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> H2Answer:
        """Send one request; its answer once its status and headers arrived."""
        request = self._client.build_request(method, url, headers=headers, content=body)
        retries = 0
        while True:
            try:
                return H2Answer(await self._client.send(request, stream=True))
            except httpx.TransportError as exc:
                if retries == RETRIES or not _unprocessed(exc):
                    raise _failure(exc) from None
            retries += 1
            if self.on_retry is not None:
                self.on_retry()

    async def aclose(self) -> None:
        """Close every connection."""
        await self._client.aclose()
