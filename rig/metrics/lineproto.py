"""Records as InfluxDB line protocol: the schema as data, and a fast encoder.

One point per record. Tags are the bounded labels (:class:`~rig.metrics.records.RecordTags`,
plus the turn index on ``turn`` and the limit kind on ``ratelimit``); everything else is a
field with a fixed type, so a field never changes type between points (InfluxDB rejects
that). The encoding is the one influxdb-client's ``Point`` produces (sorted tags, sorted
fields, empty tags left out, whole floats without ``.0``), which the tests check
line by line; it is written here because ``Point`` costs about 30 µs a record and a
worker writes one per turn (docs/performance.md, the sink's cost).

Timestamps are nanoseconds from the record's wall-clock ``ts``. InfluxDB keeps one point
per series and timestamp, so two turns of one series starting in the same nanosecond
would overwrite each other: the encoder makes each series' timestamps strictly
increasing, moving a colliding point by one nanosecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from rig.metrics.records import Record, RecordTags

__all__ = [
    "MEASUREMENTS",
    "RUN_FIELD",
    "RUN_MEASUREMENT",
    "LineEncoder",
    "Measurement",
    "escape_tag",
]

FieldType = Literal["int", "float", "bool", "str"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One InfluxDB measurement: its tags and typed fields (docs/metrics.md)."""

    name: str
    extra_tags: tuple[str, ...]
    fields: tuple[tuple[str, FieldType], ...]

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag key, sorted as written."""
        return tuple(sorted((*TAG_KEYS, *self.extra_tags)))


TAG_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RecordTags))
"""The tags every record carries."""

MEASUREMENTS: dict[str, Measurement] = {
    "turn": Measurement(
        "turn",
        ("turn",),
        (
            ("session", "str"),
            ("bytes_sent", "int"),
            ("bytes_recv", "int"),
            ("body_bytes_sent", "int"),
            ("body_bytes_recv", "int"),
            ("ttfb_ms", "float"),
            ("ttft_ms", "float"),
            ("turn_ms", "float"),
            ("connect_ms", "float"),
            ("upload_ms", "float"),
            ("input_tokens", "int"),
            ("cached_tokens", "int"),
            ("output_tokens", "int"),
            ("tool_calls", "int"),
            ("status", "str"),
            ("retries", "int"),
            ("error", "str"),
            ("breaks", "int"),
            ("resent_bytes", "int"),
            ("recover_ms", "float"),
            ("fallback", "bool"),
            ("traced_body_bytes", "int"),
        ),
    ),
    "task": Measurement(
        "task",
        (),
        (
            ("session", "str"),
            ("task_ms", "float"),
            ("turns", "int"),
            ("bytes_sent", "int"),
            ("bytes_recv", "int"),
            ("tool_calls", "int"),
            ("ok", "bool"),
            ("error", "str"),
        ),
    ),
    "ratelimit": Measurement(
        "ratelimit",
        ("limit",),
        (("retry_after_ms", "float"), ("remaining", "int"), ("waited_ms", "float")),
    ),
    "rig": Measurement(
        "rig",
        (),
        (
            ("users", "int"),
            ("turns_per_s", "float"),
            ("cpu_percent", "float"),
            ("lag_ms_p99", "float"),
            ("lag_ms_max", "float"),
            ("saturated", "bool"),
            ("points_written", "int"),
            ("points_dropped", "int"),
        ),
    ),
}
"""The schema by record kind (``TurnRecord.kind`` and so on)."""

RUN_MEASUREMENT = "run"
"""One point per finished run (tag ``run``): what ``rig report --influx`` needs besides records."""
RUN_FIELD = "meta"
"""The ``run`` point's field: the run directory's meta.json, as JSON text."""

_TAG_ESCAPES = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": r"\\"})


def escape_tag(value: str) -> str:
    """A tag key or value escaped for line protocol."""
    escaped = value.translate(_TAG_ESCAPES)
    return escaped + " " if escaped.endswith("\\") else escaped


def _float(value: float) -> str | None:
    value = float(value)
    if not math.isfinite(value):
        return None  # line protocol has no NaN or infinity: the field is left out
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _format(kind: FieldType, value: Any) -> str | None:
    if kind == "int":
        return f"{int(value)}i"
    if kind == "float":
        return _float(value)
    if kind == "bool":
        return "true" if value else "false"
    return '"' + str(value).translate(_STRING_ESCAPES) + '"'


class LineEncoder:
    """Encodes records into line protocol, one line (without newline) per record."""

    PREFIX_CACHE_LIMIT = 50_000

    def __init__(self) -> None:
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._last_ns: dict[str, int] = {}
        self._fields = {
            kind: tuple((name, kind_, f"{escape_tag(name)}=") for name, kind_ in sorted(m.fields))
            for kind, m in MEASUREMENTS.items()
        }

    def _prefix(self, record: Record) -> str:
        measurement = MEASUREMENTS[record.kind]
        extra = tuple(str(getattr(record, name)) for name in measurement.extra_tags)
        key = (record.kind, record.tags, extra)
        prefix = self._prefixes.get(key)
        if prefix is None:
            tags: dict[str, str] = {name: getattr(record.tags, name) for name in TAG_KEYS}
            tags.update(zip(measurement.extra_tags, extra, strict=True))
            parts = [measurement.name]
            parts += [
                f"{escape_tag(name)}={escape_tag(str(value))}"
                for name, value in sorted(tags.items())
                if value != ""  # line protocol has no empty tag values
            ]
            prefix = ",".join(parts)
            if len(self._prefixes) >= self.PREFIX_CACHE_LIMIT:
                self._prefixes.clear()
            self._prefixes[key] = prefix
        return prefix

    def encode(self, record: Record) -> str:
        """The record as one line of line protocol (nanosecond timestamp)."""
        prefix = self._prefix(record)
        parts = []
        for name, kind, head in self._fields[record.kind]:
            text = _format(kind, getattr(record, name))
            if text is not None:
                parts.append(head + text)
        ns = int(record.ts * 1_000_000_000)
        last = self._last_ns.get(prefix)
        if last is not None and ns <= last:
            ns = last + 1
        self._last_ns[prefix] = ns
        return f"{prefix} {','.join(parts)} {ns}"

    def encode_run(self, run_id: str, meta_json: str, ts: float) -> str:
        """The run's description (meta.json as a string field) as a ``run`` point."""
        return (
            f"run,run={escape_tag(run_id)} {RUN_FIELD}={_format('str', meta_json)} {int(ts * 1e9)}"
        )

    def series_count(self) -> int:
        """How many series this encoder has written (for the collision guard's memory)."""
        return len(self._last_ns)
