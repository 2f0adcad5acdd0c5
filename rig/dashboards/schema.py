"""The InfluxDB schema the dashboards query, in the terms of InfluxDB's field types.

Derived from the sink's own schema (:data:`rig.metrics.lineproto.MEASUREMENTS`), so the
dashboards and the points written can never disagree; a test checks every query names
only what is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.metrics.lineproto import MEASUREMENTS, TAG_KEYS

__all__ = ["COMMON_TAGS", "SCHEMA", "Measurement"]

COMMON_TAGS: tuple[str, ...] = TAG_KEYS
"""Tags of every measurement (``RecordTags``)."""

_INFLUX_TYPES = {"int": "integer", "float": "float", "str": "string", "bool": "boolean"}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement: its tags and its fields with their InfluxDB types."""

    name: str
    tags: tuple[str, ...]
    fields: dict[str, str]
    """Field name -> ``integer``, ``float``, ``string`` or ``boolean``."""


SCHEMA: dict[str, Measurement] = {
    m.name: Measurement(
        m.name,
        (*COMMON_TAGS, *m.extra_tags),
        {name: _INFLUX_TYPES[kind] for name, kind in m.fields},
    )
    for m in MEASUREMENTS.values()
}
"""Measurement name -> what it holds."""
