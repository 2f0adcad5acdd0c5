"""The client half of a turn, with no I/O: request bodies out, events in, a result out.

A transport (the load generator's, or any other client) owns the socket, the clock and
the byte counts; it builds a body here, feeds what arrives to a reader, reads the clock
when a reader reports a mark (:data:`FIRST_EVENT`, :data:`FIRST_DELTA`, :data:`TERMINAL`),
and gets a :class:`TurnResult` at the end. The readers are on the hot path: they sniff
each event's type (:mod:`rig.protocol.sniff`) and parse the JSON of the terminal event
only (a Chat Completions stream has no terminal event with the whole answer, so its chunks
are parsed). An HTTP error answer becomes the same result (:func:`error_result`), rate
limits read through :mod:`rig.protocol.ratelimit`.

A stream that is not what the API sends (a terminal event or a chat chunk that is not a
JSON object, an SSE event over :data:`~rig.protocol.sse.MAX_EVENT_BYTES`) raises
:class:`StreamError` (or :class:`~rig.protocol.sse.SSEError`) from the reader, never a
parser's exception; the transport records the turn as an error with that cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from rig.errors import RigError
from rig.protocol.ratelimit import LimitKind, RateLimitInfo, is_rate_limit, parse_rate_limit
from rig.protocol.sniff import TERMINAL_TYPES, event_type, is_terminal_event
from rig.protocol.sse import SSEDecoder
from rig.protocol.transcript import chat_messages

__all__ = [
    "DELTA_TYPES",
    "FIRST_DELTA",
    "FIRST_EVENT",
    "TERMINAL",
    "ChatStreamReader",
    "ResponsesStreamReader",
    "ResultStatus",
    "StreamError",
    "TurnResult",
    "chat_body",
    "error_result",
    "responses_body",
    "terminal_result",
]

FIRST_EVENT = 1
"""Mark: the response's first event of any kind arrived (TTFB)."""
FIRST_DELTA = 2
"""Mark: its first content delta arrived, text or tool-call arguments (TTFT)."""
TERMINAL = 4
"""Mark: the event that ends the response arrived."""

DELTA_TYPES = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})


class StreamError(RigError, ValueError):
    """What the target streamed is not the API's: the message says what, and shows it."""


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object; :class:`StreamError` naming ``what`` otherwise."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StreamError(
            f"the target sent {what} that is not JSON ({exc}): {raw[:80]!r}"
        ) from None
    if not isinstance(value, dict):
        raise StreamError(f"the target sent {what} that is not a JSON object: {raw[:80]!r}")
    return value


ResultStatus = Literal["ok", "error", "rate_limited"]
"""How a response ended, as far as the protocol says (timeouts are the caller's)."""


@dataclass(slots=True)
class TurnResult:
    """What one response came to: status, output, usage, or the error and its details."""

    status: ResultStatus = "ok"
    response_id: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    error: str = ""
    error_code: str | None = None
    rate_limit: RateLimitInfo | None = None
    """For a rate-limit refusal: which limit, how long to wait, whether waiting helps."""


def responses_body(
    *,
    model: str,
    instructions: str,
    tools: Sequence[Mapping[str, Any]],
    store: bool,
    input: Sequence[Mapping[str, Any]],
    previous_response_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Responses API create body (add ``stream`` for HTTP; WebSocket mode drops it).

    Instructions and tools go every turn (the API does not carry them over with
    ``previous_response_id``). With ``store=false`` nothing is kept server-side, so a
    reasoning model's thoughts come back encrypted and travel with every full-context
    request (as Codex does).
    """
    body: dict[str, Any] = {
        "model": model,
        "instructions": instructions,
        "tools": tools,
        "store": store,
    }
    if not store:
        body["include"] = ["reasoning.encrypted_content"]
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    body["input"] = input
    if metadata:
        body["metadata"] = metadata
    return body


def chat_body(
    *,
    model: str,
    instructions: str,
    tools: Sequence[Mapping[str, Any]],
    transcript: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A streamed Chat Completions body: the Responses-form ``transcript`` as messages;
    ``tools`` already in the Chat form (:func:`rig.protocol.transcript.chat_tools`)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(instructions, transcript),
        "tools": tools,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if metadata:
        body["metadata"] = metadata
    return body


def _rate_limited(
    result: TurnResult, error: Mapping[str, Any], headers: Any, default: LimitKind
) -> None:
    result.status = "rate_limited"
    result.rate_limit = parse_rate_limit(error, headers, default)


def terminal_result(raw: bytes) -> TurnResult:
    """The result of a response from its terminal event (``response.completed``,
    ``response.failed``, ``response.incomplete`` or ``error``); :class:`StreamError` when it
    is not a JSON object."""
    event = _json_object(raw, "a terminal event")
    result = TurnResult()
    if event.get("type") == "error":
        error = event.get("error") or {}
        result.error_code = error.get("code")
        result.error = f"{error.get('code')}: {error.get('message')}"
        if is_rate_limit(event.get("status"), result.error_code):
            _rate_limited(result, error, error.get("headers"), "requests")
        else:
            result.status = "error"
        return result
    response = event.get("response") or {}
    result.response_id = response.get("id")
    result.output = response.get("output") or []
    usage = response.get("usage") or {}
    result.input_tokens = usage.get("input_tokens", 0)
    result.cached_tokens = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
    result.output_tokens = usage.get("output_tokens", 0)
    if event.get("type") == "response.failed":
        error = response.get("error") or {}
        result.status = "error"
        result.error_code = error.get("code")
        result.error = f"response.failed: {error.get('message')}"
    return result


def error_result(
    status: int, body: bytes, headers: Any = None, *, default_limit: LimitKind = "requests"
) -> TurnResult:
    """The result of an HTTP error answer (the OpenAI error shape, or anything);
    ``default_limit`` is the kind of a 429 whose body names none (a refused WebSocket
    handshake: ``connections``)."""
    try:
        decoded = orjson.loads(body)
        error = decoded.get("error") if isinstance(decoded, dict) else None
    except orjson.JSONDecodeError:
        error = None
    if not isinstance(error, dict):
        error = {}
    result = TurnResult(status="error", error_code=error.get("code"))
    message = error.get("message")
    result.error = f"HTTP {status}: {message or body[:200].decode('utf-8', 'replace')}"
    if is_rate_limit(status, result.error_code):
        _rate_limited(result, error, headers, default_limit)
    return result


class ResponsesStreamReader:
    """Reads one Responses API stream: SSE bytes (:meth:`feed_sse`) or WebSocket messages
    (:meth:`feed_messages`); each call returns the marks it found."""

    __slots__ = ("_awaiting_delta", "_decoder", "_seen_event", "body_bytes", "leftover", "raw")

    def __init__(self) -> None:
        self._decoder: SSEDecoder | None = None
        self._seen_event = False
        self._awaiting_delta = True
        self.raw: bytes | None = None
        """The terminal event's JSON, once it arrived."""
        self.body_bytes = 0
        """Message bytes read up to the terminal event (WebSocket)."""
        self.leftover: list[bytes] = []
        """Messages after the terminal event in the last :meth:`feed_messages` call."""

    def _mark(self, kind: str | None) -> int:
        marks = 0
        if not self._seen_event:
            self._seen_event = True
            marks = FIRST_EVENT
        if kind in DELTA_TYPES:
            self._awaiting_delta = False
            marks |= FIRST_DELTA
        return marks

    def feed_sse(self, chunk: bytes) -> int:
        """Read a piece of an SSE body."""
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = SSEDecoder()
        marks = 0
        for message in decoder.feed(chunk):
            kind = message.event
            data = message.data
            if self._awaiting_delta:  # the type matters only until the first delta
                marks |= self._mark(kind or event_type(data))
            if (kind in TERMINAL_TYPES) if kind else is_terminal_event(data):
                self.raw = data
                marks |= TERMINAL
        return marks

    def feed_messages(self, messages: list[bytes]) -> int:
        """Read WebSocket text messages; those after the terminal event are not read but
        kept in :attr:`leftover` (e.g. a stale age-limit error, for the next turn)."""
        marks = 0
        for index, message in enumerate(messages):
            self.body_bytes += len(message)
            if self._awaiting_delta:
                marks |= self._mark(event_type(message))
            if is_terminal_event(message):
                self.raw = message
                self.leftover = messages[index + 1 :]
                return marks | TERMINAL
        return marks

    def feed_message(self, message: bytes) -> int:
        """Read one WebSocket text message of this response (a lane's, already routed)."""
        self.body_bytes += len(message)
        marks = self._mark(event_type(message)) if self._awaiting_delta else 0
        if is_terminal_event(message):
            self.raw = message
            marks |= TERMINAL
        return marks

    def result(self) -> TurnResult:
        """The response's result (an error result if the stream ended without a terminal
        event)."""
        if self.raw is None:
            return TurnResult(status="error", error="stream ended without a terminal event")
        return terminal_result(self.raw)


class ChatStreamReader:
    """Reads one streamed Chat Completion: chunks accumulated into Responses-form output
    items (text, then tool calls by index) and usage."""

    __slots__ = ("_calls", "_decoder", "_seen_delta", "_seen_event", "_text", "_usage", "done")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._seen_event = False
        self._seen_delta = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, Any] = {}
        self.done = False

    def feed_sse(self, chunk: bytes) -> int:
        """Read a piece of the SSE body."""
        marks = 0
        for message in self._decoder.feed(chunk):
            if not self._seen_event:
                self._seen_event = True
                marks |= FIRST_EVENT
            if message.data == b"[DONE]":
                self.done = True
                marks |= TERMINAL
                continue
            data = _json_object(message.data, "a chat completion chunk")
            content = False
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self._text.append(delta["content"])
                    content = True
                for call in delta.get("tool_calls") or ():
                    slot = self._calls.setdefault(call["index"], {"arguments": []})
                    if call.get("id"):
                        slot["id"] = call["id"]
                    function = call.get("function") or {}
                    if function.get("name"):
                        slot["name"] = function["name"]
                    if function.get("arguments"):
                        slot["arguments"].append(function["arguments"])
                        content = True
            if data.get("usage"):
                self._usage = data["usage"]
            if content and not self._seen_delta:
                self._seen_delta = True
                marks |= FIRST_DELTA
        return marks

    def result(self) -> TurnResult:
        """The completion as a result with Responses-form output items."""
        if not self.done:
            return TurnResult(status="error", error="stream ended without [DONE]")
        result = TurnResult()
        text = "".join(self._text)
        if text:
            content = [{"type": "output_text", "text": text, "annotations": []}]
            result.output.append({"type": "message", "role": "assistant", "content": content})
        for index in sorted(self._calls):
            call = self._calls[index]
            result.output.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id", f"call_{index}"),
                    "name": call.get("name", ""),
                    "arguments": "".join(call["arguments"]),
                }
            )
        usage = self._usage
        result.input_tokens = usage.get("prompt_tokens", 0)
        result.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        result.output_tokens = usage.get("completion_tokens", 0)
        return result
