"""What every server shell of the rig (the mock, the gateway) answers alike, outside the
Responses API's own rules: the bearer key and its check, the API's error shape as a
Starlette response, and the handlers for unknown routes and unexpected errors.

Below both shells (a contract says neither imports the other); it imports only
``rig.protocol.errors``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from rig.protocol.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    error_body,
)

__all__ = [
    "bearer",
    "check_api_key",
    "error_response",
    "json_response",
    "masked",
    "not_found",
    "server_error",
]

log = logging.getLogger("rig.serving")


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``payload`` as a JSON response."""
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def error_response(error: APIError, headers: Mapping[str, str] | None = None) -> Response:
    """``error`` in the API's shape, with its status (and ``headers``, else the error's own,
    such as an upstream's rate-limit headers)."""
    return json_response(
        error_body(error), error.status, headers or getattr(error, "headers", None)
    )


def masked(key: str) -> str:
    """A key as the API shows it in errors: never the whole secret."""
    return f"{key[:3]}***{key[-4:]}" if len(key) > 10 else "***"


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_api_key(keys: Collection[str], headers: Mapping[str, str]) -> None:
    """Raise :class:`AuthenticationError` unless one of ``keys`` was presented (anyone is
    let in when ``keys`` is empty). Compared in constant time; the error masks the key."""
    if not keys:
        return
    token = bearer(headers)
    if token is None:
        raise AuthenticationError(
            "You didn't provide an API key. Provide it in an Authorization header "
            "(Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    if not any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
        raise AuthenticationError(f"Incorrect API key provided: {masked(token)}.")


async def not_found(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 as the API's errors (``unknown_url``, ``method_not_allowed``)."""
    if getattr(exc, "status_code", 404) == 405:
        error: APIError = InvalidRequestError(
            f"Method {request.method} is not allowed on {request.url.path}.",
            code="method_not_allowed",
        )
        error.status = 405
        return error_response(error)
    return error_response(
        NotFoundError(f"Invalid URL ({request.method} {request.url.path})", code="unknown_url")
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected error: logged with its traceback, answered as the API's 500."""
    log.exception("unhandled error", exc_info=exc)
    return error_response(ServerError("The server had an error processing your request."))
