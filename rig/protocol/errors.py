"""OpenAI-shaped errors: one exception tree, rendered as an HTTP body or a WebSocket event.

The real API answers every bad request with ``{"error": {"message", "type", "param",
"code"}}`` and the matching HTTP status; over WebSocket the same information arrives as
an ``error`` event carrying ``status``. Servers raise these exceptions and never build
error dicts by hand, so both transports always agree.
"""

from __future__ import annotations

from typing import Any

from rig.errors import RigError

__all__ = [
    "CONNECTION_LIMIT_CODE",
    "APIError",
    "AuthenticationError",
    "BusyError",
    "ConflictError",
    "ConnectionLimitError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PreviousResponseNotFoundError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "StreamLimitError",
    "error_body",
    "ws_error_event",
]

CONNECTION_LIMIT_CODE = "websocket_connection_limit_reached"
"""Error code sent before the server closes a connection that reached its maximum age."""


class APIError(RigError):
    """Base of every error a server reports to a client in the OpenAI shape."""

    status: int = 500
    type: str = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def to_dict(self) -> dict[str, Any]:
        """The inner ``error`` object."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


class InvalidRequestError(APIError):
    """The request is malformed: bad JSON, wrong types, missing or invalid fields."""

    status = 400
    type = "invalid_request_error"


class PreviousResponseNotFoundError(InvalidRequestError):
    """``previous_response_id`` names a response the server can no longer resolve."""

    default_code = "previous_response_not_found"

    def __init__(self, response_id: str):
        super().__init__(
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
        )


class BusyError(InvalidRequestError):
    """A ``response.create`` arrived while another response is in flight on the lane."""

    default_code = "conversation_already_has_active_response"


class StreamLimitError(InvalidRequestError):
    """A ``response.create`` named one ``stream_id`` more than a WebSocket connection takes."""

    default_code = "websocket_stream_limit_reached"


class ConnectionLimitError(InvalidRequestError):
    """A WebSocket connection reached its maximum age: no new responses; open another."""

    default_code = CONNECTION_LIMIT_CODE


class AuthenticationError(APIError):
    """Missing or wrong API key."""

    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFoundError(APIError):
    """The addressed object (a stored response, a route) does not exist."""

    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class ConflictError(APIError):
    """The request conflicts with the server's state."""

    status = 409
    type = "invalid_request_error"


class PayloadTooLargeError(APIError):
    """The body or WebSocket message exceeds the server's configured limit."""

    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class RequestTimeoutError(APIError):
    """The request's headers or body stopped arriving for longer than the server waits."""

    status = 408
    type = "invalid_request_error"
    default_code = "request_timeout"


class RateLimitError(APIError):
    """A rate limit was hit. ``type`` says which kind (``requests`` or ``tokens``, as the
    API does); ``headers`` are the ``x-ratelimit-*`` and ``retry-after(-ms)`` headers sent
    with it over HTTP, repeated in the WebSocket ``error`` event's ``error.headers``."""

    status = 429
    type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "requests",
        headers: dict[str, str] | None = None,
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message, param=param, code=code)
        self.type = kind
        self.headers = dict(headers or {})


class ServerError(APIError):
    """The server failed; the client may retry."""

    status = 500
    type = "server_error"


class ServiceUnavailableError(ServerError):
    """A part the server depends on did not answer (the API's 503); retry later."""

    status = 503


def error_body(error: APIError) -> dict[str, Any]:
    """The HTTP body for ``error``: ``{"error": {...}}``."""
    return {"error": error.to_dict()}


def ws_error_event(error: APIError, *, stream_id: str | None = None) -> dict[str, Any]:
    """The WebSocket ``error`` event for ``error``, as the SDK's ``ResponseWsError`` parses it."""
    event: dict[str, Any] = {"type": "error", "status": error.status, "error": error.to_dict()}
    headers = getattr(error, "headers", None)
    if headers:
        event["error"]["headers"] = headers  # ResponseWsErrorError.headers in the SDK
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event
