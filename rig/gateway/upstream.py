"""The gateway's upstreams: stateless providers called over HTTP/1.1 with the full context.

Each dialect turns one client request (validated, its conversation rebuilt) into one
streamed upstream call and yields Responses API events, so the app relays them without
knowing which dialect served it:

* ``responses``: ``POST {base}/responses`` with the full ``input``, ``store: false``,
  ``stream: true`` and ``include: ["reasoning.encrypted_content"]`` added to the client's
  (with ``store: false`` a reasoning item is reusable in the next turn's context only with
  its encrypted content; the gateway records the output as it came, so it re-sends it);
  the upstream's SSE events are relayed as they come (only the events
  carrying a response object are parsed: to echo the client's ``previous_response_id``,
  ``store`` and model name, and to record the terminal one; every other event's JSON is
  relayed as the upstream wrote it, never decoded);
* ``chat``: ``POST {base}/chat/completions`` with the context as ``messages``
  (:mod:`rig.protocol.transcript`); the chunks become Responses events
  (:class:`rig.gateway.chatrelay.ChatRelay`).

An upstream read becomes one :class:`EventBatch`: the events' names and JSON in two lists,
and only the terminal event as an object, so the relay sends a read's events in one call.
A read that ends on an event's blank line, with nothing held from the read before, is
split by its lines (the common case: servers write whole events); anything else goes
through :class:`rig.protocol.sse.SSEDecoder`, whose rules both follow.

Failures become the API's error shapes (:mod:`rig.protocol.errors`): an upstream 429 keeps
its status and its ``retry-after``/``x-ratelimit-*`` headers; other refusals keep their
4xx; the upstream's 5xx, a refused connection or a broken stream is a 502, a timeout a 504.
An upstream 401/403 is a 502 when the gateway sent its own key (not the client's to fix),
and the client's 401/403 when it sent the client's (``client_keys: pass-through``).

Keys: the upstream's own is a default header of its client; a passed-through client key
is a header of that one request (:attr:`UpstreamCall.key`, never in a ``repr``). Neither
is logged: nothing here logs headers, requests or bodies, and error messages name only
the status and the exception's type.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, ClassVar

import orjson

from rig.gateway.chatrelay import ChatRelay
from rig.gateway.config import ConfigError, UpstreamConfig
from rig.gateway.http1 import (
    Answer,
    ConnectionPool,
    HTTPClientError,
    Origin,
    header_line,
    request_head,
)
from rig.gateway.http2 import H2Answer, H2Client
from rig.gateway.stats import GatewayStats
from rig.protocol.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
)
from rig.protocol.requests import ResponseCreateRequest
from rig.protocol.sniff import event_type
from rig.protocol.sse import SSEDecoder, SSEError
from rig.protocol.transcript import chat_messages, chat_tools

__all__ = [
    "DIALECTS",
    "ENCRYPTED_REASONING",
    "EventBatch",
    "RelayedEvent",
    "ResponseTemplates",
    "Upstream",
    "UpstreamCall",
    "UpstreamError",
    "UpstreamTimeoutError",
    "upstream_refusal",
    "without_encrypted_reasoning",
]

ENCRYPTED_REASONING = "reasoning.encrypted_content"

CLIENT_ONLY_FIELDS = frozenset(
    {"previous_response_id", "stream_id", "type", "generate", "background", "input", "stream"}
)
"""Fields of a client's request that never reach the upstream as they are."""

PASSED_HEADERS = ("retry-after", "retry-after-ms")
"""Headers of an upstream 429 passed to the client (with every ``x-ratelimit-*``)."""

RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.queued",
    }
)
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
ITEM_EVENTS = frozenset({"response.output_item.added", "response.output_item.done"})
_SPECIAL_NAMES = frozenset(kind.encode() for kind in RESPONSE_EVENTS | ITEM_EVENTS)
"""SSE event names whose events may be changed on the way (the rest pass as they are)."""
_EVENT_PREFIX = len(b"event: ")
_DATA_PREFIX = len(b"data: ")


class UpstreamError(ServerError):
    """The upstream failed: a 5xx, a refused connection, a broken or unreadable stream."""

    status = 502
    default_code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not answer, or stopped streaming, within its timeout."""

    status = 504
    default_code = "upstream_timeout"


@dataclass(frozen=True, slots=True)
class RelayedEvent:
    """One Responses API event for the client: its type, its JSON, and (for the events
    that carry one) the response object, already parsed."""

    type: str
    data: bytes
    response: dict[str, Any] | None = None
    """Always on a terminal event (it is recorded); on the others, when it was parsed."""

    @property
    def terminal(self) -> bool:
        """The response ended (completed, incomplete or failed)."""
        return self.type in TERMINAL_EVENTS


@dataclass(slots=True)
class EventBatch:
    """The events of one upstream read, in order, for the client: each one's type as its
    SSE ``event:`` name (``kinds``) and its JSON (``datas``). Only the first terminal
    event is also an object (:attr:`terminal`, its response parsed, at index
    :attr:`stop`); what follows it is never relayed."""

    kinds: list[bytes] = field(default_factory=list)
    datas: list[bytes] = field(default_factory=list)
    terminal: RelayedEvent | None = None
    terminal_at: int = -1

    def __len__(self) -> int:
        return len(self.datas)

    @property
    def stop(self) -> int:
        """The index of the terminal event, or the number of events (none ends here)."""
        return self.terminal_at if self.terminal is not None else len(self.datas)

    def add(self, kind: bytes, data: bytes) -> None:
        """One event that ends nothing."""
        self.kinds.append(kind)
        self.datas.append(data)

    def add_event(self, event: RelayedEvent) -> None:
        """One event given as an object (kept if it is the first terminal one)."""
        if event.terminal and self.terminal is None:
            self.terminal = event
            self.terminal_at = len(self.datas)
        self.kinds.append(event.type.encode())
        self.datas.append(event.data)

    def replace(self, index: int, event: RelayedEvent) -> None:
        """Event ``index`` as given (kept if it is the first terminal one: events are
        replaced in order, and those not replaced end nothing)."""
        if event.terminal and self.terminal is None:
            self.terminal = event
            self.terminal_at = index
        self.kinds[index] = event.type.encode()
        self.datas[index] = event.data

    def events(self) -> list[RelayedEvent]:
        """Every event as a :class:`RelayedEvent` (only the terminal one with its
        response object)."""
        return [
            self.terminal
            if index == self.terminal_at and self.terminal is not None
            else RelayedEvent(kind.decode(), data)
            for index, (kind, data) in enumerate(zip(self.kinds, self.datas, strict=True))
        ]


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """What one upstream call needs: the client's request (validated and as sent), the
    full conversation to send, and whether deltas carry obfuscation."""

    request: ResponseCreateRequest
    body: Mapping[str, Any]
    transcript: Sequence[dict[str, Any]] | bytes
    """The full conversation: items, or their JSON array as bytes (sent as they are)."""
    obfuscate: bool = True
    key: str | None = field(default=None, repr=False)
    """The client's key, sent as the upstream's ``Authorization`` instead of the
    upstream's own (``client_keys: pass-through``); ``None``: the upstream's own."""
    timing: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    """Filled by the call: ``ttfb_s``, from sending the request to the first bytes of the
    answer's body (the upstream's share of the time to the first event)."""

    def items(self) -> list[dict[str, Any]]:
        """The conversation's items (decoded when given as bytes)."""
        if isinstance(self.transcript, bytes):
            items: list[dict[str, Any]] = orjson.loads(self.transcript)
            return items
        return list(self.transcript)


_AUTHORIZATION_NAME = len(b"authorization: ")


def _authorization(key: str) -> bytes:
    """The ``authorization`` header line of ``key`` (:class:`ValueError` for a key a
    header cannot carry)."""
    return header_line("authorization", f"Bearer {key}")


def _error_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def upstream_refusal(
    status: int, headers: Mapping[str, str], raw: bytes, *, client_key: bool = False
) -> APIError:
    """The client's error for an upstream that answered ``status`` with body ``raw``
    (``client_key``: the request carried the client's own key, so a 401/403 is its)."""
    error = _error_object(raw)
    message = str(error.get("message") or f"The upstream answered HTTP {status}.")
    code = error.get("code")
    param = error.get("param")
    if status == 429:
        passed = {
            k: v for k, v in headers.items() if k in PASSED_HEADERS or k.startswith("x-ratelimit-")
        }
        kind = str(error.get("type") or "requests")
        return RateLimitError(message, kind=kind, headers=passed, code=code, param=param)
    if status in (401, 403) and client_key:
        refused_key = AuthenticationError(message, param=param, code=code)
        refused_key.status = status
        if error.get("type"):
            refused_key.type = str(error["type"])
        return refused_key
    if status in (401, 403):  # the gateway's own key: not the client's to fix
        return UpstreamError(f"The upstream refused the gateway's credentials (HTTP {status}).")
    if 400 <= status < 500:
        refused = InvalidRequestError(message, param=param, code=code)
        refused.status = status
        return refused
    return UpstreamError(f"The upstream failed (HTTP {status}): {message}")


class _Dialect:
    """How one kind of upstream is asked, and how its stream becomes Responses events."""

    path: ClassVar[str]

    def body(self, call: UpstreamCall, config: UpstreamConfig) -> dict[str, Any]:
        raise NotImplementedError

    def events(
        self, call: UpstreamCall, templates: ResponseTemplates | None = None
    ) -> _EventReader:
        """The reader of ``call``'s stream (``templates``: the upstream's, if it uses them)."""
        raise NotImplementedError


class _EventReader:
    """Decodes an upstream's stream, fed its bytes, into events for the client."""

    def feed(self, chunk: bytes) -> EventBatch:
        raise NotImplementedError

    def end(self) -> EventBatch:
        return EventBatch()


def without_encrypted_reasoning(value: Any) -> Any:
    """A copy of an output item or a response object with no reasoning item's
    ``encrypted_content`` (what a client that did not ask for it gets)."""
    if not isinstance(value, dict):
        return value
    if value.get("type") == "reasoning" and "encrypted_content" in value:
        return {k: v for k, v in value.items() if k != "encrypted_content"}
    output = value.get("output")
    if isinstance(output, list):
        return {**value, "output": [without_encrypted_reasoning(item) for item in output]}
    return value


def _patched(data: bytes, call: UpstreamCall, strip: bool) -> RelayedEvent:
    """An event carrying a response object, with the client's own settings echoed (and,
    with ``strip``, the reasoning's encrypted content only in the recorded copy)."""
    event = orjson.loads(data)
    response = event.get("response")
    if isinstance(response, dict):
        response["previous_response_id"] = call.request.previous_response_id
        response["store"] = call.request.store
        response["model"] = call.request.model
        if strip:
            event = {**event, "response": without_encrypted_reasoning(response)}
    return RelayedEvent(event["type"], orjson.dumps(event), response)


_SEQUENCE_MEMBER = b',"sequence_number":'


def _envelope(data: bytes, kind: str) -> tuple[bytes, bytes] | None:
    """An event's JSON in the shape ``{"type":"<kind>",<middle>,"sequence_number":<n>}``
    (the type its first member, the number its last, in canonical digits): ``(middle, n)``,
    else ``None``. Of valid JSON, that first and that last member are the top object's."""
    head = b'{"type":"' + kind.encode() + b'",'
    if not (data.startswith(head) and data.endswith(b"}")):
        return None
    middle, member, number = data[len(head) : -1].rpartition(_SEQUENCE_MEMBER)
    if not member or not number.isdigit() or (number[0] == 48 and len(number) > 1):
        return None  # 48: "0"; a leading zero is not JSON
    return middle, number


class _EchoedResponse:
    """The last response-object event patched, to patch the next one that differs only in
    its type and sequence number without a parse (``response.in_progress`` repeats
    ``response.created``'s object): its middle as the upstream sent it and as patched."""

    __slots__ = ("event", "middle", "patched_middle")

    def __init__(self, data: bytes, event: RelayedEvent):
        self.event = event
        self.middle = b""
        self.patched_middle = b""
        sent, patched = _envelope(data, event.type), _envelope(event.data, event.type)
        if sent is not None and patched is not None and sent[1] == patched[1]:
            own_type = b'"type":"' + event.type.encode() + b'"'
            # No second "type" member that could be the top object's (written plainly:
            # one spelled with spaces or escapes is not seen; object names should be
            # unique, RFC 8259).
            if own_type not in sent[0]:
                self.middle, self.patched_middle = sent[0], patched[0]

    def next(self, kind: str, data: bytes) -> RelayedEvent | None:
        """``kind``'s event as :func:`_patched` would give it, if ``data`` is this one's
        with another type and sequence number; else ``None``."""
        if not self.middle:
            return None
        sent = _envelope(data, kind)
        if sent is None or sent[0] != self.middle:
            return None
        head = b'{"type":"' + kind.encode() + b'",'
        patched = head + self.patched_middle + _SEQUENCE_MEMBER + sent[1] + b"}"
        return RelayedEvent(kind, patched, self.event.response)


_RESPONSE_HEAD = re.compile(
    rb'\{"type":"(response\.[a-z_]{1,40})","response":\{"id":"([A-Za-z0-9_-]{1,200})",'
    rb'"object":"response","created_at":(0|[1-9][0-9]{0,17}),'
)
"""The start of a response-object event as servers write it: its type, the response's id
and creation time (values that need no escaping, numbers in canonical digits)."""
_MISSING = object()


class _Template:
    """A response-object event as :func:`_patched` gives it, with its six per-turn values
    cut out (the response's id, creation time, the three echoed settings, the sequence
    number): ``pieces`` around them, ``order`` saying which value goes in each gap."""

    __slots__ = ("order", "pieces")

    def __init__(self, pieces: list[bytes], order: list[int]):
        self.pieces = pieces
        self.order = order

    @classmethod
    def learn(cls, data: bytes, call: UpstreamCall, strip: bool) -> _Template | None:
        """The template of ``data``'s event, or ``None``: its JSON must be as orjson writes
        it (then no name repeats, and an event with the same bytes but the six values is
        the same object but those values), and the template must give ``_patched``'s bytes
        for ``data`` itself."""
        event = orjson.loads(data)
        response = event.get("response")
        if orjson.dumps(event) != data or not isinstance(response, dict):
            return None
        marks = [f"rig-{secrets.token_hex(8)}-{n}" for n in range(6)]
        response.update(
            id=marks[0], created_at=marks[1], previous_response_id=marks[2], store=marks[3]
        )
        response["model"] = marks[4]
        event["sequence_number"] = marks[5]
        if strip:
            event = {**event, "response": without_encrypted_reasoning(response)}
        text = orjson.dumps(event)
        found = sorted((text.find(f'"{mark}"'.encode()), n) for n, mark in enumerate(marks))
        if any(text.count(f'"{mark}"'.encode()) != 1 for mark in marks):
            return None
        pieces, start = [], 0
        for at, n in found:
            pieces.append(text[start:at])
            start = at + len(marks[n]) + 2
        pieces.append(text[start:])
        template = cls(pieces, [n for _, n in found])
        parts = _response_parts(data)
        expected = _patched(data, call, strip)
        if parts is None or template.render(parts, echoed_settings(call)).data != expected.data:
            return None
        return template

    def render(self, parts: _ResponseParts, settings: tuple[bytes, bytes, bytes]) -> RelayedEvent:
        """The event of ``parts`` (an event with this template's other bytes) patched
        with a call's ``settings`` (:func:`echoed_settings`); without its object (an event
        that ends nothing: no one reads it)."""
        kind, rid, created, _, sequence = parts
        values = (b'"' + rid + b'"', created, *settings, sequence)
        pieces = self.pieces
        out = [pieces[0]]
        for gap, n in enumerate(self.order, 1):
            out += (values[n], pieces[gap])
        return RelayedEvent(kind.decode(), b"".join(out))


def echoed_settings(call: UpstreamCall) -> tuple[bytes, bytes, bytes]:
    """The JSON of the client's settings a response object echoes (as :func:`_patched`
    sets them): ``previous_response_id``, ``store`` and ``model``."""
    request = call.request
    return (
        orjson.dumps(request.previous_response_id),
        orjson.dumps(request.store),
        orjson.dumps(request.model),
    )


_ResponseParts = tuple[bytes, bytes, bytes, bytes, bytes]
"""A response-object event cut up: its type, the response's id, its creation time, the
bytes between that and the sequence number, the sequence number."""


def _response_parts(data: bytes) -> _ResponseParts | None:
    """``data`` cut at its per-turn values, if it starts as :data:`_RESPONSE_HEAD` and
    ends with its sequence number (the event's last member); else ``None``."""
    head = _RESPONSE_HEAD.match(data)
    if head is None or not data.endswith(b"}"):
        return None
    rest, member, number = data[head.end() : -1].rpartition(_SEQUENCE_MEMBER)
    if not member or not number.isdigit() or len(number) > 18:
        return None
    if number[0] == 48 and len(number) > 1:  # 48: "0"; a leading zero is not JSON
        return None
    kind, rid, created = head.groups()
    return kind, rid, created, rest, number


class ResponseTemplates:
    """Response-object events that repeat but for their ids, times and numbers, patched
    without a parse: an agent's every ``response.created`` and ``response.in_progress``
    carry the same instructions, tools and settings (3 KB with seven tool schemas; parsed
    and re-encoded, 10 µs a turn). Seen once, an event's other bytes are remembered; seen
    again, its template is learnt (:meth:`_Template.learn`); after that, an event with the
    same bytes but those values is the template filled in. The last ``capacity`` kept."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._seen: OrderedDict[tuple[bytes, bytes, bool], _Template | object | None] = (
            OrderedDict()
        )

    def patched(
        self,
        data: bytes,
        call: UpstreamCall,
        strip: bool,
        settings: tuple[bytes, bytes, bytes],
    ) -> RelayedEvent | None:
        """``data``'s event with :func:`_patched`'s type and bytes (not its object: an event
        that ends nothing), from its template; ``None`` when there is none (yet).
        ``settings``: :func:`echoed_settings` of ``call``."""
        parts = _response_parts(data)
        if parts is None:
            return None
        key = (parts[0], parts[3], strip)
        seen = self._seen
        template = seen.get(key, _MISSING)
        if isinstance(template, _Template):
            seen.move_to_end(key)
            return template.render(parts, settings)
        if template is _MISSING:  # seen once: remembered
            seen[key] = None
            if len(seen) > self.capacity:
                seen.popitem(last=False)
        elif template is None:  # seen twice: learnt (or never tried again)
            seen[key] = _Template.learn(data, call, strip) or _NO_TEMPLATE
        return None


_NO_TEMPLATE = object()
"""An event whose template cannot be learnt (not as orjson writes it)."""


def _item_stripped(data: bytes) -> bytes:
    """An output item event's JSON without the reasoning's encrypted content."""
    event = orjson.loads(data)
    event["item"] = without_encrypted_reasoning(event.get("item"))
    return orjson.dumps(event)


class _ResponsesReader(_EventReader):
    def __init__(self, call: UpstreamCall, templates: ResponseTemplates | None = None):
        self.call = call
        self.templates = templates
        self.settings: tuple[bytes, bytes, bytes] | None = None
        """:func:`echoed_settings` of the call, once a template needs them."""
        self.decoder = SSEDecoder()
        self.clean = True
        """The decoder holds nothing (its last chunk ended on a blank line)."""
        self.strip = ENCRYPTED_REASONING not in (call.request.include or ())
        """The client did not ask for encrypted reasoning: the gateway did, to carry it to
        the next turn; the client gets the items without it, as the API would send them."""
        self.echoed: _EchoedResponse | None = None
        """The last response-object event that ends nothing, as patched."""

    def feed(self, chunk: bytes) -> EventBatch:
        if not (
            self.clean
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
            and len(chunk) <= self.decoder.max_event_bytes
        ):
            batch = EventBatch()
            for message in self.decoder.feed(chunk):
                self._add(batch, message.event, message.data)
            self.clean = chunk.endswith(b"\n\n")
            return batch
        # Whole events only (the decoder holds nothing): split here, by its rules.
        whole = self._split_whole(chunk)
        if whole is not None:
            return whole
        batch = EventBatch()
        for block in chunk[:-2].split(b"\n\n"):
            if block.startswith(b"event: "):  # the decoder's two ``find`` shape
                newline = block.find(b"\n")
                if (
                    newline > 7
                    and block.startswith(b"data: ", newline + 1)
                    and block.find(b"\n", newline + 1) < 0
                ):
                    self._add(
                        batch, block[7:newline].decode("utf-8", "replace"), block[newline + 7 :]
                    )
                    continue
            for message in SSEDecoder().feed(block + b"\n\n"):  # anything else: the decoder's
                self._add(batch, message.event, message.data)
        return batch

    def _split_whole(self, chunk: bytes) -> EventBatch | None:
        """A read made only of events in the shape servers write (``event: <ASCII name>``,
        one non-empty ``data:`` line, the blank line; no ``[DONE]``), split by its lines
        in C (no Python step per event), or ``None``. The read is lines in threes, each
        ``event: `` + a name, ``data: `` + JSON and an empty one: the decoder's blocks."""
        lines = chunk.split(b"\n")
        del lines[-1]  # after the read's last newline
        count = len(lines) // 3
        if not count or len(lines) != 3 * count or any(lines[2::3]):
            return None
        named, carried = lines[0::3], lines[1::3]
        kinds = list(map(bytes.removeprefix, named, repeat(b"event: ")))
        datas = list(map(bytes.removeprefix, carried, repeat(b"data: ")))
        if (  # every prefix removed (each is removed whole or not at all), nothing empty
            sum(map(len, kinds)) + _EVENT_PREFIX * count != sum(map(len, named))
            or sum(map(len, datas)) + _DATA_PREFIX * count != sum(map(len, carried))
            or not all(kinds)
            or not all(datas)
            or b"[DONE]" in datas
            or not b"".join(kinds).isascii()
        ):
            return None
        batch = EventBatch(kinds, datas)
        if not _SPECIAL_NAMES.isdisjoint(kinds):
            for index, kind in enumerate(kinds):
                if kind in _SPECIAL_NAMES:
                    batch.replace(index, self._event(kind.decode(), datas[index]))
        return batch

    def _add(self, batch: EventBatch, name: str, data: bytes) -> None:
        """One event named ``name`` (``""``: unnamed, its JSON says); none without data."""
        if data and data != b"[DONE]":
            batch.add_event(self._event(name or event_type(data) or "", data))

    def _event(self, kind: str, data: bytes) -> RelayedEvent:
        """An event as the client gets it: response objects echo the client's settings,
        items lose what it did not ask for, the rest as they came."""
        if kind in RESPONSE_EVENTS:
            if kind in TERMINAL_EVENTS:  # parsed: its response object is recorded
                return _patched(data, self.call, self.strip)
            if self.templates is not None:
                if self.settings is None:
                    self.settings = echoed_settings(self.call)
                templated = self.templates.patched(data, self.call, self.strip, self.settings)
                if templated is not None:
                    return templated
            echoed = self.echoed
            event = echoed.next(kind, data) if echoed is not None else None
            if event is None:
                event = _patched(data, self.call, self.strip)
                self.echoed = _EchoedResponse(data, event)
            return event
        if self.strip and kind in ITEM_EVENTS and b'"encrypted_content"' in data:
            return RelayedEvent(kind, _item_stripped(data))
        return RelayedEvent(kind, data)


class _ResponsesDialect(_Dialect):
    path = "/responses"

    def body(self, call: UpstreamCall, config: UpstreamConfig) -> dict[str, Any]:
        body = {k: v for k, v in call.body.items() if k not in CLIENT_ONLY_FIELDS}
        model = config.upstream_model(call.request.model)
        context = call.transcript
        full = orjson.Fragment(context) if isinstance(context, bytes) else list(context)
        body.update(model=model, input=full, store=False, stream=True)
        if config.encrypted_reasoning:
            include = list(call.request.include or ())
            if ENCRYPTED_REASONING not in include:
                include.append(ENCRYPTED_REASONING)
            body["include"] = include
        return body

    def events(
        self, call: UpstreamCall, templates: ResponseTemplates | None = None
    ) -> _EventReader:
        return _ResponsesReader(call, templates)


class _ChatReader(_EventReader):
    def __init__(self, call: UpstreamCall):
        self.relay = ChatRelay(call.request, obfuscate=call.obfuscate)
        self.decoder = SSEDecoder()
        self.started = False

    def _encode(self, events: list[dict[str, Any]]) -> EventBatch:
        batch = EventBatch()
        for event in events:
            kind = event["type"]
            if kind in TERMINAL_EVENTS:
                batch.add_event(RelayedEvent(kind, orjson.dumps(event), event.get("response")))
            else:
                batch.add(kind.encode(), orjson.dumps(event))
        return batch

    def feed(self, chunk: bytes) -> EventBatch:
        events: list[dict[str, Any]] = []
        if not self.started:
            self.started = True
            events += self.relay.start()
        for message in self.decoder.feed(chunk):
            if not message.data or message.data == b"[DONE]":
                continue
            try:
                payload = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                raise UpstreamError("The upstream sent a chunk that is not JSON.") from None
            if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                detail = payload["error"].get("message") or "an error event"
                raise UpstreamError(f"The upstream failed mid-stream: {detail}")
            events += self.relay.feed(payload)
        return self._encode(events)

    def end(self) -> EventBatch:
        events = [] if self.started else self.relay.start()
        return self._encode(events + self.relay.finish())


class _ChatDialect(_Dialect):
    path = "/chat/completions"

    def body(self, call: UpstreamCall, config: UpstreamConfig) -> dict[str, Any]:
        source = call.body
        body: dict[str, Any] = {
            "model": config.upstream_model(call.request.model),
            "messages": chat_messages(source.get("instructions"), call.items()),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        tools = chat_tools(source.get("tools") or ())
        if tools:
            body["tools"] = tools
            body["parallel_tool_calls"] = source.get("parallel_tool_calls", True)
            if isinstance(source.get("tool_choice"), str):
                body["tool_choice"] = source["tool_choice"]
        if source.get("max_output_tokens") is not None:
            body["max_tokens"] = source["max_output_tokens"]
        for name in ("temperature", "top_p", "user", "metadata"):
            if source.get(name) is not None:
                body[name] = source[name]
        return body

    def events(
        self, call: UpstreamCall, templates: ResponseTemplates | None = None
    ) -> _EventReader:
        return _ChatReader(call)


DIALECTS: Mapping[str, _Dialect] = {"responses": _ResponsesDialect(), "chat": _ChatDialect()}
"""Every upstream dialect by name (``--dialect``)."""


class Upstream:
    """One upstream: its configuration, its key, and a pool of kept-alive HTTP/1.1
    connections (:mod:`rig.gateway.http1`; as many as ``max_in_flight`` calls at once), or
    with ``http2`` httpx's client (:mod:`rig.gateway.http2`).

    Its own client rather than aiohttp's (or httpx's): a request's head is built once per
    upstream and written with the body on a pooled connection, the answer parsed by
    llhttp (compiled, as aiohttp's); aiohttp's request and release were the gateway's
    largest cost per turn (``bench/upstream_clients.py``, docs/performance.md)."""

    def __init__(self, config: UpstreamConfig, stats: GatewayStats):
        self.config = config
        self.stats = stats
        self.dialect = DIALECTS[config.dialect]
        try:
            self.origin = Origin(config.base_url)
        except ValueError as exc:  # the URL is not repeated: it may hold secrets
            raise ConfigError(f"an upstream's base_url: {exc}") from None
        self.path = self.origin.target(self.dialect.path)
        self._call_headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "accept-encoding": "identity",  # the bytes counted are the bytes on the wire
        }
        self._call_head = request_head("POST", self.path, self.origin, self._call_headers)
        """The head of every call but its key and length (the key passed through, if any,
        is added per call)."""
        key = config.key()
        self._own_key = b"" if key is None else _authorization(key)
        self.slots = asyncio.Semaphore(config.max_in_flight)
        """Calls running at once (:attr:`UpstreamConfig.max_in_flight`): also the bound of
        the pool, which opens a connection only when none is idle."""
        self._pool: ConnectionPool | None = None
        self._h2: H2Client | None = None
        self.templates = ResponseTemplates()
        """Its repeated response-object events, patched without a parse."""

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool (made on first use, inside the event loop)."""
        if self._pool is None:
            self._pool = ConnectionPool(
                self.origin,
                connect_timeout_s=min(10.0, self.config.timeout_s),
                read_timeout_s=self.config.timeout_s,
                on_retry=self._retried,
            )
        return self._pool

    @property
    def h2(self) -> H2Client:
        """httpx's client, for an upstream called with HTTP/2 (made on first use)."""
        if self._h2 is None:
            self._h2 = H2Client(
                self.config.base_url,
                connect_timeout_s=min(10.0, self.config.timeout_s),
                read_timeout_s=self.config.timeout_s,
                max_connections=self.config.max_in_flight,
                on_retry=self._retried,
            )
        return self._h2

    def _retried(self) -> None:
        self.stats.add("upstream_retries")

    def _send(
        self,
        head: bytes,
        line: bytes,
        body: bytes = b"",
        *,
        method: str,
        target: str,
        headers: Mapping[str, str],
    ) -> Awaitable[Answer | H2Answer]:
        """One request with ``line``, its ``authorization`` (:meth:`_key_line`): ``head``
        (the rest of its HTTP/1.1 head) on the pool, or ``method``, ``target`` and
        ``headers`` through the HTTP/2 client."""
        if not self.config.http2:
            return self.pool.request(head + line, body)
        fields = dict(headers)
        if line:  # "authorization: <value>\r\n", its value checked by header_line
            fields["authorization"] = line[_AUTHORIZATION_NAME:-2].decode("latin-1")
        return self.h2.request(method, self.origin.url(target), fields, body)

    def _key_line(self, key: str | None) -> bytes:
        """The ``authorization`` line: the client's key passed through, else the
        upstream's own (or none). A key a header cannot carry is the client's to fix."""
        if key is None:
            return self._own_key
        try:
            return _authorization(key)
        except ValueError:
            raise AuthenticationError("The API key has characters a header cannot carry.") from None

    def _unreachable(self, exc: BaseException) -> UpstreamError:
        """A call that timed out (504) or could not reach the upstream (502), as the API's
        error: the exception's type only, never its text (it may hold the URL's secrets)."""
        if isinstance(exc, TimeoutError):
            return UpstreamTimeoutError(
                f"The upstream did not answer within {self.config.timeout_s:g} seconds."
            )
        return UpstreamError(f"The upstream is unreachable: {type(exc).__name__}.")

    async def close(self) -> None:
        """Close the connection pool (or the HTTP/2 client's)."""
        if self._pool is not None:
            self._pool.close()
        if self._h2 is not None:
            await self._h2.aclose()

    async def stream(self, call: UpstreamCall) -> AsyncIterator[RelayedEvent]:
        """The events of one upstream call, one by one (:meth:`batches`)."""
        batches = self.batches(call)
        try:
            async for batch in batches:
                for event in batch.events():
                    yield event
        finally:
            await batches.aclose()

    async def batches(self, call: UpstreamCall) -> AsyncGenerator[EventBatch, None]:
        """The events of one upstream call, as they arrive: a batch per read (possibly
        empty). Raises an :class:`APIError` (the API's shape) for a refusal before the
        stream (on the first ``anext``) or a failure during it."""
        body = orjson.dumps(self.dialect.body(call, self.config))
        line = self._key_line(call.key)
        stats = self.stats
        stats.add("upstream_requests")
        stats.add("upstream_bytes_out", len(body))
        reader = self.dialect.events(call, self.templates)
        async with self.slots:  # --upstream max_in_flight: the rest wait their turn
            try:
                sent = time.perf_counter()
                answer = await self._send(
                    self._call_head,
                    line,
                    body,
                    method="POST",
                    target=self.path,
                    headers=self._call_headers,
                )
                try:
                    if answer.status != 200:
                        raw = await answer.read_all()
                        stats.add("upstream_bytes_in", len(raw))
                        refusal = upstream_refusal(
                            answer.status, answer.headers, raw, client_key=call.key is not None
                        )
                        stats.add(
                            "upstream_rate_limited"
                            if isinstance(refusal, RateLimitError)
                            else "upstream_errors"
                        )
                        raise refusal
                    chunk = await answer.read()
                    if chunk:
                        ttfb = time.perf_counter() - sent
                        call.timing["ttfb_s"] = ttfb
                        stats.add("upstream_ttfb_us", int(ttfb * 1e6))
                        stats.observe("upstream_ttfb_seconds", ttfb)
                    while chunk:
                        stats.add("upstream_bytes_in", len(chunk))
                        yield reader.feed(chunk)
                        chunk = await answer.read()
                finally:
                    await answer.aclose()
                yield reader.end()
            except (TimeoutError, OSError, HTTPClientError) as exc:
                stats.add("upstream_errors")
                raise self._unreachable(exc) from None
            except SSEError as exc:
                stats.add("upstream_errors")
                raise UpstreamError(f"The upstream's stream is unreadable: {exc}") from None

    async def get_json(self, path: str, key: str | None = None) -> dict[str, Any]:
        """``GET {base}{path}`` (the Models API): the upstream's JSON object; its refusal
        as the API's error (:func:`upstream_refusal`), a failure as :class:`UpstreamError`."""
        target = self.origin.target(path)
        headers = {"accept": "application/json"}
        try:
            head = request_head("GET", target, self.origin, headers)
        except ValueError:
            raise InvalidRequestError("The path has characters a request cannot carry.") from None
        line = self._key_line(key)
        async with self.slots:  # the pool's bound
            try:
                answer = await self._send(head, line, method="GET", target=target, headers=headers)
                try:
                    raw = await answer.read_all()
                finally:
                    await answer.aclose()
            except (TimeoutError, OSError, HTTPClientError) as exc:
                raise self._unreachable(exc) from None
        if answer.status != 200:
            raise upstream_refusal(answer.status, answer.headers, raw, client_key=key is not None)
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream answered with a body that is not JSON.") from None
        if not isinstance(value, dict):
            raise UpstreamError("The upstream answered with a body that is not a JSON object.")
        return value
