"""Find an event's type without parsing its JSON.

A load generator handles hundreds of thousands of events per second but needs the body of
only a few (the first delta's arrival, the terminal event, finished tool calls). Servers,
ours included, put ``type`` first; when one does not, the sniffer falls back to a full
parse, so it is never wrong, only slower.
"""

from __future__ import annotations

import orjson

__all__ = ["TERMINAL_TYPES", "event_type", "is_terminal", "is_terminal_event", "stream_id"]

TERMINAL_TYPES = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "error"}
)
"""Event types after which a response produces no further events."""

_PREFIXES = (b'{"type":"', b'{"type": "')
_COMPACT = _PREFIXES[0]
_TERMINAL_PREFIXES = tuple(_COMPACT + kind.encode() + b'"' for kind in sorted(TERMINAL_TYPES))


def event_type(raw: bytes | str) -> str | None:
    """The ``type`` of the JSON event ``raw``, or ``None`` if it has none or is not JSON."""
    if isinstance(raw, str):
        raw = raw.encode()
    for prefix in _PREFIXES:
        if raw.startswith(prefix):
            start = len(prefix)
            end = raw.find(b'"', start)
            if end > start and raw.find(b"\\", start, end) < 0:
                return raw[start:end].decode()
            break
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def is_terminal(kind: str | None) -> bool:
    """Whether an event of type ``kind`` ends its response."""
    return kind in TERMINAL_TYPES


def is_terminal_event(raw: bytes) -> bool:
    """Whether the JSON event ``raw`` ends its response; as :func:`is_terminal` of
    :func:`event_type`, but a compact event with ``type`` first is decided by its prefix
    (no decoding, no call): what a client checks for every streamed event."""
    if raw.startswith(_TERMINAL_PREFIXES):
        return True
    if raw.startswith(_COMPACT):
        end = raw.find(b'"', 9)
        if end > 9 and raw.find(b"\\", 9, end) < 0:
            return False  # a plain type that is none of the terminal ones
    return event_type(raw) in TERMINAL_TYPES


_STREAM_ID_KEY = b'"stream_id":"'


def stream_id(raw: bytes) -> str | None:
    """The top-level ``stream_id`` of the JSON event ``raw`` (``None`` if it has none).

    Servers, ours included, add ``stream_id`` last, so a compact event ends with
    ``"stream_id":"<id>"}`` and the lane is read from its end without a parse; anything
    else falls back to a full parse.
    """
    if raw.endswith(b'"}'):
        start = raw.rfind(_STREAM_ID_KEY)
        if start > 0 and raw[start - 1 : start] == b",":
            begin = start + len(_STREAM_ID_KEY)
            end = len(raw) - 2
            if raw.find(b'"', begin, end) < 0 and raw.find(b"\\", begin, end) < 0:
                return raw[begin:end].decode()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    lane = value.get("stream_id") if isinstance(value, dict) else None
    return lane if isinstance(lane, str) else None
