"""From the builders to files: the dashboards and provisioning files as text, written or
checked against a directory.

The text is deterministic (keys sorted, two-space indent, a trailing newline), so a
regeneration that changes nothing leaves git clean and ``--check`` can run in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.dashboards import gateway, health, ingress, latency, ratelimits
from rig.dashboards.provisioning import (
    dashboard_provider_yaml,
    datasource_yaml,
    prometheus_datasource_yaml,
)

__all__ = [
    "BUILDERS",
    "DATASOURCE_FILE",
    "PROMETHEUS_BUILDERS",
    "PROMETHEUS_DATASOURCE_FILE",
    "PROVIDER_FILE",
    "build_all",
    "build_prometheus",
    "check_files",
    "dashboard_json",
    "default_output_dir",
    "render_all",
    "write_files",
]

BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "ingress.json": ingress.build,
    "latency.json": latency.build,
    "ratelimits.json": ratelimits.build,
    "health.json": health.build,
}
"""File name under dashboards/ -> the builder of that dashboard: the dashboards over the
load's records in InfluxDB (datasource ``rig-influxdb``)."""

PROMETHEUS_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "gateway.json": gateway.build,
}
"""The same for the dashboards over a server's Prometheus metrics (``rig-prometheus``)."""

DATASOURCE_FILE = "provisioning/datasources/rig.yaml"
PROMETHEUS_DATASOURCE_FILE = "provisioning/datasources/rig-prometheus.yaml"
PROVIDER_FILE = "provisioning/dashboards/rig.yaml"


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard over the InfluxDB records as Grafana's JSON model, by uid."""
    built = [build() for build in BUILDERS.values()]
    return {d["uid"]: d for d in built}


def build_prometheus() -> dict[str, dict[str, Any]]:
    """Every dashboard over Prometheus metrics as Grafana's JSON model, by uid."""
    built = [build() for build in PROMETHEUS_BUILDERS.values()]
    return {d["uid"]: d for d in built}


def dashboard_json(dashboard: dict[str, Any]) -> str:
    """The file text of one dashboard."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """Every generated file: path relative to dashboards/ -> its text."""
    builders = {**BUILDERS, **PROMETHEUS_BUILDERS}
    files = {name: dashboard_json(build()) for name, build in builders.items()}
    files[DATASOURCE_FILE] = datasource_yaml()
    files[PROMETHEUS_DATASOURCE_FILE] = prometheus_datasource_yaml()
    files[PROVIDER_FILE] = dashboard_provider_yaml()
    return dict(sorted(files.items()))


def default_output_dir() -> Path | None:
    """dashboards/ of the source checkout this package runs from, if it does."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "dashboards").is_dir():
        return root / "dashboards"
    return None


def write_files(out: str | os.PathLike[str]) -> list[str]:
    """Write every file under ``out``; returns the paths whose content changed."""
    changed = []
    for name, text in render_all().items():
        path = Path(out) / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(name)
    return changed


def check_files(out: str | os.PathLike[str]) -> list[str]:
    """The files under ``out`` that are missing or differ from what the builders give."""
    stale = []
    for name, text in render_all().items():
        path = Path(out) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
