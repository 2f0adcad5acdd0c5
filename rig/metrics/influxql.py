"""Reading a run back from InfluxDB with InfluxQL: ``rig report --influx-url ... --run ID``.

InfluxQL over ``/query`` is served by InfluxDB 1.x, by 2.x (with a DBRP mapping; 2.x
maps every bucket to a database of the same name) and by 3.x, so one reader serves all
three, as the dashboards do. Results are read chunked (one JSON document per chunk) so a
long run is not one huge response.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3

from rig.errors import RigError
from rig.metrics.lineproto import MEASUREMENTS, RUN_FIELD, RUN_MEASUREMENT, TAG_KEYS
from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    Record,
    RecordTags,
    TaskRecord,
    TurnRecord,
)
from rig.metrics.rundir import RunDirectory

__all__ = ["InfluxQLClient", "InfluxQLError", "influxql_string", "read_run", "write_run_directory"]

_RECORD_TYPES: dict[str, type[Any]] = {
    "turn": TurnRecord,
    "task": TaskRecord,
    "ratelimit": RateLimitRecord,
    "rig": HealthRecord,
}
_DEFAULTS = {"int": 0, "float": 0.0, "bool": False, "str": ""}


class InfluxQLError(RigError, RuntimeError):
    """A query failed: the server is unreachable, refused us, or rejected the query."""


def influxql_string(value: str) -> str:
    """``value`` as an InfluxQL string literal (single quotes, escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class InfluxQLClient:
    """A minimal InfluxQL client over ``/query`` (token or basic auth from the environment)."""

    url: str
    database: str
    token: str = ""
    user: str = ""
    password: str = ""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=self.timeout_s), retries=False
        )
        self._headers: dict[str, str] = {}
        if self.token:
            self._headers["Authorization"] = f"Token {self.token}"
        elif self.user:
            self._headers.update(urllib3.make_headers(basic_auth=f"{self.user}:{self.password}"))

    def query(self, statement: str) -> list[dict[str, Any]]:
        """Every series of every result of ``statement`` (``time`` as epoch nanoseconds)."""
        fields = {
            "db": self.database,
            "q": statement,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": "10000",
        }
        try:
            response = self._pool.request(
                "POST", self.url.rstrip("/") + "/query", fields=fields, headers=self._headers,
                encode_multipart=False,
            )  # fmt: skip
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfluxQLError(f"cannot reach InfluxDB at {self.url}: {exc}") from exc
        text = response.data
        if response.status >= 300:
            raise InfluxQLError(
                f"InfluxDB at {self.url} answered {response.status}: "
                f"{text.decode('utf-8', 'replace')[:300]}"
            )
        series: dict[tuple[Any, ...], dict[str, Any]] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            document = orjson.loads(line)
            if document.get("error"):
                raise InfluxQLError(f"InfluxDB: {document['error']}")
            for result in document.get("results", ()):
                if result.get("error"):
                    raise InfluxQLError(f"InfluxDB rejected {statement!r}: {result['error']}")
                for item in result.get("series", ()):
                    key = (
                        result.get("statement_id"),
                        item.get("name"),
                        tuple(sorted((item.get("tags") or {}).items())),
                    )
                    if key in series:  # a later chunk of the same series
                        series[key]["values"].extend(item.get("values", []))
                    else:
                        series[key] = {**item, "values": list(item.get("values", []))}
        return list(series.values())

    def rows(self, statement: str) -> Iterator[dict[str, Any]]:
        """Each row of each series as a dict of column to value (series tags included)."""
        for item in self.query(statement):
            columns = item["columns"]
            tags = item.get("tags") or {}
            for values in item["values"]:
                yield {**tags, **dict(zip(columns, values, strict=True))}

    def close(self) -> None:
        """Release pooled connections."""
        self._pool.clear()


def _record(kind: str, row: dict[str, Any]) -> Record:
    measurement = MEASUREMENTS[kind]
    tags = RecordTags(**{name: row.get(name) or "" for name in TAG_KEYS})
    values: dict[str, Any] = {"tags": tags, "ts": row["time"] / 1e9}
    for name, field_type in measurement.fields:
        value = row.get(name)
        values[name] = _DEFAULTS[field_type] if value is None else value
    for name in measurement.extra_tags:
        values[name] = int(row[name]) if name == "turn" else row[name]
    return _RECORD_TYPES[kind](**values)


def read_run(client: InfluxQLClient, run_id: str) -> tuple[dict[str, Any], list[Record]]:
    """The run's meta (from its ``run`` point) and every record, in time order per kind."""
    where = f'WHERE "run" = {influxql_string(run_id)}'
    meta_rows = list(
        client.rows(
            f'SELECT "{RUN_FIELD}" FROM "{RUN_MEASUREMENT}" {where} ORDER BY time DESC LIMIT 1'
        )
    )
    records: list[Record] = []
    for kind, measurement in MEASUREMENTS.items():
        records += [
            _record(kind, row) for row in client.rows(f'SELECT * FROM "{measurement.name}" {where}')
        ]
    if not meta_rows and not records:
        raise InfluxQLError(f"InfluxDB database {client.database!r} holds no run {run_id!r}")
    meta = orjson.loads(meta_rows[0][RUN_FIELD]) if meta_rows else {"run_id": run_id}
    return meta, records


def write_run_directory(
    client: InfluxQLClient, run_id: str, parent: str | os.PathLike[str]
) -> RunDirectory:
    """Rebuild ``parent/run_id`` from InfluxDB: meta.json and the record files."""
    meta, records = read_run(client, run_id)
    meta = {key: value for key, value in meta.items() if key != "run_id"}
    directory = RunDirectory.create(parent, run_id, {**meta, "source": f"influxdb {client.url}"})
    directory.append(records)
    directory.close()
    return directory
