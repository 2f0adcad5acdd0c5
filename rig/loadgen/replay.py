"""Replaying a traced session over a transport: each traced turn becomes the request this
transport would really send for it (docs/traces.md, "Replay").

:class:`TraceReplay` holds one replayed session's conversation: the items it sent and
the target's answers. For each traced turn it makes the new input items (of the traced
kinds and sizes, tool outputs answering the calls the target really made), the
instructions and tools of the traced sizes (resent when the trace shows the agent resent
them; a stateless request always carries them), the ``metadata.rig_trace_output`` that
asks the mock for the traced answer, and filler in ``metadata`` that brings the
request's other fields (what a client sends besides instructions, tools and input) to
the traced size. The transport then sends the full context or a continuation, as it
does. A warm-up (``generate: false``) is sent over WebSocket only: an HTTP agent has none,
so its items go with the next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rig.loadgen.transports import Transport, TurnInput
from rig.traces.format import Item, Session, TurnTrace
from rig.workload.replay import TRACE_OUTPUT_KEY, TurnBuilder, encode_output, pad_metadata

__all__ = ["ReplayedTurn", "TraceReplay", "comparable"]

_CALL_TYPES = frozenset({"function_call", "custom_tool_call"})
_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
_DEFAULT_OUTPUT_BYTES = 64
"""The size of a tool output the trace does not give (a call it never answered)."""
_STREAM_FIELD = len(',"stream":true')
"""An HTTP request's own field when it asks for SSE."""
_TYPE_FIELD = len('"type":"response.create",')
"""A WebSocket message's own field."""
_PREVIOUS_FIELD = len(',"previous_response_id":')
"""The key of a continuation's field (its value is the id, quoted)."""


def comparable(transport: str, traced: str | None) -> bool:
    """Whether a turn sent over ``transport`` should have the traced body size: the same
    transport (``ws``, ``ws_stored``, ``ws_mux``: WebSocket; ``http``, ``http_chained``:
    HTTP, traced as ``http`` or ``sse``)."""
    if traced is None:
        return False
    if transport.startswith("ws"):
        return traced == "ws"
    return transport.startswith("http") and traced in ("http", "sse")


@dataclass(frozen=True)
class ReplayedTurn:
    """One request to send: the transport's input and the traced turn it replays, with
    the traced body size when the transports match (``None``: nothing to compare)."""

    input: TurnInput
    traced: TurnTrace
    traced_body_bytes: int | None


class TraceReplay:
    """One traced session replayed over one transport: :meth:`next_turn` gives each
    request in order (``None`` at the end), :meth:`answered` takes the target's answer."""

    def __init__(self, session: Session, transport: Transport, builder: TurnBuilder):
        self.session = session
        self.transport = transport
        self.builder = builder
        self.position = 0
        self.transcript: list[dict[str, Any]] = []
        self._sizes: list[int] = []
        """Each transcript item's compact JSON size."""
        self.previous: str | None = None
        self._calls: list[dict[str, Any]] = []
        """The calls of the last answer, still to be answered."""
        self._tools: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._instructions: dict[int, str] = {}
        self._last_tools: list[dict[str, Any]] = []
        self._last_instructions = ""

    @property
    def websocket(self) -> bool:
        """Whether the transport speaks WebSocket mode (warm-ups are sent)."""
        return self.transport.name.startswith("ws")

    def next_turn(self) -> ReplayedTurn | None:
        """The next request (``None``: the traced session is over)."""
        turns = self.session.turns
        while self.position < len(turns):
            traced = turns[self.position]
            self.position += 1
            new_items = self._new_items(traced)
            self._add(new_items)
            if traced.kind == "warmup" and not self.websocket:
                continue  # in the transcript: an HTTP agent sends them with its next request
            return self._request(traced, new_items)
        return None

    def answered(self, output: Sequence[dict[str, Any]], response_id: str | None) -> None:
        """The target's answer to the last request: its output joins the conversation,
        its calls are answered by the next turn's tool outputs."""
        self.previous = response_id
        self._add(list(output))
        self._calls = [item for item in output if item.get("type") in _CALL_TYPES]

    def _add(self, items: list[dict[str, Any]]) -> None:
        self.transcript.extend(items)
        self._sizes.extend(len(orjson.dumps(item)) for item in items)

    def _new_items(self, traced: TurnTrace) -> list[dict[str, Any]]:
        """The traced turn's input items; tool outputs answer the last answer's calls in
        order (one with no call left becomes a message), and calls the trace left
        unanswered get an output of the traced (or a small) size."""
        calls = list(self._calls)
        self._calls = []
        items = []
        for item in traced.input:
            call_id = None
            if item.type in _OUTPUT_TYPES and calls:
                call = calls.pop(0)
                call_id = str(call.get("call_id", ""))
                item = Item(_output_type(call), item.bytes)
            items.append(self.builder.item(item, call_id))
        previous = self.session.turns[traced.index - 1] if traced.index else None
        sizes = [c.output_bytes for c in previous.tool_calls] if previous is not None else []
        # The calls left are the answer's last ones: each gets its own traced size.
        first = len(sizes) - len(calls)
        for offset, call in enumerate(calls):
            size = sizes[first + offset] if first >= 0 else None
            items.append(self.builder.output_for(call, size or _DEFAULT_OUTPUT_BYTES))
        return items

    def _parts(self, traced: TurnTrace) -> tuple[str, list[dict[str, Any]]]:
        """This request's instructions and tools: the traced sizes (the same text for the
        same size, as an agent resends the same ones), else the last ones for a request
        carrying its whole context."""
        stateless = not self.transport.chained or self.previous is None
        if traced.tools_bytes:
            key = (traced.tool_count or 1, traced.tools_bytes)
            if key not in self._tools:
                self._tools[key] = self.builder.tools(*key)
            tools = self._last_tools = self._tools[key]
        else:
            tools = self._last_tools if stateless or traced.tools_bytes is None else []
        if traced.instructions_bytes:
            size = traced.instructions_bytes
            if size not in self._instructions:
                self._instructions[size] = self.builder.instructions(size)
            instructions = self._last_instructions = self._instructions[size]
        else:
            keep = stateless or traced.instructions_bytes is None
            instructions = self._last_instructions if keep else ""
        return instructions, tools

    def _request(self, traced: TurnTrace, new_items: list[dict[str, Any]]) -> ReplayedTurn:
        instructions, tools = self._parts(traced)
        metadata = {TRACE_OUTPUT_KEY: encode_output(traced.output)}
        fields: dict[str, Any] = {}
        if traced.kind == "warmup":
            fields = {"generate": False} if self.websocket else {}
        turn = TurnInput(
            list(self.transcript),
            new_items,
            self.previous,
            metadata,
            instructions=instructions,
            tools=tools,
            fields=fields,
        )
        if traced.body_bytes is not None:
            self._pad(turn, traced, new_items)
        match = comparable(self.transport.name, traced.transport)
        return ReplayedTurn(turn, traced, traced.body_bytes if match else None)

    def _pad(self, turn: TurnInput, traced: TurnTrace, new_items: list[dict[str, Any]]) -> None:
        """Bring the request's other fields to the traced turn's: its body less its
        instructions, tools and items (and the items' commas and brackets), and less the
        fields of how it travelled (``stream``, WebSocket's ``type``, a continuation's
        ``previous_response_id``), which this request has of its own. An imported turn
        (transport unknown) has the body of an HTTP request asking for SSE."""
        assert traced.body_bytes is not None
        count = traced.carried_items + len(traced.input)
        parts = (traced.instructions_bytes or 0) + (traced.tools_bytes or 0)
        traced_other = traced.body_bytes - parts - traced.carried_bytes - traced.input_bytes
        traced_other -= count + 1
        chained = self.transport.chained and self.previous is not None
        previous = _PREVIOUS_FIELD + len(orjson.dumps(self.previous)) if self.previous else 0
        traced_other -= _own_fields(
            traced.transport or "sse", traced.previous_response_id, previous
        )
        sent = len(new_items) if chained else len(self.transcript)
        items_bytes = sum(self._sizes[len(self._sizes) - sent :]) + sent + 1
        ours = len(turn.instructions or "") + len(orjson.dumps(turn.tools or []))
        ours += _own_fields("ws" if self.websocket else "sse", chained, previous)
        size = self.transport.body_size(turn)
        need = traced_other - (size - ours - items_bytes)
        if need > 0:
            turn.metadata = pad_metadata(turn.metadata, need)


def _own_fields(transport: str, continuation: bool, previous: int) -> int:
    """Bytes of the fields a request has for how it travels: WebSocket's ``type`` or an
    SSE request's ``stream``, and a continuation's ``previous_response_id`` (``previous``
    bytes: a traced id is taken to be as long as the target's)."""
    own = _TYPE_FIELD if transport == "ws" else _STREAM_FIELD if transport == "sse" else 0
    return own + (previous if continuation else 0)


def _output_type(call: dict[str, Any]) -> str:
    """The output item type that answers ``call``."""
    if call.get("type") == "custom_tool_call":
        return "custom_tool_call_output"
    return "function_call_output"
