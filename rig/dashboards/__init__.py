"""Grafana dashboards as code: builders for the rig's dashboards, the provisioning files,
and the substitution of template variables that runs panel queries outside Grafana.

- :func:`render_all` gives every generated file (``dashboards/*.json`` and the
  provisioning YAML) as text; ``rig dashboards generate`` writes them, other tools (the
  Kubernetes manifests) embed them.
- :func:`panel_queries` gives each panel's InfluxQL with variables and time range filled,
  as Grafana would send it; :func:`prometheus_queries` each PromQL target likewise.
- ``rig dashboards push`` (:mod:`rig.dashboards.push`) creates or updates them in a
  running Grafana.

Dashboards (uid): ``rig-ingress`` ingress savings, ``rig-latency`` latency,
``rig-ratelimits`` rate limits, ``rig-health`` load generator health: their queries read
the InfluxDB schema of :mod:`rig.dashboards.schema` through the datasource
``rig-influxdb``. ``rig-gateway``, the gateway: PromQL over the gateway's ``/metrics``
(:data:`rig.dashboards.gateway.METRICS`) through the datasource ``rig-prometheus``.
"""

from __future__ import annotations

from rig.dashboards.model import DATASOURCE_UID, PROMETHEUS_DATASOURCE_UID
from rig.dashboards.render import (
    BUILDERS,
    PROMETHEUS_BUILDERS,
    build_all,
    build_prometheus,
    check_files,
    dashboard_json,
    render_all,
    write_files,
)
from rig.dashboards.schema import SCHEMA, Measurement
from rig.dashboards.templating import (
    ALL,
    PanelQuery,
    PromPanelQuery,
    panel_queries,
    prometheus_queries,
    variable_queries,
)

__all__ = [
    "ALL",
    "BUILDERS",
    "DATASOURCE_UID",
    "PROMETHEUS_BUILDERS",
    "PROMETHEUS_DATASOURCE_UID",
    "SCHEMA",
    "Measurement",
    "PanelQuery",
    "PromPanelQuery",
    "build_all",
    "build_prometheus",
    "check_files",
    "dashboard_json",
    "panel_queries",
    "prometheus_queries",
    "render_all",
    "variable_queries",
    "write_files",
]
