"""Codex CLI session rollouts converted into traces (``rig trace import codex``).

Codex writes each session to ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``:
one JSON object a line, ``{"timestamp", "type", "payload"}``, where ``type`` is
``session_meta`` (first: the session id, ``originator``, ``cli_version``,
``base_instructions``), ``turn_context`` (the model of the turns that follow),
``response_item`` (every item of the conversation, as the Responses API has it, plus a
field of Codex's own), ``token_usage_record`` (one per model response: its id and usage),
``event_msg`` (UI events; ``token_count`` carries usage in versions without
``token_usage_record``), and others (``world_state``, ``compacted``) that describe no
request. Read from Codex 0.171.0's files and its protocol crate's ``RolloutItem``.

A model response is a run of output items (assistant messages, reasoning, calls) ended by
its usage record or by the next input item; its request carried everything before it.
The trace keeps that conversation view: each turn ``full`` (``transport`` null: a rollout
does not say how the request travelled), the earlier turns' items as ``carried_items``,
the new items listed. Sizes are the items' as sent (without Codex's own field), which are
what the mock records for the same session. Codex 0.171.0 sends its base instructions as
the first input item, a developer message, not as ``instructions``; the rollout keeps
them in ``session_meta``, so the import puts that message first. A rollout names no tool
schemas and none of the request's other fields (``reasoning``, ``text``,
``prompt_cache_key``, ``client_metadata`` ...), so ``tools_bytes``, ``tool_count`` and
``body_bytes`` are null unless a :class:`RequestShape` taken from a recording of the same
Codex version fills them in. Content is dropped unless ``keep_content``. Rollouts imported
together (:func:`import_rollouts`) get each session's ``start_s`` from their timestamps:
when its first request was made, after the earliest session's.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from rig.traces.format import Session, SessionInfo, Trace, TraceError, TurnTrace, Usage
from rig.traces.shape import (
    CALL_TYPES,
    describe,
    json_bytes,
    output_items,
    tool_calls,
    tool_output_bytes,
)

__all__ = ["CodexImport", "RequestShape", "find_rollouts", "import_rollout", "import_rollouts"]

_CODEX_FIELDS = ("internal_chat_message_metadata_passthrough",)
"""Fields Codex adds to the items it stores that never go over the wire."""

_OUTPUT_TYPES = frozenset({"reasoning", "web_search_call", "image_generation_call", *CALL_TYPES})
_SKIPPED_ITEMS = frozenset({"ghost_snapshot", "compaction", "compaction_summary"})
"""Items Codex stores that are not part of a request's input."""

_INSTRUCTIONS_ID = "msg_" + "0" * 36
"""The id of the developer message carrying the base instructions: Codex gives it one of
this length (``msg_`` and a UUID)."""


@dataclass(frozen=True)
class RequestShape:
    """What a rollout does not say about Codex's requests, taken from a recording of the
    same Codex version (``rig mock --record``, or the shipped ``codex`` set): its tool
    schemas' count and size, and the size of an HTTP request's other fields (everything
    but ``instructions``, ``tools`` and ``input``). The same on every request of a session
    of one version and configuration, so an imported turn's ``body_bytes`` is its items'
    size plus these."""

    tool_count: int
    tools_bytes: int
    other_bytes: int | None
    """``None``: the recording has no HTTP request to measure (WebSocket only)."""
    source: str = ""

    @classmethod
    def of(cls, trace: Trace, version: str, source: str = "") -> RequestShape:
        """The most common tools and other-field sizes of the model requests in ``trace``
        from Codex ``version`` (:class:`TraceError` when it has none)."""
        tools: Counter[tuple[int, int]] = Counter()
        other: Counter[int] = Counter()
        for session in trace.sessions:
            if session.info.agent.rpartition("/")[2] != version:
                continue
            for turn in session.turns:
                if turn.kind == "warmup" or turn.tools_bytes is None or turn.tool_count is None:
                    continue
                tools[(turn.tool_count, turn.tools_bytes)] += 1
                if turn.transport in ("http", "sse") and turn.body_bytes is not None:
                    other[_other_bytes(turn, turn.body_bytes)] += 1
        if not tools:
            agents = sorted({s.info.agent for s in trace.sessions})
            raise TraceError(
                f"no recorded request of Codex {version} with tools to take the request "
                f"shape from (its agents: {', '.join(agents) or 'none'})",
                path=source,
            )
        (count, size), _ = tools.most_common(1)[0]
        rest = other.most_common(1)[0][0] if other else None
        return cls(count, size, rest, source)

    def apply(self, session: Session) -> Session:
        """The session with these tools on every turn and, when the HTTP request's other
        fields are known, each turn's ``body_bytes``: the HTTP request carrying it."""
        turns = []
        for turn in session.turns:
            turn = dataclasses.replace(
                turn, tool_count=self.tool_count, tools_bytes=self.tools_bytes
            )
            if self.other_bytes is not None:
                body = self.other_bytes - _other_bytes(turn, 0)
                turn = dataclasses.replace(turn, body_bytes=body)
            turns.append(turn)
        return Session(session.info, tuple(turns))


def _other_bytes(turn: TurnTrace, body_bytes: int) -> int:
    """The bytes of a request body besides its instructions, tools and input items (and
    the commas and brackets of the ``input`` array)."""
    items = turn.carried_bytes + turn.input_bytes + turn.carried_items + len(turn.input) + 1
    return body_bytes - (turn.instructions_bytes or 0) - (turn.tools_bytes or 0) - items


@dataclass
class CodexImport:
    """One rollout as a trace session, and what was left out."""

    session: Session
    skipped: Counter[str] = field(default_factory=Counter)
    """Lines not used, by type (``event_msg:token_count``, ``world_state``, ...)."""
    started: float | None = None
    """When the session's first request was made (its rollout's timestamp, POSIX
    seconds); ``None``: it made none."""


@dataclass
class _Response:
    request_items: list[Any]
    carried: list[Any]
    requested_at: float
    model: str
    output: list[Any] = field(default_factory=list)
    ended_at: float = 0.0
    usage: Usage | None = None


def find_rollouts(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The rollout files named, or found under the directories named (``rollout-*.jsonl``,
    at any depth: a ``CODEX_HOME``, its ``sessions/``, a day's folder)."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(path.rglob("rollout-*.jsonl"))
        elif path.exists():
            found.append(path)
        else:
            raise TraceError("no such file or directory", path=str(path))
    return found


def _time(value: Any, path: str, line: int) -> float:
    if not isinstance(value, str):
        raise TraceError("expected an RFC 3339 timestamp", path=path, line=line, field="timestamp")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TraceError(
            f"not an RFC 3339 timestamp: {value[:40]!r}", path=path, line=line, field="timestamp"
        ) from None


def _wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as Codex sends it (without the fields it keeps for itself)."""
    return {k: v for k, v in item.items() if k not in _CODEX_FIELDS}


def _is_output(item: Mapping[str, Any]) -> bool:
    kind = item.get("type")
    if kind == "message":
        return item.get("role") == "assistant"
    return kind in _OUTPUT_TYPES


def _codex_usage(value: Any) -> Usage | None:
    if not isinstance(value, Mapping):
        return None

    def number(key: str) -> int:
        v = value.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0

    return Usage(
        input_tokens=number("input_tokens"),
        cached_tokens=number("cached_input_tokens"),
        output_tokens=number("output_tokens"),
        reasoning_tokens=number("reasoning_output_tokens"),
    )


def import_rollout(path: str | os.PathLike[str], *, keep_content: bool = False) -> CodexImport:
    """Read one rollout file into a trace session (:class:`TraceError` when it is not a
    rollout; lines of unknown types are skipped and counted)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read: {exc.strerror}", path=name) from None
    skipped: Counter[str] = Counter()
    meta: Mapping[str, Any] | None = None
    model = ""
    responses: list[_Response] = []
    open_response: _Response | None = None
    pending: list[Any] = []
    conversation: list[Any] = []
    last_input_at: float | None = None
    usage_records = False

    def close(at: float | None = None) -> None:
        nonlocal open_response
        if open_response is not None:
            if at is not None:
                open_response.ended_at = max(open_response.ended_at, at)
            responses.append(open_response)
            conversation.extend(open_response.output)
            open_response = None

    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if meta is None:
                raise TraceError("not a Codex rollout (not JSON)", path=name, line=number) from None
            skipped["invalid_json"] += 1  # a line being written when the file was copied
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        payload = record.get("payload") if isinstance(record, dict) else None
        if meta is None:
            if kind != "session_meta" or not isinstance(payload, dict):
                raise TraceError(
                    "not a Codex rollout: the first line must be a session_meta record "
                    '({"timestamp", "type": "session_meta", "payload"})',
                    path=name,
                    line=number,
                    field="type",
                )
            meta = payload
            _time(record.get("timestamp"), name, number)
            text = _instructions_text(meta)
            if text is not None:
                pending.append(_instructions_message(text))
            continue
        if not isinstance(payload, dict) or not isinstance(kind, str):
            skipped["malformed"] += 1
            continue
        at = _time(record.get("timestamp"), name, number)
        if kind == "turn_context":
            if isinstance(payload.get("model"), str):
                model = payload["model"]
            continue
        if kind == "response_item":
            item_type = payload.get("type")
            if item_type in _SKIPPED_ITEMS or not isinstance(item_type, str):
                skipped[f"response_item:{item_type}"] += 1
                continue
            item = _wire(payload)
            if _is_output(item):
                if open_response is None:
                    requested = last_input_at if last_input_at is not None else at
                    if responses:
                        requested = max(requested, responses[-1].ended_at)
                    open_response = _Response(pending, list(conversation), requested, model)
                    conversation.extend(pending)
                    pending = []
                open_response.output.append(item)
                open_response.ended_at = at
            else:
                close()
                pending.append(item)
                last_input_at = at
            continue
        if kind == "token_usage_record":
            usage_records = True
            target = open_response or (responses[-1] if responses else None)
            if target is not None and target.usage is None:
                target.usage = _codex_usage(payload.get("usage"))
            close(at)
            continue
        if kind == "event_msg" and payload.get("type") == "token_count" and not usage_records:
            info = payload.get("info")
            target = open_response or (responses[-1] if responses else None)
            if isinstance(info, Mapping) and target is not None and target.usage is None:
                target.usage = _codex_usage(info.get("last_token_usage"))
                close(at)
                continue
        label = f"{kind}:{payload['type']}" if isinstance(payload.get("type"), str) else kind
        skipped[label] += 1
    if meta is None:
        raise TraceError("not a Codex rollout: empty", path=name)
    close()
    started = responses[0].requested_at if responses else None
    return CodexImport(_session(meta, model, responses, keep_content), skipped, started)


def import_rollouts(
    paths: Iterable[str | os.PathLike[str]], *, keep_content: bool = False
) -> list[CodexImport]:
    """Read rollout files (:func:`import_rollout`), each session's ``start_s`` the seconds
    from the earliest session's first request to its own, by the rollouts' timestamps
    (``None`` for a session that made no request)."""
    imports = [import_rollout(path, keep_content=keep_content) for path in paths]
    starts = [i.started for i in imports if i.started is not None]
    first = min(starts, default=0.0)
    for result in imports:
        if result.started is not None:
            info = dataclasses.replace(
                result.session.info, start_s=round(result.started - first, 6)
            )
            result.session = Session(info, result.session.turns)
    return imports


def _instructions_text(meta: Mapping[str, Any]) -> str | None:
    instructions = meta.get("base_instructions")
    text = instructions.get("text") if isinstance(instructions, Mapping) else instructions
    return text if isinstance(text, str) else None


def _instructions_message(text: str) -> dict[str, Any]:
    """The base instructions as Codex 0.171.0 sends them: the first input item."""
    return {
        "type": "message",
        "id": _INSTRUCTIONS_ID,
        "role": "developer",
        "content": [{"type": "input_text", "text": text}],
    }


def _session(
    meta: Mapping[str, Any],
    model: str,
    responses: list[_Response],
    keep_content: bool,
) -> Session:
    session_id = str(meta.get("id") or meta.get("session_id") or "")
    originator = str(meta.get("originator") or "codex")
    version = str(meta.get("cli_version") or "")
    instructions_bytes = 0 if _instructions_text(meta) is not None else None
    key = f"codex-{session_id}" if session_id else "codex"
    info = SessionInfo(
        session=key,
        agent=f"{originator}/{version}" if version else originator,
        model=responses[0].model if responses else model,
        transport=None,
        origin=f"codex session {session_id}",
    )
    start = responses[0].requested_at if responses else 0.0
    turns = []
    for index, response in enumerate(responses):
        following = responses[index + 1] if index + 1 < len(responses) else None
        outputs = tool_output_bytes(following.request_items) if following else {}
        calls = tuple(
            dataclasses.replace(call, output_bytes=outputs.get(cid or ""))
            for cid, call in tool_calls(response.output)
        )
        content = None
        if keep_content:
            content = {
                "instructions": None,
                "tools": None,
                "input": response.request_items,
                "output": response.output,
            }
        gap = None
        if following is not None:
            gap = round(max(0.0, following.requested_at - response.ended_at), 6)
        turn = TurnTrace(
            session=key,
            index=index,
            kind="full",
            transport=None,
            at_s=round(max(0.0, response.requested_at - start), 6),
            took_s=round(max(0.0, response.ended_at - response.requested_at), 6),
            gap_s=gap,
            header_bytes=None,
            body_bytes=None,
            model=response.model or info.model,
            instructions_bytes=instructions_bytes,
            tools_bytes=None,
            tool_count=None,
            previous_response_id=False,
            store=None,
            carried_items=len(response.carried),
            carried_bytes=sum(json_bytes(item) for item in response.carried),
            input=tuple(describe(item) for item in response.request_items),
            output=output_items(response.output, response.usage),
            usage=response.usage,
            tool_calls=calls,
            status="completed",
            content=content,
        )
        turns.append(turn)
    return Session(info, tuple(turns))
