"""The rig's agent trace format, version 1: JSONL, one record per line (docs/traces.md).

A trace file is a ``header`` record, then ``session`` and ``turn`` records; a turn names
its session by key, and a session's record comes before its first turn. One turn per line
(not one session per line) lets a server append each turn as it ends, from any number of
interleaved sessions, holding nothing but the last turn of each live session, and lets
files be concatenated or split by line.

A trace carries shapes, not content: sizes of instructions, tools and every item, token
counts, tool calls and timing. Content (the texts and schemas) is present only when the
trace was made with ``--keep-content``; headers, keys and authorisation never are.

:func:`read_trace` validates every record and raises :class:`TraceError` naming the file,
the line and the field; it is the only exception a bad file can cause.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

from rig.errors import RigError

__all__ = [
    "FORMAT",
    "REQUEST_KINDS",
    "SOURCES",
    "TRANSPORTS",
    "VERSION",
    "Item",
    "RequestKind",
    "Session",
    "SessionInfo",
    "ToolCall",
    "Trace",
    "TraceError",
    "TraceHeader",
    "TraceWriter",
    "TurnTrace",
    "Usage",
    "builtin_traces",
    "encode_record",
    "kind_of",
    "load_trace",
    "parse_lines",
    "read_trace",
    "write_trace",
]

FORMAT = "rig-trace"
"""The ``format`` of every header record."""

VERSION = 1
"""The format version this module writes and the newest it reads."""

RequestKind = Literal["full", "continuation", "warmup"]
REQUEST_KINDS: tuple[str, ...] = ("full", "continuation", "warmup")
"""``full``: no ``previous_response_id`` (the whole context, or a first request);
``continuation``: ``previous_response_id`` plus new items; ``warmup``: ``generate: false``
or a prewarm (state prepared, nothing generated)."""

TRANSPORTS: tuple[str, ...] = ("http", "sse", "ws")
"""How a request arrived: HTTP with a JSON answer, HTTP with an SSE stream, a WebSocket
message. ``null`` in a trace: not known (an imported session)."""

SOURCES: tuple[str, ...] = ("mock", "gateway", "codex", "scenario")
"""What made a trace: a server recording (``rig mock --record``), ``rig trace import
codex``, ``rig trace export-scenarios``."""


class TraceError(RigError, ValueError):
    """A trace that cannot be read: the file, line and field, and what was wrong."""

    def __init__(self, problem: str, *, path: str = "", line: int = 0, field: str = ""):
        self.problem = problem
        self.path = path
        self.line = line
        self.field = field
        where = ":".join(p for p in (path, str(line) if line else "") if p)
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field + ': ' if field else ''}{problem}")


@dataclass(frozen=True, slots=True)
class Item:
    """One input or output item: its API ``type``, its size as compact JSON, and for
    messages the role, for calls the tool's name, for output items the tokens."""

    type: str
    bytes: int
    role: str | None = None
    name: str | None = None
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the response made: the tool's name, the call item's type, the bytes of its
    arguments, and the bytes of its output in the next request (``None``: never sent)."""

    name: str
    type: str
    argument_bytes: int
    output_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """The response's token usage."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class TraceHeader:
    """The first record of a file: format, version, what made it, whether it has content."""

    source: str
    created: str
    content: bool = False
    version: int = VERSION
    note: str = ""


@dataclass(frozen=True)
class SessionInfo:
    """A session's own record: who spoke to whom, over what.

    ``transport`` is ``None`` when unknown (imported) and ``"mixed"`` is never written: a
    session's turns each say how they arrived. ``handshake_bytes`` is the WebSocket
    upgrade request's head, for a WebSocket session.
    """

    session: str
    agent: str
    model: str
    transport: str | None = None
    handshake_bytes: int | None = None
    origin: str = ""
    """Where the session came from: the recording file's process, a rollout's session id,
    a scenario's name (never a path with a user's name in it)."""
    start_s: float | None = None
    """When the session's first request arrived, in seconds after the first session of
    its recording (or import) began; ``None`` when unknown. A replay with recorded
    arrivals starts the session this long (times ``--time-scale``) into the run."""


@dataclass(frozen=True)
class TurnTrace:
    """One request and its response (see docs/traces.md for every field)."""

    session: str
    index: int
    kind: RequestKind
    transport: str | None
    at_s: float
    """When the request arrived, in seconds from the session's first request."""
    took_s: float | None
    """From the request's arrival to the response's end."""
    gap_s: float | None
    """From the response's end to the session's next request (tool and think time);
    ``None`` for the session's last turn."""
    header_bytes: int | None
    """HTTP: the request line and headers; WebSocket: the frame header of the message."""
    body_bytes: int | None
    """The request body, or the WebSocket message's payload."""
    model: str
    instructions_bytes: int | None
    tools_bytes: int | None
    tool_count: int | None
    previous_response_id: bool
    store: bool | None
    carried_items: int
    """Items at the start of ``input`` resent from earlier turns (a full-context request
    of a session already seen); they are not listed again in :attr:`input`."""
    carried_bytes: int
    input: tuple[Item, ...]
    """The request's other input items, in order."""
    output: tuple[Item, ...]
    usage: Usage | None
    tool_calls: tuple[ToolCall, ...]
    status: str = "completed"
    content: Mapping[str, Any] | None = None
    """With ``--keep-content`` only: ``instructions``, ``tools``, ``input`` (the listed
    items), ``output``."""

    @property
    def input_bytes(self) -> int:
        """Bytes of the listed input items."""
        return sum(item.bytes for item in self.input)

    @property
    def reasoning_tokens(self) -> int:
        """The response's reasoning tokens (0 when no usage was recorded)."""
        return self.usage.reasoning_tokens if self.usage is not None else 0


@dataclass(frozen=True)
class Session:
    """A session with its turns, in order."""

    info: SessionInfo
    turns: tuple[TurnTrace, ...] = ()

    @property
    def key(self) -> str:
        """The session's key."""
        return self.info.session

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """Every tool call of the session, in order."""
        return tuple(call for turn in self.turns for call in turn.tool_calls)


@dataclass(frozen=True)
class Trace:
    """Every session of one or more trace files."""

    headers: tuple[TraceHeader, ...]
    sessions: tuple[Session, ...] = field(default=())

    def session(self, key: str) -> Session:
        """The session with this key (``KeyError`` if none)."""
        for session in self.sessions:
            if session.key == key:
                return session
        raise KeyError(key)


# -- writing ------------------------------------------------------------------------------


def _compact(value: Any) -> Any:
    """Dataclasses as dicts, leaving out an item's unset optional fields."""
    if isinstance(value, Item):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _compact(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_compact(v) for v in value]
    return value


def encode_record(record: TraceHeader | SessionInfo | TurnTrace) -> bytes:
    """One record as a JSON line (with its newline)."""
    if isinstance(record, TraceHeader):
        data = {"record": "header", "format": FORMAT, **_compact(record)}
    elif isinstance(record, SessionInfo):
        data = {"record": "session", **_compact(record)}
    else:
        data = {"record": "turn", **_compact(record)}
        if record.content is None:
            del data["content"]
    return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)


class TraceWriter:
    """Appends records to one file, a line at a time (each line written whole, at once,
    so a reader never sees half a record and a stop loses at most the line being made)."""

    def __init__(self, path: str | os.PathLike[str], header: TraceHeader):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._file: IO[bytes] | None = open(self.path, "ab", buffering=0)  # noqa: SIM115
        if fresh:
            self.write(header)

    def write(self, record: TraceHeader | SessionInfo | TurnTrace) -> None:
        """Append one record (nothing once closed)."""
        if self._file is not None:
            self._file.write(encode_record(record))

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def write_trace(
    path: str | os.PathLike[str], header: TraceHeader, sessions: Iterable[Session]
) -> None:
    """Write whole sessions to a new file (replacing it)."""
    Path(path).unlink(missing_ok=True)
    writer = TraceWriter(path, header)
    try:
        for session in sessions:
            writer.write(session.info)
            for turn in session.turns:
                writer.write(turn)
    finally:
        writer.close()


# -- reading ------------------------------------------------------------------------------


class _Fields:
    """Typed reads from one JSON object, each failure a :class:`TraceError` naming the
    field by its path (``turn.input[3].bytes``)."""

    def __init__(self, data: Mapping[str, Any], where: str, path: str, line: int):
        self.data = data
        self.where = where
        self.path = path
        self.line = line

    def fail(self, name: str, problem: str) -> TraceError:
        return TraceError(problem, path=self.path, line=self.line, field=f"{self.where}.{name}")

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                raise self.fail(name, "missing")
            return None
        return self.data[name]

    def text(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        value = self._get(name, required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {_kind(value)}")
        return value

    def count(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        value = self._get(name, required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(name, f"expected a non-negative integer, got {_kind(value)}")
        return value

    def seconds(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        value = self._get(name, required)
        if value is None and (nullable or not required):
            return None
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 <= value < math.inf
        ):
            raise self.fail(name, f"expected a non-negative number of seconds, got {_kind(value)}")
        return float(value)

    def flag(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        value = self._get(name, required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {_kind(value)}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, nullable: bool = False) -> Any:
        value = self._get(name, True)
        if value is None and nullable:
            return None
        if value not in choices:
            raise self.fail(name, f"expected one of {', '.join(choices)}, got {_show(value)}")
        return value

    def objects(self, name: str) -> list[_Fields]:
        value = self._get(name, True)
        if not isinstance(value, list):
            raise self.fail(name, f"expected an array, got {_kind(value)}")
        out = []
        for i, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise self.fail(f"{name}[{i}]", f"expected an object, got {_kind(entry)}")
            out.append(_Fields(entry, f"{self.where}.{name}[{i}]", self.path, self.line))
        return out

    def obj(self, name: str, *, nullable: bool = False, required: bool = True) -> _Fields | None:
        value = self._get(name, required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, dict):
            raise self.fail(name, f"expected an object, got {_kind(value)}")
        return _Fields(value, f"{self.where}.{name}", self.path, self.line)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"[:60]
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _item(f: _Fields) -> Item:
    return Item(
        type=f.text("type"),
        bytes=f.count("bytes"),
        role=f.text("role", required=False),
        name=f.text("name", required=False),
        tokens=f.count("tokens", required=False),
    )


def _tool_call(f: _Fields) -> ToolCall:
    return ToolCall(
        name=f.text("name"),
        type=f.text("type"),
        argument_bytes=f.count("argument_bytes"),
        output_bytes=f.count("output_bytes", nullable=True),
    )


def _usage(f: _Fields | None) -> Usage | None:
    if f is None:
        return None
    return Usage(
        input_tokens=f.count("input_tokens"),
        cached_tokens=f.count("cached_tokens"),
        output_tokens=f.count("output_tokens"),
        reasoning_tokens=f.count("reasoning_tokens"),
    )


def _header(f: _Fields) -> TraceHeader:
    if f.data.get("format") != FORMAT:
        raise f.fail("format", f"expected {FORMAT!r}, got {_show(f.data.get('format'))}")
    version = f.count("version")
    if version == 0 or version > VERSION:
        raise f.fail(
            "version",
            f"version {version} is not readable by this rig (it reads 1 to {VERSION}); "
            "upgrade the rig or re-make the trace",
        )
    return TraceHeader(
        source=f.text("source"),
        created=f.text("created"),
        content=f.flag("content"),
        version=version,
        note=f.text("note", required=False) or "",
    )


def _session(f: _Fields) -> SessionInfo:
    key = f.text("session")
    if not key:
        raise f.fail("session", "must not be empty")
    return SessionInfo(
        session=key,
        agent=f.text("agent"),
        model=f.text("model"),
        transport=f.choice("transport", TRANSPORTS, nullable=True),
        handshake_bytes=f.count("handshake_bytes", nullable=True),
        origin=f.text("origin", required=False) or "",
        start_s=f.seconds("start_s", required=False),
    )


def _turn(f: _Fields) -> TurnTrace:
    content = f.obj("content", required=False)
    return TurnTrace(
        session=f.text("session"),
        index=f.count("index"),
        kind=f.choice("kind", REQUEST_KINDS),
        transport=f.choice("transport", TRANSPORTS, nullable=True),
        at_s=f.seconds("at_s"),
        took_s=f.seconds("took_s", nullable=True),
        gap_s=f.seconds("gap_s", nullable=True),
        header_bytes=f.count("header_bytes", nullable=True),
        body_bytes=f.count("body_bytes", nullable=True),
        model=f.text("model"),
        instructions_bytes=f.count("instructions_bytes", nullable=True),
        tools_bytes=f.count("tools_bytes", nullable=True),
        tool_count=f.count("tool_count", nullable=True),
        previous_response_id=f.flag("previous_response_id"),
        store=f.flag("store", nullable=True),
        carried_items=f.count("carried_items"),
        carried_bytes=f.count("carried_bytes"),
        input=tuple(_item(i) for i in f.objects("input")),
        output=tuple(_item(i) for i in f.objects("output")),
        usage=_usage(f.obj("usage", nullable=True)),
        tool_calls=tuple(_tool_call(c) for c in f.objects("tool_calls")),
        status=f.text("status"),
        content=content.data if content is not None else None,
    )


def parse_lines(lines: Iterable[bytes | str], path: str = "") -> Trace:
    """Validate and assemble the records of one trace (lines of one file, or of several
    files one after another): a :class:`TraceError` names the first bad line and field."""
    headers: list[TraceHeader] = []
    infos: dict[str, SessionInfo] = {}
    turns: dict[str, list[TurnTrace]] = {}
    number = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise TraceError(f"not JSON ({exc})", path=path, line=number) from None
        if not isinstance(data, dict):
            raise TraceError(f"expected a JSON object, got {_kind(data)}", path=path, line=number)
        record = data.get("record")
        if not headers and record != "header":
            raise TraceError(
                f"the first record must be the header (record: header, format: {FORMAT}); "
                "is this a rig trace?",
                path=path,
                line=number,
                field="record",
            )
        f = _Fields(data, str(record), path, number)
        if record == "header":
            headers.append(_header(f))
        elif record == "session":
            info = _session(f)
            if info.session in infos:
                raise f.fail("session", f"session {_show(info.session)} appears twice")
            infos[info.session] = info
            turns[info.session] = []
        elif record == "turn":
            turn = _turn(f)
            if turn.session not in infos:
                raise f.fail("session", f"no session record {_show(turn.session)} before this turn")
            expected = len(turns[turn.session])
            if turn.index != expected:
                raise f.fail("index", f"expected turn {expected} of the session, got {turn.index}")
            turns[turn.session].append(turn)
        else:
            raise TraceError(
                f"unknown record {_show(record)} (expected header, session or turn)",
                path=path,
                line=number,
                field="record",
            )
    if not headers:
        raise TraceError("empty: no header record", path=path, line=number)
    sessions = tuple(Session(info, tuple(turns[key])) for key, info in infos.items())
    return Trace(tuple(headers), sessions)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    return [path]


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace file, or every ``*.jsonl`` under a directory (the files of one
    recording, one per server process), into one :class:`Trace`."""
    root = Path(path)
    if not root.exists():
        raise TraceError("no such file or directory", path=str(root))
    files = _files(root)
    if not files:
        raise TraceError("no *.jsonl trace files in this directory", path=str(root))
    headers: list[TraceHeader] = []
    sessions: list[Session] = []
    seen: set[str] = set()
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise TraceError(f"cannot read: {exc.strerror}", path=str(file)) from None
        trace = parse_lines(raw.split(b"\n"), str(file))
        headers += trace.headers
        for session in trace.sessions:
            if session.key in seen:
                raise TraceError(
                    f"session {session.key!r} appears in two files", path=str(file), field="session"
                )
            seen.add(session.key)
            sessions.append(session)
    return Trace(tuple(headers), tuple(sessions))


def kind_of(value: str) -> RequestKind:
    """``value`` as a request kind (for writers that computed it)."""
    if value not in REQUEST_KINDS:
        raise ValueError(value)
    return cast(RequestKind, value)


def builtin_traces() -> dict[str, Path]:
    """The trace sets shipped with the rig (``rig/traces/sets/*.jsonl``), by name:
    ``codex`` (Codex CLI sessions) and each built-in scenario's export."""
    folder = Path(str(resources.files("rig.traces").joinpath("sets")))
    return {p.stem: p for p in sorted(folder.glob("*.jsonl"))}


def load_trace(name_or_path: str | os.PathLike[str]) -> Trace:
    """A shipped trace set by name (``codex``), else a trace file or directory."""
    shipped = builtin_traces().get(str(name_or_path))
    if shipped is not None and not Path(name_or_path).exists():
        return read_trace(shipped)
    return read_trace(name_or_path)
