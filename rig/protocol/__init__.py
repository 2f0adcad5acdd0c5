"""The wire format of the Responses API (HTTP/SSE and WebSocket) and Chat Completions.

No I/O: servers and clients feed bytes in and get bytes out, so the mock, the gateway
and the load generator can never disagree about the protocol.
"""

from rig.protocol.errors import (
    APIError,
    AuthenticationError,
    BusyError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PreviousResponseNotFoundError,
    RateLimitError,
    ServerError,
    error_body,
    ws_error_event,
)
from rig.protocol.events import ResponseStream, response_object, usage_object
from rig.protocol.ids import new_id
from rig.protocol.requests import (
    ResponseCreateEvent,
    ResponseCreateRequest,
    TranscriptItem,
    normalize_input,
    parse_create_request,
    parse_json_object,
)
from rig.protocol.sniff import TERMINAL_TYPES, event_type, is_terminal
from rig.protocol.sse import DONE, SSEDecoder, SSEMessage, encode_data, encode_event
from rig.protocol.tokens import estimate_tokens, split_tokens
from rig.protocol.ws import encode_client_event, encode_server_event, parse_client_event

__all__ = [
    "DONE",
    "TERMINAL_TYPES",
    "APIError",
    "AuthenticationError",
    "BusyError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PreviousResponseNotFoundError",
    "RateLimitError",
    "ResponseCreateEvent",
    "ResponseCreateRequest",
    "ResponseStream",
    "SSEDecoder",
    "SSEMessage",
    "ServerError",
    "TranscriptItem",
    "encode_client_event",
    "encode_data",
    "encode_event",
    "encode_server_event",
    "error_body",
    "estimate_tokens",
    "event_type",
    "is_terminal",
    "new_id",
    "normalize_input",
    "parse_client_event",
    "parse_create_request",
    "parse_json_object",
    "response_object",
    "split_tokens",
    "usage_object",
    "ws_error_event",
]
