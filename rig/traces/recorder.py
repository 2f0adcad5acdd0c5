"""Recording the sessions a server answers as a trace: one file per process.

A server shell (the mock; the gateway can use it alike) tells the recorder about each
request it accepted (:meth:`TraceRecorder.begin`, with the body as received), its response
(:meth:`~TraceRecorder.end`) and closed WebSocket connections; the recorder groups requests
into sessions and writes each turn once the session's next request arrives (its gap and
its tool calls' outputs are known then), or when the session ends (connection closed,
evicted, server stopped).

Which session a request belongs to (docs/traces.md, "Recording"):

- over WebSocket, its connection (and its ``stream_id`` lane, when it names one);
- over HTTP with ``previous_response_id``, the session of that response;
- over HTTP without it (stateless, full context), the session whose conversation so far
  (the last request's input and its response's output) is the longest prefix of this
  request's input, comparing items by :func:`rig.traces.shape.fingerprint`; an idle
  session of those, the oldest first; else a new session.

Nothing here does I/O but the :class:`~rig.traces.format.TraceWriter`'s appends, and
nothing runs when a server records nothing: the server holds no recorder then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rig.traces.format import (
    SessionInfo,
    ToolCall,
    TraceHeader,
    TraceWriter,
    TurnTrace,
    kind_of,
)
from rig.traces.shape import (
    agent_name,
    describe,
    fingerprint,
    input_items,
    json_bytes,
    output_items,
    tool_calls,
    tool_output_bytes,
    usage_of,
)

__all__ = ["RecordingTurn", "TraceRecorder"]


@dataclass(eq=False)
class _Live:
    """A session the recorder is following."""

    info: SessionInfo
    started: float
    count: int = 0
    busy: int = 0
    pending: TurnTrace | None = None
    pending_end: float = 0.0
    pending_calls: list[tuple[str | None, ToolCall]] = field(default_factory=list)
    expected: tuple[int, bytes] | None = None
    """The length and digest of the conversation a stateless next request starts with."""
    closed: bool = False


@dataclass(eq=False)
class RecordingTurn:
    """A request the recorder was told about, until its response ends."""

    live: _Live
    arrived: float
    request: dict[str, Any]
    """What the turn record takes from the request."""
    prefix_state: Any
    """The running digest over the request's input fingerprints (for the next match)."""
    prefix_count: int
    new_items: list[Any]
    done: bool = False


class TraceRecorder:
    """Follows sessions and appends their turns to one file per process:
    ``DIRECTORY/<source>-<time>-<pid>-<tag>.jsonl``. A session's ``start_s`` is when its
    first request arrived, on ``clock``, after this recorder's first session began."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        keep_content: bool = False,
        source: str = "mock",
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 10_000,
    ):
        self.keep_content = keep_content
        self.clock = clock
        self.max_sessions = max_sessions
        self.tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        now = datetime.now(UTC)
        self.path = Path(directory) / f"{source}-{now:%Y%m%d-%H%M%S}-{self.tag}.jsonl"
        header = TraceHeader(
            source=source, created=now.isoformat(timespec="seconds"), content=keep_content
        )
        self.writer = TraceWriter(self.path, header)
        self._numbers = 0
        self._first_start: float | None = None
        """When this recorder's first session began: every session's ``start_s`` counts
        from it."""
        self._sessions: OrderedDict[str, _Live] = OrderedDict()
        self._by_response: OrderedDict[str, _Live] = OrderedDict()
        self._by_prefix: dict[tuple[int, bytes], list[_Live]] = {}
        self._lengths: Counter[int] = Counter()
        self._by_lane: dict[tuple[object, str | None], _Live] = {}

    # -- the server's calls -----------------------------------------------------------

    def begin(
        self,
        body: bytes,
        *,
        transport: str,
        header_bytes: int | None,
        user_agent: str | None = None,
        connection: object | None = None,
        lane: str | None = None,
        handshake_bytes: int | None = None,
    ) -> RecordingTurn | None:
        """A request the server accepted (its body or WebSocket message as received);
        ``None`` when it is not a JSON object (the server refused it anyway)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        now = self.clock()
        items = input_items(data)
        prints = [fingerprint(item) for item in items]
        previous = data.get("previous_response_id")
        continuing = isinstance(previous, str) and bool(previous)
        live: _Live | None = None
        carried = 0
        if connection is not None:
            live = self._by_lane.get((connection, lane))
            if live is not None and live.closed:
                live = None
            if live is not None and not continuing and live.expected is not None:
                carried = _carried(prints, live.expected)
        elif continuing:
            live = self._by_response.get(str(previous))
            if live is not None and live.closed:
                live = None
        else:
            live, carried = self._match(prints)
        if live is None:
            live = self._open(data, now, transport, user_agent, handshake_bytes)
            if connection is not None:
                self._by_lane[(connection, lane)] = live
        self._sessions.move_to_end(live.info.session)
        self._settle_pending(live, now, items[carried:])
        live.busy += 1
        digest = hashlib.blake2b(digest_size=16)
        count = 0
        for fp in prints:
            if fp is not None:
                digest.update(fp)
                count += 1
        carried_items = items[:carried]
        new_items = items[carried:]
        request = {
            "kind": kind_of(_kind(data, continuing)),
            "transport": transport,
            "header_bytes": header_bytes,
            "body_bytes": len(body),
            "model": str(data.get("model", "")),
            "instructions_bytes": _text(data.get("instructions")),
            "tools_bytes": json_bytes(data["tools"]) if data.get("tools") else 0,
            "tool_count": len(data["tools"]) if isinstance(data.get("tools"), list) else 0,
            "previous_response_id": continuing,
            "store": data["store"] if isinstance(data.get("store"), bool) else None,
            "carried_items": len(carried_items),
            "carried_bytes": sum(json_bytes(item) for item in carried_items),
            "input": tuple(describe(item) for item in new_items),
        }
        if self.keep_content:
            request["content"] = {
                "instructions": data.get("instructions"),
                "tools": data.get("tools"),
                "input": new_items,
            }
        return RecordingTurn(live, now, request, digest, count, new_items)

    def end(self, turn: RecordingTurn | None, response: Mapping[str, Any]) -> None:
        """The response to ``turn`` ended (``response``: the final response object)."""
        if turn is None or turn.done:
            return
        turn.done = True
        live = turn.live
        live.busy -= 1
        if live.closed:
            return
        now = self.clock()
        output = response.get("output")
        output = output if isinstance(output, list) else []
        usage = usage_of(response.get("usage"))
        calls = tool_calls(output)
        content = turn.request.pop("content", None)
        if content is not None:
            content["output"] = output
        status = response.get("status")
        record = TurnTrace(
            session=live.info.session,
            index=live.count,
            at_s=round(turn.arrived - live.started, 6),
            took_s=round(now - turn.arrived, 6),
            gap_s=None,
            output=output_items(output, usage),
            usage=usage,
            tool_calls=tuple(call for _, call in calls),
            status=status if isinstance(status, str) else "completed",
            content=content,
            **turn.request,
        )
        live.count += 1
        if live.pending is not None:  # a turn of the same lane overlapped: keep order
            self._write(live, live.pending)
        live.pending = record
        live.pending_end = now
        live.pending_calls = calls
        response_id = response.get("id")
        if isinstance(response_id, str):
            self._by_response[response_id] = live
            self._by_response.move_to_end(response_id)
            while len(self._by_response) > 4 * self.max_sessions:
                self._by_response.popitem(last=False)
        if not record.previous_response_id:
            digest = turn.prefix_state
            count = turn.prefix_count
            for item in output:
                fp = fingerprint(item)
                if fp is not None:
                    digest.update(fp)
                    count += 1
            self._expect(live, (count, digest.digest()))

    def abandon(self, turn: RecordingTurn | None) -> None:
        """The request got no response (refused, or the client left): not a turn."""
        if turn is not None and not turn.done:
            turn.done = True
            turn.live.busy -= 1

    def connection_closed(self, connection: object) -> None:
        """A WebSocket connection closed: its sessions end."""
        for key in [k for k in self._by_lane if k[0] is connection]:
            self._finish(self._by_lane.pop(key))

    def close(self) -> None:
        """Write every session's last turn and close the file (the server stops)."""
        for live in list(self._sessions.values()):
            self._finish(live)
        self._by_lane.clear()
        self._by_response.clear()
        self.writer.close()

    # -- sessions ---------------------------------------------------------------------

    def _open(
        self,
        data: Mapping[str, Any],
        now: float,
        transport: str,
        user_agent: str | None,
        handshake: int | None,
    ) -> _Live:
        self._numbers += 1
        if self._first_start is None:
            self._first_start = now
        info = SessionInfo(
            session=f"{self.tag}-{self._numbers}",
            agent=agent_name(user_agent),
            model=str(data.get("model", "")),
            transport=transport,
            handshake_bytes=handshake,
            origin=f"process {os.getpid()}",
            start_s=round(now - self._first_start, 6),
        )
        live = _Live(info=info, started=now)
        self._sessions[info.session] = live
        while len(self._sessions) > self.max_sessions:
            oldest = next(
                (s for s in self._sessions.values() if not s.busy and s is not live), None
            )
            if oldest is None:
                break
            self._finish(oldest)
        return live

    def _finish(self, live: _Live) -> None:
        if live.closed:
            return
        if live.pending is not None:
            self._write(live, self._completed(live, None, []))
        live.closed = True
        self._expect(live, None)
        self._sessions.pop(live.info.session, None)

    def _settle_pending(self, live: _Live, now: float, new_items: list[Any]) -> None:
        """The session's next request arrived: its last turn is complete."""
        if live.pending is not None:
            gap = round(max(0.0, now - live.pending_end), 6)
            self._write(live, self._completed(live, gap, new_items))

    def _completed(self, live: _Live, gap: float | None, new_items: list[Any]) -> TurnTrace:
        assert live.pending is not None
        outputs = tool_output_bytes(new_items)
        calls = tuple(
            dataclasses.replace(call, output_bytes=outputs.get(cid)) if cid else call
            for cid, call in live.pending_calls
        )
        turn = dataclasses.replace(live.pending, gap_s=gap, tool_calls=calls)
        live.pending = None
        live.pending_calls = []
        return turn

    def _write(self, live: _Live, turn: TurnTrace) -> None:
        if turn.index == 0:
            self.writer.write(live.info)
        self.writer.write(turn)

    # -- stateless HTTP: which session a full-context request continues ---------------

    def _expect(self, live: _Live, expected: tuple[int, bytes] | None) -> None:
        if live.expected is not None:
            waiting = self._by_prefix.get(live.expected)
            if waiting is not None and live in waiting:
                waiting.remove(live)
                self._lengths[live.expected[0]] -= 1
                if not self._lengths[live.expected[0]]:
                    del self._lengths[live.expected[0]]
                if not waiting:
                    del self._by_prefix[live.expected]
        live.expected = expected
        if expected is not None:
            self._by_prefix.setdefault(expected, []).append(live)
            self._lengths[expected[0]] += 1

    def _match(self, prints: list[bytes | None]) -> tuple[_Live | None, int]:
        """The idle session whose conversation is the longest prefix of this input, and
        how many input items that prefix covers."""
        lengths = self._lengths.keys()
        if not lengths:
            return None, 0
        digest = hashlib.blake2b(digest_size=16)
        count = 0
        best: tuple[_Live, int] | None = None
        for position, fp in enumerate(prints, 1):
            if fp is None:
                continue
            digest.update(fp)
            count += 1
            if count in lengths:
                waiting = self._by_prefix.get((count, digest.copy().digest()), [])
                idle = next((s for s in waiting if not s.busy and not s.closed), None)
                if idle is not None:
                    best = (idle, position)
        if best is None:
            return None, 0
        return best[0], _through_reasoning(prints, best[1])


def _carried(prints: list[bytes | None], expected: tuple[int, bytes]) -> int:
    """Input items a WebSocket session's full resend carries from its conversation."""
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    for position, fp in enumerate(prints, 1):
        if fp is None:
            continue
        digest.update(fp)
        count += 1
        if count == expected[0]:
            return _through_reasoning(prints, position) if digest.digest() == expected[1] else 0
    return 0


def _through_reasoning(prints: list[bytes | None], position: int) -> int:
    """A matched prefix's end, past the reasoning items that follow it (they belong to the
    earlier response the prefix ends with)."""
    while position < len(prints) and prints[position] is None:
        position += 1
    return position


def _kind(data: Mapping[str, Any], continuing: bool) -> str:
    options = data.get("prompt_cache_options")
    prewarm = isinstance(options, Mapping) and options.get("prewarm") is True
    if data.get("generate") is False or prewarm:
        return "warmup"
    return "continuation" if continuing else "full"


def _text(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    return json_bytes(value) if value is not None else 0
