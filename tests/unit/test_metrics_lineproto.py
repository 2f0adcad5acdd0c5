"""Line protocol: the rig's encoder writes what influxdb-client's ``Point`` writes."""

from __future__ import annotations

import dataclasses

import pytest
from influxdb_client import Point, WritePrecision

from rig.metrics.lineproto import MEASUREMENTS, TAG_KEYS, LineEncoder
from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    RecordTags,
    TaskRecord,
    TurnRecord,
    record_to_dict,
)

TAGS = RecordTags(run="20261121-101500-3fa2", scenario="bugfix", transport="ws", target="mock")
ODD_TAGS = RecordTags(
    run="run with spaces", scenario="a,b=c", transport="http", target="api.example.com\\"
)


def turn(tags: RecordTags = TAGS, **overrides) -> TurnRecord:
    values = dict(
        tags=tags, session="s-1", turn=3, ts=1_795_262_771.123456, bytes_sent=3212,
        bytes_recv=77_000, body_bytes_sent=3100, body_bytes_recv=76_000, ttfb_ms=12.5,
        ttft_ms=90.0, turn_ms=380.25, input_tokens=12_000, cached_tokens=8_000,
        output_tokens=289, tool_calls=1, status="ok",
    )  # fmt: skip
    values.update(overrides)
    return TurnRecord(**values)


RECORDS = [
    turn(),
    turn(ODD_TAGS, error='bad "quote" and \\ backslash\nsecond line', status="error"),
    turn(ttft_ms=0, turn_ms=7),  # whole numbers in float fields stay floats
    TaskRecord(
        tags=TAGS,
        session="s-1",
        ts=1_795_262_800.5,
        task_ms=5_000.0,
        turns=9,
        bytes_sent=30_000,
        bytes_recv=700_000,
        tool_calls=8,
        ok=True,
    ),
    RateLimitRecord(
        tags=TAGS, ts=1_795_262_801.0, limit="tokens", retry_after_ms=250.0, remaining=0
    ),
    HealthRecord(
        tags=dataclasses.replace(TAGS, transport="all"),
        ts=1_795_262_802.0,
        users=50,
        turns_per_s=33.3,
        cpu_percent=41.5,
        lag_ms_p99=2.25,
        lag_ms_max=9.0,
        saturated=False,
        points_written=1200,
        points_dropped=3,
    ),
]


def reference(record) -> str:
    """influxdb-client's own encoding of the same point (the independent truth)."""
    measurement = MEASUREMENTS[record.kind]
    data = record_to_dict(record)
    tags = {name: data[name] for name in TAG_KEYS}
    tags.update({name: str(data[name]) for name in measurement.extra_tags})
    fields = {}
    for name, field_type in measurement.fields:
        value = data[name]
        fields[name] = float(value) if field_type == "float" else value
    point = Point.from_dict(
        {
            "measurement": measurement.name,
            "tags": tags,
            "fields": fields,
            "time": int(record.ts * 1_000_000_000),
        },
        WritePrecision.NS,
    )
    return point.to_line_protocol()


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.kind)
def test_each_record_encodes_as_influxdb_clients_point(record) -> None:
    assert LineEncoder().encode(record) == reference(record)


def test_float_fields_never_become_integers() -> None:
    line = LineEncoder().encode(turn(ttft_ms=0, turn_ms=7))
    assert "ttft_ms=0," in line and "ttft_ms=0i" not in line
    assert " turn_ms=7 " in line.replace(",", " ") and "turn_ms=7i" not in line


def test_empty_tags_are_left_out_and_nan_fields_dropped() -> None:
    record = turn(dataclasses.replace(TAGS, target=""), ttfb_ms=float("nan"))
    line = LineEncoder().encode(record)
    assert "target=" not in line
    assert "ttfb_ms" not in line
    assert line == reference(record)


def test_points_of_one_series_never_share_a_timestamp() -> None:
    encoder = LineEncoder()
    lines = [encoder.encode(turn(session=f"s-{i}")) for i in range(3)]
    stamps = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert stamps == [stamps[0], stamps[0] + 1, stamps[0] + 2]
    # Another series keeps its own time.
    other = encoder.encode(turn(turn=4))
    assert int(other.rsplit(" ", 1)[1]) == stamps[0]


def test_the_run_point_carries_meta_as_an_escaped_string() -> None:
    line = LineEncoder().encode_run("r 1", '{"a": "say \\"hi\\""}', 1.5)
    assert line == 'run,run=r\\ 1 meta="{\\"a\\": \\"say \\\\\\"hi\\\\\\"\\"}" 1500000000'
