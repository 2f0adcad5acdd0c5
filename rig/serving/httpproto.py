"""uvicorn's HTTP protocol (httptools) as the rig's servers (the mock and the gateway) run
it: a time limit on request headers, and the API's error shape for requests too malformed
to reach the app.

uvicorn bounds only the idle time between requests on a keep-alive connection
(``timeout_keep_alive``): a connection that never sends a request, or stalls inside its
headers, is held forever. This protocol arms a timer when a connection opens and when a
request's first byte arrives, and disarms it when the request's headers are complete: at
``header_timeout_s`` the connection is closed, with a 408 in the API's error shape if part
of a request had arrived. Stalled request bodies are the app's to bound (it reads them:
:func:`rig.serving.body.read_body`, ``--body-timeout``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rig.protocol.errors import APIError, InvalidRequestError, RequestTimeoutError, error_body

__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "TimedHttpProtocol", "TimedServerConfig"]

DEFAULT_HEADER_TIMEOUT_S = 10.0


class TimedServerConfig(uvicorn.Config):
    """uvicorn's configuration plus the header time limit :class:`TimedHttpProtocol` reads
    (an attribute of the configuration, so worker processes receive it too)."""

    def __init__(self, *args: Any, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, **kw: Any):
        super().__init__(*args, **kw)
        self.header_timeout_s = header_timeout_s


def _error_bytes(error: APIError) -> bytes:
    """A whole HTTP/1.1 response carrying ``error``, closing the connection."""
    body = orjson.dumps(error_body(error))
    reason = {400: b"Bad Request", 408: b"Request Timeout"}.get(error.status, b"Error")
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class TimedHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with a header time limit and JSON errors for unparsable requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s: float = getattr(
            self.config, "header_timeout_s", DEFAULT_HEADER_TIMEOUT_S
        )
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._request_begun:
            error = RequestTimeoutError(
                f"The request's headers did not arrive within {self.header_timeout_s:g} "
                "seconds; the connection is closed."
            )
            self.transport.write(_error_bytes(error))
        self.logger.info("closed a connection whose request headers did not arrive in time")
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._request_begun:  # idle between requests: uvicorn's keep-alive timeout
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        error = InvalidRequestError(f"{msg} The request could not be parsed as HTTP/1.1.")
        self.transport.write(_error_bytes(error))
        self.transport.close()
