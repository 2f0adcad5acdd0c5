"""Responses API request bodies and WebSocket client events: validation and normalisation.

Validation is strict like the real API (``"5"`` is not an integer) and every failure
becomes an :class:`InvalidRequestError` whose ``param`` is the dotted path of the bad
field (``input[3].call_id``). Unknown top-level fields are tolerated, so newer SDKs that
send fields this server does not model keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from rig.protocol.errors import InvalidRequestError

__all__ = [
    "MAX_JSON_DEPTH",
    "ContentPart",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputItem",
    "MessageItem",
    "ReasoningItem",
    "ResponseCreateEvent",
    "ResponseCreateRequest",
    "TranscriptItem",
    "content_text",
    "invalid_request_from",
    "normalize_input",
    "parse_create_request",
    "parse_json_object",
]

TranscriptItem = dict[str, Any]
"""A conversation item in normalised form (see :func:`normalize_input`)."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and lists a request body or client event may have (the body
itself is level 1). Checked at parsing, before anything recurses over the value: orjson
encodes at most 254 levels and decodes at most 1,024, and validation and the model walk
the value recursively, so a deeper body would fail as a server error far from the input.
JSON schemas of real tools nest well under 20 levels."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ContentPart(_Strict):
    """One part of a message's content (``input_text``, ``output_text``, ``refusal``...)."""

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(_Strict):
    """A message from the user, the system/developer, or an earlier assistant turn."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Strict):
    """A function call the model made in an earlier turn, echoed back by the client."""

    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Strict):
    """The client's result for a function call."""

    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningItem(_Strict):
    """A reasoning item echoed back by clients of reasoning models; carried, not interpreted."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[Any] = []


_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")


def _item_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None and "role" in value:
            return "item:message"
        return f"item:{kind}" if kind in _ITEM_TYPES else None
    return None


InputItem = Annotated[
    Annotated[MessageItem, Tag("item:message")]
    | Annotated[FunctionCallItem, Tag("item:function_call")]
    | Annotated[FunctionCallOutputItem, Tag("item:function_call_output")]
    | Annotated[ReasoningItem, Tag("item:reasoning")],
    Discriminator(
        _item_tag,
        custom_error_type="invalid_item_type",
        custom_error_message="unsupported input item type",
    ),
]


class FunctionTool(_Strict):
    """A function tool definition (the only tool kind the mock executes)."""

    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


_Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]


class ResponseCreateRequest(_Strict):
    """Body of ``POST /v1/responses`` (and of a WebSocket ``response.create``)."""

    model: Annotated[str, Field(min_length=1)]
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Any = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    background: bool | None = None
    metadata: _Metadata | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    parallel_tool_calls: bool = True
    include: list[str] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    user: str | None = None


class ResponseCreateEvent(ResponseCreateRequest):
    """WebSocket client event: a create body plus ``type`` and an optional ``stream_id`` lane."""

    type: Literal["response.create"]
    stream_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_UNION_MARKERS = ("[", ":", "function-after", "function-plain")
# Union branches appear in error locations; tags carry a ":" so no field name can clash.
_BRANCH_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _json_kind(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case None:
            return "null"
    return type(value).__name__


def _param_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _BRANCH_NAMES or any(marker in part for marker in _UNION_MARKERS):
            continue
        else:
            path += f".{part}" if path else part
    return path


def invalid_request_from(exc: ValidationError) -> InvalidRequestError:
    """The most specific of ``exc``'s errors as an OpenAI-style ``InvalidRequestError``."""
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return InvalidRequestError(
            "We could not parse the JSON body of your request. The API expects a JSON "
            "payload, but what was sent was not valid JSON.",
            code="invalid_json",
        )
    # Unions report one error per branch; the deepest one names the real problem.
    error = max(errors, key=lambda e: len(e["loc"]))
    param = _param_path(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if kind in _TYPE_NAMES:
        return InvalidRequestError(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, "
            f"but got {_json_kind(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind == "literal_error" or kind == "invalid_item_type":
        expected = error.get("ctx", {}).get("expected") or ", ".join(f"'{t}'" for t in _ITEM_TYPES)
        shown = value.get("type") if isinstance(value, dict) else value
        if kind == "invalid_item_type":
            param = f"{param}.type"
        return InvalidRequestError(
            f"Invalid value for '{param}': '{shown}'. Supported values are: {expected}.",
            param=param,
            code="invalid_value",
        )
    return InvalidRequestError(
        f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value"
    )


def _too_deep(raw: bytes | str, value: Any, limit: int) -> bool:
    """Whether ``value`` (decoded from ``raw``) nests objects and lists beyond ``limit``.

    Iterative, so the check itself cannot exhaust the stack; skipped outright when ``raw``
    has too few opening brackets to reach the limit (most bodies), which costs two scans
    in C.
    """
    if isinstance(raw, str):
        opening = raw.count("{") + raw.count("[")
    else:
        opening = raw.count(b"{") + raw.count(b"[")
    if opening <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        children = container.values() if isinstance(container, dict) else container
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep_error(limit: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The JSON body of your request nests objects and arrays more than {limit} levels "
        "deep; flatten it (tool parameter schemas included).",
        code="json_too_deep",
    )


def parse_json_object(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Decode ``raw`` as a JSON object nested at most ``max_depth`` levels, or raise the
    API's invalid-JSON error (or :func:`_too_deep_error`)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep_error(max_depth) from None
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The API expects a JSON "
            "payload, but what was sent was not valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"Invalid type for request body: expected an object, but got {_json_kind(value)} "
            "instead.",
            code="invalid_type",
        )
    if _too_deep(raw, value, max_depth):
        raise _too_deep_error(max_depth)
    return value


def parse_create_request(body: dict[str, Any]) -> ResponseCreateRequest:
    """Validate a decoded ``POST /v1/responses`` body."""
    try:
        return ResponseCreateRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def content_text(content: str | list[ContentPart]) -> str:
    """The text of a message's or tool output's content, parts joined."""
    if isinstance(content, str):
        return content
    return "".join(part.text or part.refusal or "" for part in content)


def normalize_input(request: ResponseCreateRequest) -> list[TranscriptItem]:
    """The request's input as normalised transcript items.

    Shapes: ``{"type": "message", "role", "content": str}``,
    ``{"type": "function_call", "call_id", "name", "arguments"}`` and
    ``{"type": "function_call_output", "call_id", "output": str}``. Reasoning items are
    dropped: they carry no conversation content the scripted model reads.
    """
    raw = request.input
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    items: list[TranscriptItem] = []
    for item in raw:
        if isinstance(item, MessageItem):
            items.append(
                {"type": "message", "role": item.role, "content": content_text(item.content)}
            )
        elif isinstance(item, FunctionCallItem):
            items.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
        elif isinstance(item, FunctionCallOutputItem):
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": content_text(item.output),
                }
            )
    return items
