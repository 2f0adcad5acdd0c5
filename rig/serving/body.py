"""Reading a request body as the rig's servers (the mock and the gateway) do: bounded in
size and in time.

* A declared ``Content-Length`` above the limit is refused with 413 before a byte of the
  body is read; one that is not a number with 400. A body that grows past the limit as it
  arrives is refused with 413 as soon as it does.
* A body that stalls longer than ``timeout_s`` between two reads is refused with 408 (the
  server then closes the connection: the rest of the body may still arrive). uvicorn
  bounds neither: a client that stops sending would hold the request forever.
* A client that leaves before its body is whole raises :class:`ClientGone`: nothing to
  answer, and nothing wrong with the server.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from rig.errors import RigError
from rig.protocol.errors import InvalidRequestError, PayloadTooLargeError, RequestTimeoutError

__all__ = ["DEFAULT_BODY_TIMEOUT_S", "ClientGone", "gone_answer", "read_body"]

DEFAULT_BODY_TIMEOUT_S = 30.0


class ClientGone(RigError):
    """The client closed its connection before its request was read: nothing to answer,
    and nothing wrong with the server (one info line, never a traceback)."""


async def read_body(request: Request, *, limit: int, timeout_s: float) -> bytes:
    """``request``'s body: :class:`PayloadTooLargeError` past ``limit`` bytes (declared or
    received), :class:`RequestTimeoutError` when it stalls ``timeout_s`` between reads,
    :class:`InvalidRequestError` for a ``Content-Length`` that is not a number,
    :class:`ClientGone` when the client left."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequestError("Invalid Content-Length header.", code="invalid_header")
        if int(declared) > limit:
            raise PayloadTooLargeError(
                f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes."
            )
    chunks = []
    size = 0
    stream = request.stream()
    try:
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RequestTimeoutError(
                    f"The request body stalled for more than {timeout_s:g} seconds."
                ) from None
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone() from None
    return b"".join(chunks)


def gone_answer(request: Request, logger: logging.Logger) -> Response:
    """The answer to a request whose client left (:class:`ClientGone`): one info line on
    ``logger``; the answer itself is never sent (uvicorn drops writes to a closed
    connection)."""
    logger.info("client disconnected before its request was read (%s %s)",
                request.method, request.url.path)  # fmt: skip
    return Response(status_code=400)
