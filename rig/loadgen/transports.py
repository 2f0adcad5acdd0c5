"""The transports: how one agent turn travels to the target and back.

| name           | each turn sends                                               |
|----------------|---------------------------------------------------------------|
| ``http``         | Responses API over HTTP, the full ``input``, ``store=false``      |
| ``http_chained`` | HTTP, ``previous_response_id`` + new items, ``store=true``        |
| ``ws``           | WebSocket mode, ``previous_response_id`` + new items, ``store=false`` |
| ``ws_stored``    | WebSocket mode, the same with ``store=true``                      |
| ``chat``         | Chat Completions, the full ``messages``                          |

Every transport sends the instructions and tools each turn (the API does not carry them
over with ``previous_response_id``). Recovery follows the protocol: a
``previous_response_not_found`` answer, or a WebSocket that closed (age limit, restart),
is recovered by resending the full context without ``previous_response_id`` - or, with
``store=true``, by continuing from the store over a new connection - and the turn is
recorded with status ``reconnected``. Bytes come from the session's
:class:`~rig.loadgen.wire.WireCounter`; times from one monotonic clock. A turn, recoveries
included, has one deadline (``timeout``, the ``--request-timeout``): one timer per turn,
not one per read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import orjson
from websockets.exceptions import InvalidState

from rig.loadgen import registry
from rig.loadgen.backoff import RetryPolicy
from rig.loadgen.http import HTTPConnection, HTTPError
from rig.loadgen.target import Target
from rig.loadgen.wire import TcpInfo, WireCounter
from rig.loadgen.ws import WSClosedError, WSConnection, WSHandshakeError
from rig.protocol.sniff import TERMINAL_TYPES, event_type, is_terminal_event
from rig.protocol.sse import SSEDecoder
from rig.protocol.ws import CONNECTION_LIMIT_CODE, encode_client_event

__all__ = [
    "TRANSPORT_NAMES",
    "ChatTransport",
    "HTTPTransport",
    "Transport",
    "TurnInput",
    "TurnOutcome",
    "WSTransport",
    "make_transport",
]

TRANSPORT_NAMES = registry.names()
DELTA_TYPES = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})
MAX_RECOVERIES = 2


@dataclass
class TurnInput:
    """What the agent sends this turn, in Responses API item form."""

    transcript: list[dict[str, Any]]
    """The whole conversation so far, ending with this turn's new items."""
    new_items: list[dict[str, Any]]
    """Items added since the previous response (the user prompt, or tool outputs)."""
    previous_response_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


DEFAULT_RETRY = RetryPolicy()
"""Honour retry-after with jittered exponential back-off (rig.loadgen.backoff)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One attempt a rate limit refused: when, which limit, what the target said."""

    ts: float
    limit: str
    retry_after_ms: float
    remaining: int
    waited_ms: float = 0.0
    """How long the session then waited before trying again (0: it gave up)."""


@dataclass
class TurnOutcome:
    """What came back, and what it cost on the wire and in time."""

    status: str = "ok"
    response_id: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    bytes_sent: int = 0
    bytes_recv: int = 0
    body_bytes_sent: int = 0
    body_bytes_recv: int = 0
    ttfb_ms: float = 0.0
    ttft_ms: float = 0.0
    turn_ms: float = 0.0
    retries: int = 0
    error: str = ""
    error_code: str | None = None
    limit: str = ""
    """For a rate-limited attempt: which limit (requests, tokens, inflight, connections)."""
    retry_after_s: float | None = None
    """For a rate-limited attempt: how long the target asked the client to wait."""
    remaining: int = -1
    """For a rate-limited attempt: what the target said was left of that limit (-1: not said)."""
    retryable: bool = True
    """For a rate-limited attempt: ``False`` when waiting cannot help (request too large)."""
    rejections: list[Rejection] = field(default_factory=list)
    """Every rate-limited attempt of this turn, retried or not."""
    rate_limit_retries: int = 0
    """Attempts repeated after a rate limit (besides ``retries``, the recoveries)."""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The function calls the model made."""
        return [item for item in self.output if item.get("type") == "function_call"]


class _Timing:
    """One turn's clock: start at the first request byte, marks on the way back."""

    __slots__ = ("first_delta", "first_event", "start")

    def __init__(self) -> None:
        self.start: float | None = None
        self.first_event: float | None = None
        self.first_delta: float | None = None

    def sent(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def event(self, kind: str | None) -> None:
        now = time.perf_counter()
        if self.first_event is None:
            self.first_event = now
        if self.first_delta is None and kind in DELTA_TYPES:
            self.first_delta = now

    def finish(self, outcome: TurnOutcome) -> None:
        end = time.perf_counter()
        start = self.start if self.start is not None else end
        outcome.turn_ms = (end - start) * 1000
        outcome.ttfb_ms = ((self.first_event or end) - start) * 1000
        outcome.ttft_ms = ((self.first_delta or self.first_event or end) - start) * 1000


def _apply_terminal(outcome: TurnOutcome, event: dict[str, Any]) -> None:
    """Fill ``outcome`` from a terminal Responses API event (replacing an earlier
    attempt's error)."""
    kind = event.get("type")
    outcome.error_code = None
    outcome.error = ""
    if kind == "error":
        error = event.get("error") or {}
        outcome.error_code = error.get("code")
        outcome.error = f"{error.get('code')}: {error.get('message')}"
        outcome.status = "rate_limited" if outcome.error_code == "rate_limit_exceeded" else "error"
        if outcome.status == "rate_limited":
            _rate_limit_details(outcome, error, error.get("headers") or {})
        return
    response = event.get("response") or {}
    outcome.response_id = response.get("id")
    outcome.output = response.get("output") or []
    usage = response.get("usage") or {}
    outcome.input_tokens = usage.get("input_tokens", 0)
    outcome.cached_tokens = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
    outcome.output_tokens = usage.get("output_tokens", 0)
    if kind == "response.failed":
        error = response.get("error") or {}
        outcome.status = "error"
        outcome.error_code = error.get("code")
        outcome.error = f"response.failed: {error.get('message')}"
    else:
        outcome.status = "ok"


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _rate_limit_details(outcome: TurnOutcome, error: dict[str, Any], headers: Any) -> None:
    """Which limit refused, how long to wait, what is left: from the OpenAI error's
    ``type`` and message and the ``retry-after-ms`` / ``retry-after`` and
    ``x-ratelimit-remaining-*`` headers (HTTP headers, or a WebSocket error's
    ``error.headers``)."""
    headers = {str(k).lower(): v for k, v in dict(headers).items()}
    message = str(error.get("message") or "")
    if error.get("type") == "tokens":
        outcome.limit = "tokens"
    elif "concurrent" in message:
        outcome.limit = "inflight"
    elif "connections" in message:
        outcome.limit = "connections"
    else:
        outcome.limit = "requests"
    wait_ms = _number(headers.get("retry-after-ms"))
    if wait_ms is None and (seconds := _number(headers.get("retry-after"))) is not None:
        wait_ms = seconds * 1000
    outcome.retry_after_s = wait_ms / 1000 if wait_ms is not None else None
    kind = outcome.limit if outcome.limit in ("requests", "tokens") else "requests"
    remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
    outcome.remaining = int(remaining) if remaining is not None else -1
    outcome.retryable = not message.startswith("Request too large")


def _error_from_body(outcome: TurnOutcome, status: int, body: bytes, headers: Any = None) -> None:
    """Fill ``outcome`` from an HTTP error answer (the OpenAI error shape, or anything)."""
    try:
        error = orjson.loads(body).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    outcome.error_code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    outcome.error = f"HTTP {status}: {message or body[:200].decode('utf-8', 'replace')}"
    limited = status == 429 or outcome.error_code == "rate_limit_exceeded"
    outcome.status = "rate_limited" if limited else "error"
    if limited:
        _rate_limit_details(outcome, error if isinstance(error, dict) else {}, headers or {})


class Transport:
    """Carries turns for one agent session; one instance per session."""

    name = "abstract"
    store = False
    chained = False

    def __init__(
        self,
        target: Target,
        counter: WireCounter,
        *,
        instructions: str,
        tools: Sequence[dict[str, Any]],
        timeout: float = 120.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        seed: int = 0,
    ):
        self.target = target
        self.counter = counter
        self.instructions = instructions
        self.tools = list(tools)
        self.timeout = timeout
        self.retry = retry
        self._rng = random.Random(seed)

    def turn(self, turn: TurnInput) -> TurnOutcome:
        """Run one turn; never raises for target or network failures (status says)."""
        return self._run(turn)

    def close(self) -> None:
        """Release connections."""

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's byte counters of the current connection, if one is open."""
        return None

    def _body(self, turn: TurnInput, chained: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.target.model,
            "instructions": self.instructions,
            "tools": self.tools,
            "store": self.store,
        }
        if not self.store:
            # Nothing is kept server-side, so a reasoning model's thoughts come back
            # encrypted and travel with every full-context request (as Codex does).
            body["include"] = ["reasoning.encrypted_content"]
        if chained and turn.previous_response_id:
            body["previous_response_id"] = turn.previous_response_id
            body["input"] = turn.new_items
        else:
            body["input"] = turn.transcript
        if turn.metadata:
            body["metadata"] = turn.metadata
        return body

    def _run(self, turn: TurnInput) -> TurnOutcome:
        """The turn, repeated after each rate-limited attempt as the retry policy says:
        times run from the first attempt (waits included), bytes add up over attempts."""
        outcome = TurnOutcome()
        timing = _Timing()
        sent0, recv0 = self.counter.snapshot()
        attempt = 0
        while True:
            self._attempt(turn, outcome, timing)
            if outcome.status != "rate_limited":
                break
            wait_ms = (outcome.retry_after_s or 0.0) * 1000
            attempt += 1
            delay = self.retry.delay(attempt, outcome.retry_after_s, self._rng)
            if not outcome.retryable:
                delay = None
            outcome.rejections.append(
                Rejection(
                    time.time(), outcome.limit, wait_ms, outcome.remaining, (delay or 0.0) * 1000
                )
            )
            if delay is None:
                break
            outcome.rate_limit_retries += 1
            timing.first_event = timing.first_delta = None  # the next attempt's count
            gevent.sleep(delay)
        timing.finish(outcome)
        sent1, recv1 = self.counter.snapshot()
        outcome.bytes_sent, outcome.bytes_recv = sent1 - sent0, recv1 - recv0
        return outcome

    def _attempt(self, turn: TurnInput, outcome: TurnOutcome, timing: _Timing) -> None:
        """One attempt (with its protocol recoveries) under the turn timeout."""
        deadline = gevent.Timeout(self.timeout)
        deadline.start()
        try:
            self._attempts(turn, outcome, timing)
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            outcome.status = "timeout"
            outcome.error = f"timed out: the turn took longer than {self.timeout:g} s"
            self._drop()
        except TimeoutError as exc:  # connecting
            outcome.status, outcome.error = "timeout", f"timed out: {exc}"
            self._drop()
        except WSHandshakeError as exc:
            if exc.status == 429:  # too many connections: a rate limit on the handshake
                _error_from_body(outcome, 429, exc.body)
                if outcome.limit == "requests":
                    outcome.limit = "connections"
            else:
                outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
            self._drop()
        except (OSError, HTTPError, WSClosedError) as exc:
            outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
            self._drop()
        finally:
            deadline.close()

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: _Timing) -> None:
        raise NotImplementedError

    def _drop(self) -> None:
        """Forget a connection after a failure."""


class _SSEReader:
    """Consumes a Responses API stream: SSE events, timing marks, the terminal event."""

    def __init__(self, timing: _Timing):
        self.decoder = SSEDecoder()
        self.timing = timing
        self.terminal: dict[str, Any] | None = None

    def __call__(self, chunk: bytes) -> None:
        timing = self.timing
        for message in self.decoder.feed(chunk):
            kind = message.event
            if timing.first_delta is None:  # the type matters only until the first delta
                timing.event(kind or event_type(message.data))
            terminal = (kind in TERMINAL_TYPES) if kind else is_terminal_event(message.data)
            if terminal:
                self.terminal = orjson.loads(message.data)


class _OverHTTP(Transport):
    """A transport on one keep-alive HTTP/1.1 connection."""

    def __init__(self, target: Target, counter: WireCounter, **kw: Any):
        super().__init__(target, counter, **kw)
        self.connection = HTTPConnection(
            target.host, target.port, counter, tls=target.ssl_context(), timeout=self.timeout
        )

    def _drop(self) -> None:
        self.connection.close()

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the keep-alive connection."""
        return self.connection.tcp_info()

    def close(self) -> None:
        """Close the keep-alive connection."""
        self.connection.close()


class HTTPTransport(_OverHTTP):
    """Responses API over HTTP with SSE: ``http`` (full context) or ``http_chained``."""

    def __init__(self, target: Target, counter: WireCounter, *, chained: bool, **kw: Any):
        super().__init__(target, counter, **kw)
        self.chained = chained
        self.store = chained
        self.name = "http_chained" if chained else "http"
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **target.auth_headers(),
        }

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: _Timing) -> None:
        chained = self.chained
        for _ in range(MAX_RECOVERIES + 1):
            body = orjson.dumps(dict(self._body(turn, chained), stream=True))
            reader = _SSEReader(timing)
            result = self.connection.request(
                "POST",
                self.target.base_path + "/responses",
                body,
                self._headers,
                reader,
                on_sent=timing.sent,
            )
            outcome.body_bytes_sent += len(body)
            outcome.body_bytes_recv += result.body_bytes
            if result.status != 200:
                _error_from_body(outcome, result.status, result.error_body, result.headers)
            elif reader.terminal is None:
                outcome.status, outcome.error = "error", "stream ended without a terminal event"
            else:
                _apply_terminal(outcome, reader.terminal)
            if outcome.error_code == "previous_response_not_found" and chained:
                # The documented recovery: resend the whole context, no previous id.
                chained = False
                outcome.retries += 1
                continue
            if outcome.status == "ok" and outcome.retries:
                outcome.status = "reconnected"
            return


class WSTransport(Transport):
    """Responses API WebSocket mode: ``ws`` (``store=false``) or ``ws_stored``."""

    chained = True

    def __init__(self, target: Target, counter: WireCounter, *, store: bool, **kw: Any):
        super().__init__(target, counter, **kw)
        self.store = store
        self.name = "ws_stored" if store else "ws"
        self.connection: WSConnection | None = None
        self.connects = 0

    def _connect(self) -> WSConnection:
        connection = WSConnection.connect(
            self.target.ws_url,
            self.counter,
            headers=self.target.auth_headers(),
            timeout=self.timeout,
            tls=self.target.ssl_context(),
        )
        self.connects += 1
        return connection

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: _Timing) -> None:
        chained = True
        for _ in range(MAX_RECOVERIES + 1):
            timing.sent()  # the handshake counts toward the turn's time and bytes
            if self.connection is None or not self.connection.open:
                if self.connection is not None or self.connects:
                    # A new connection after the first: memory of the old one is gone.
                    outcome.retries += 1
                    chained = chained and self.store
                self.connection = self._connect()
            payload = encode_client_event(self._body(turn, chained))
            try:
                terminal = self._exchange(self.connection, payload, outcome, timing)
            except (WSClosedError, InvalidState, ConnectionError):
                # Closed or reset under us (age limit, restart): reconnect and resend.
                self.connection.close()
                self.connection = None
                continue
            _apply_terminal(outcome, terminal)
            if outcome.error_code == CONNECTION_LIMIT_CODE:
                self.connection.close()
                self.connection = None
                continue
            if outcome.error_code == "previous_response_not_found" and chained:
                chained = False
                outcome.retries += 1
                continue
            if outcome.status == "ok" and outcome.retries:
                outcome.status = "reconnected"
            return
        outcome.status = "error"
        outcome.error = outcome.error or "connection kept closing; gave up"

    def _exchange(
        self, connection: WSConnection, payload: bytes, outcome: TurnOutcome, timing: _Timing
    ) -> dict[str, Any]:
        connection.send_text(payload)
        outcome.body_bytes_sent += len(payload)  # written: a stale connection takes it too
        while True:
            messages = connection.receive()
            for index, message in enumerate(messages):
                outcome.body_bytes_recv += len(message)
                if timing.first_delta is None:  # the type matters only until the first delta
                    timing.event(event_type(message))
                if is_terminal_event(message):
                    connection.unreceive(messages[index + 1 :])  # e.g. a stale age-limit error
                    return orjson.loads(message)

    def _drop(self) -> None:
        if self.connection is not None:
            self.connection.abort()
            self.connection = None

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the WebSocket's connection."""
        return self.connection.wire.tcp_info() if self.connection is not None else None

    def close(self) -> None:
        """Close the WebSocket."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _chat_messages(instructions: str, transcript: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Responses-form conversation as Chat Completions messages."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}]
    for item in transcript:
        kind = item.get("type", "message")
        if kind == "message":
            content = item["content"]
            if not isinstance(content, str):
                content = "".join(part.get("text", "") for part in content)
            if item["role"] == "assistant" and messages[-1].get("role") == "assistant":
                messages[-1]["content"] = (messages[-1].get("content") or "") + content
            else:
                messages.append({"role": item["role"], "content": content})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            if messages[-1].get("role") == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    return messages


class _ChatReader:
    """Consumes a streamed chat completion: chunks accumulated into text and tool calls."""

    def __init__(self, timing: _Timing):
        self.decoder = SSEDecoder()
        self.timing = timing
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.done = False

    def __call__(self, chunk: bytes) -> None:
        for message in self.decoder.feed(chunk):
            if message.data == b"[DONE]":
                self.done = True
                self.timing.event(None)
                continue
            data = orjson.loads(message.data)
            content = False
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self.text.append(delta["content"])
                    content = True
                for call in delta.get("tool_calls") or ():
                    slot = self.calls.setdefault(call["index"], {"arguments": []})
                    if call.get("id"):
                        slot["id"] = call["id"]
                    function = call.get("function") or {}
                    if function.get("name"):
                        slot["name"] = function["name"]
                    if function.get("arguments"):
                        slot["arguments"].append(function["arguments"])
                        content = True
            if data.get("usage"):
                self.usage = data["usage"]
            self.timing.event("response.output_text.delta" if content else "chunk")


class ChatTransport(_OverHTTP):
    """Chat Completions with streaming: the full ``messages`` every turn."""

    name = "chat"

    def __init__(self, target: Target, counter: WireCounter, **kw: Any):
        super().__init__(target, counter, **kw)
        self._tools = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                },
            }
            for tool in self.tools
        ]
        self._headers = {"Content-Type": "application/json", **target.auth_headers()}

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: _Timing) -> None:
        body: dict[str, Any] = {
            "model": self.target.model,
            "messages": _chat_messages(self.instructions, turn.transcript),
            "tools": self._tools,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if turn.metadata:
            body["metadata"] = turn.metadata
        payload = orjson.dumps(body)
        reader = _ChatReader(timing)
        result = self.connection.request(
            "POST",
            self.target.base_path + "/chat/completions",
            payload,
            self._headers,
            reader,
            on_sent=timing.sent,
        )
        outcome.body_bytes_sent = len(payload)
        outcome.body_bytes_recv = result.body_bytes
        if result.status != 200:
            _error_from_body(outcome, result.status, result.error_body, result.headers)
            return
        if not reader.done:
            outcome.status, outcome.error = "error", "stream ended without [DONE]"
            return
        text = "".join(reader.text)
        if text:
            content = [{"type": "output_text", "text": text, "annotations": []}]
            outcome.output.append({"type": "message", "role": "assistant", "content": content})
        for index in sorted(reader.calls):
            call = reader.calls[index]
            outcome.output.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id", f"call_{index}"),
                    "name": call.get("name", ""),
                    "arguments": "".join(call["arguments"]),
                }
            )
        usage = reader.usage
        outcome.input_tokens = usage.get("prompt_tokens", 0)
        outcome.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        outcome.output_tokens = usage.get("completion_tokens", 0)
        outcome.status = "ok"


def make_transport(name: str, target: Target, counter: WireCounter, **common: Any) -> Transport:
    """The transport registered as ``name`` (:mod:`rig.loadgen.registry`); ``common`` are
    the keyword arguments of :class:`Transport` (``instructions``, ``tools``, ``timeout``,
    ``retry``, ``seed``)."""
    transport: Transport = registry.spec(name).factory()(target, counter, **common)
    return transport
