"""The records every measurement becomes: one per turn, one per task, plus run health.

Field names and meanings are the metrics schema of docs/metrics.md (InfluxDB measurement
``turn``, ``task``, ``ratelimit``, ``rig``); the run directory stores the same records as
JSON lines, so a report built from either source is the same report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "STATUSES",
    "HealthRecord",
    "RateLimitRecord",
    "RecordTags",
    "TaskRecord",
    "TurnRecord",
    "record_from_dict",
    "record_to_dict",
    "record_to_json",
]

Status = Literal["ok", "error", "rate_limited", "timeout", "reconnected"]
STATUSES: tuple[Status, ...] = ("ok", "error", "rate_limited", "timeout", "reconnected")
"""How a turn ended. ``reconnected``: it succeeded after the connection was re-opened."""


@dataclass(frozen=True, slots=True)
class RecordTags:
    """The bounded labels of a record (InfluxDB tags): never a session id or a key."""

    run: str
    scenario: str
    transport: str
    target: str
    link: str = "direct"
    worker: str = "local"


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One model turn as the client saw it on the wire.

    Bytes are counted at the socket (request line, headers, body, chunk framing, WebSocket
    frame headers and masking; a connection's handshake is charged to its first turn), as
    the kernel takes them: a turn that failed or timed out mid-write counts what left.
    Times are from one monotonic clock: ``ttfb_ms`` to the first byte of the answer,
    ``ttft_ms`` to the first content delta (text or tool-call arguments), ``turn_ms`` to
    the terminal event, all from the turn's start (before it opens a connection, if it
    does); ``connect_ms`` is the part spent opening connections (0: it reused one) and
    ``upload_ms`` the part spent writing the request. ``ts`` is wall-clock seconds when
    the turn started (for InfluxDB). ``breaks`` counts connections that broke under the
    turn (reset, closed, refused, idle-timed out), ``resent_bytes`` the request body bytes
    sent after the first of them, ``recover_ms`` the time from it to the target's next
    answer; ``fallback``: carried over HTTP after the session fell back from WebSocket.
    """

    tags: RecordTags
    session: str
    turn: int
    ts: float
    bytes_sent: int
    bytes_recv: int
    body_bytes_sent: int
    body_bytes_recv: int
    ttfb_ms: float
    ttft_ms: float
    turn_ms: float
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    tool_calls: int
    status: Status
    retries: int = 0
    error: str = ""
    connect_ms: float = 0.0
    upload_ms: float = 0.0
    breaks: int = 0
    resent_bytes: int = 0
    recover_ms: float = 0.0
    fallback: bool = False
    traced_body_bytes: int = 0
    """A trace replay's turn: the traced request body's size over the same transport, to
    compare ``body_bytes_sent`` with (0: not a replay, or no traced size to compare)."""

    kind = "turn"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One agent task: the first turn's start to the final answer, tool time included."""

    tags: RecordTags
    session: str
    ts: float
    task_ms: float
    turns: int
    bytes_sent: int
    bytes_recv: int
    tool_calls: int
    ok: bool
    error: str = ""

    kind = "task"


@dataclass(frozen=True, slots=True)
class RateLimitRecord:
    """One rejected attempt (HTTP 429 or a ``rate_limit_exceeded`` event)."""

    tags: RecordTags
    ts: float
    limit: str
    retry_after_ms: float
    remaining: int
    waited_ms: float = 0.0
    """How long the session then waited before its next attempt (0: it gave up)."""

    kind = "ratelimit"


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """The load generator's own state: is it fast enough to trust its latencies?"""

    tags: RecordTags
    ts: float
    users: int
    turns_per_s: float
    cpu_percent: float
    lag_ms_p99: float
    lag_ms_max: float
    saturated: bool
    points_written: int = 0
    points_dropped: int = 0

    kind = "rig"


Record = TurnRecord | TaskRecord | RateLimitRecord | HealthRecord
_KINDS: dict[str, type[Record]] = {
    cls.kind: cls for cls in (TurnRecord, TaskRecord, RateLimitRecord, HealthRecord)
}


def record_to_dict(record: Record) -> dict[str, Any]:
    """The record as one flat dict: tags inlined, plus ``kind``."""
    data: dict[str, Any] = {"kind": record.kind}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name == "tags":
            data.update(dataclasses.asdict(value))
        else:
            data[field.name] = value
    return data


def record_to_json(record: Record) -> bytes:
    """One JSON line (no newline) with the tags flattened and a ``kind`` field."""
    return orjson.dumps(record_to_dict(record))


def record_from_dict(data: dict[str, Any]) -> Record:
    """Inverse of :func:`record_to_json` after ``orjson.loads``."""
    data = dict(data)
    cls = _KINDS[data.pop("kind")]
    tag_names = [f.name for f in dataclasses.fields(RecordTags)]
    tags = RecordTags(**{name: data.pop(name) for name in tag_names if name in data})
    return cls(tags=tags, **data)
