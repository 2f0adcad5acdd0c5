"""The gateway: what it saves at the client edge and re-sends upstream, how often a
continuation finds its conversation, what its state costs (memory, checkpoints) and how
fast and healthy it relays.

From the gateway's Prometheus ``GET /metrics`` (``rig gateway``; docs/gateway.md), through
the datasource ``rig-prometheus``, not from the load's records in InfluxDB: the gateway is
the system under test and reports its own side. Rates are per second over Grafana's
``$__rate_interval``, summed over the replicas selected by ``job`` and ``instance``;
panels per replica say so. :data:`METRICS` is what the queries read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rig.dashboards.model import Panel, PromQuery, dashboard, label_variable, stat, time_series

__all__ = ["METRICS", "PREFIX", "UID", "Metric", "build"]

UID = "rig-gateway"
PREFIX = "rig_gateway_"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family of the gateway's ``/metrics`` (the name without ``PREFIX``)."""

    kind: Literal["gauge", "counter", "histogram"]
    labels: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {
    "connections_open": Metric("gauge"),
    "in_flight": Metric("gauge"),
    "sessions": Metric("gauge"),
    "session_bytes": Metric("gauge"),
    "memory_rss_bytes": Metric("gauge"),
    "checkpoint_up": Metric("gauge"),
    "draining": Metric("gauge"),
    "connections_total": Metric("counter"),
    "responses_total": Metric("counter", ("outcome",)),
    "client_bytes_total": Metric("counter", ("direction",)),
    "upstream_bytes_total": Metric("counter", ("direction",)),
    "upstream_requests_total": Metric("counter"),
    "upstream_errors_total": Metric("counter"),
    "upstream_retries_total": Metric("counter"),
    "upstream_rate_limited_total": Metric("counter"),
    "cache_hits_total": Metric("counter", ("source",)),
    "cache_misses_total": Metric("counter", ("cause",)),
    "resumes_total": Metric("counter"),
    "evictions_total": Metric("counter"),
    "checkpoint_writes_total": Metric("counter"),
    "checkpoint_bytes_total": Metric("counter"),
    "checkpoint_failures_total": Metric("counter"),
    "errors_total": Metric("counter"),
    "checkpoint_seconds": Metric("histogram"),
    "upstream_ttfb_seconds": Metric("histogram"),
}
"""The metric families the dashboard reads, by name without :data:`PREFIX`: counters as
exposed (with ``_total``), histograms by family name (read through ``_bucket``)."""

_SELECTOR = 'job=~"$job", instance=~"$instance"'


def _series(name: str, matchers: str = "") -> str:
    """``rig_gateway_<name>{job, instance[, matchers]}``."""
    if name not in METRICS and name.removesuffix("_bucket") not in METRICS:
        raise KeyError(f"{PREFIX}{name} is not one of the gateway's metrics (METRICS)")
    inner = f"{_SELECTOR}, {matchers}" if matchers else _SELECTOR
    return f"{PREFIX}{name}{{{inner}}}"


def _rate(name: str, matchers: str = "", by: str = "") -> str:
    """The per-second rate of a counter summed over the selected replicas (``by`` a label)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({_series(name, matchers)}[$__rate_interval]))"


def _per_instance(name: str) -> str:
    return f"sum by (instance) ({_series(name)})"


def _quantile(q: float, histogram: str) -> str:
    bucket = _rate(f"{histogram}_bucket", by="le")
    return f"histogram_quantile({q}, {bucket})"


def _per_session(name: str) -> str:
    """A gauge over the replica's sessions (none while it holds no session)."""
    return f"{_per_instance(name)} / ({_per_instance('sessions')} > 0)"


_UPSTREAM_OUT = _rate("upstream_bytes_total", 'direction="out"')
_CLIENT_IN = _rate("client_bytes_total", 'direction="in"')


def build() -> dict[str, Any]:
    """The gateway dashboard."""
    panels: list[Panel] = [
        time_series(
            "Client edge vs upstream bytes per second",
            "Bytes the clients sent the gateway (client in) and received (client out), "
            "against what the gateway sent its upstream (upstream out: the full context of "
            "every call) and received from it (upstream in).",
            [
                PromQuery(_rate("client_bytes_total", by="direction"), "client {{direction}}"),
                PromQuery(_rate("upstream_bytes_total", by="direction"), "upstream {{direction}}"),
            ],
            "Bps",
        ),
        time_series(
            "Upstream bytes sent per client byte received",
            "What the gateway re-sends on the datacenter side for each byte a client "
            "uploads: upstream out / client in. Clients that continue conversations upload "
            "only new items; a stateless upstream needs the whole context.",
            [PromQuery(f"{_UPSTREAM_OUT} / {_CLIENT_IN}", "upstream out / client in")],
            "short",
        ),
        time_series(
            "Continuations: hits and misses per second",
            "previous_response_id resolved from the connection's memory or the checkpoint "
            "store (hit), or not found (miss) because the conversation was evicted, expired, "
            "belongs to another key (foreign) or was never known (unknown). Every miss is "
            "answered previous_response_not_found.",
            [
                PromQuery(_rate("cache_hits_total", by="source"), "hit {{source}}"),
                PromQuery(_rate("cache_misses_total", by="cause"), "miss {{cause}}"),
            ],
            "reqps",
        ),
        time_series(
            "Resumes and evictions per second",
            "Resumes: continuations of a response another connection or replica created "
            "(a reconnect). Evictions: conversations pushed out of memory by the cap.",
            [
                PromQuery(_rate("resumes_total"), "resumes"),
                PromQuery(_rate("evictions_total"), "evictions"),
            ],
            "ops",
        ),
        time_series(
            "Sessions in memory",
            "Conversations each replica holds in memory.",
            [PromQuery(_per_instance("sessions"), "{{instance}}")],
            "short",
            width=8,
        ),
        time_series(
            "Memory per session",
            "Per replica: its conversations' bytes per session, and its whole resident "
            "memory per session (what a session costs, overhead included).",
            [
                PromQuery(_per_session("session_bytes"), "{{instance}} conversation"),
                PromQuery(_per_session("memory_rss_bytes"), "{{instance}} RSS"),
            ],
            "bytes",
            width=8,
        ),
        time_series(
            "Connections",
            "WebSocket connections open per replica, and opened per second (all replicas).",
            [
                PromQuery(_per_instance("connections_open"), "{{instance}} open"),
                PromQuery(_rate("connections_total"), "opened/s"),
            ],
            "short",
            width=8,
        ),
        time_series(
            "Checkpoint writes per second",
            "Responses written to the checkpoint store, and writes that failed (the "
            "gateway then continues on connection-local state).",
            [
                PromQuery(_rate("checkpoint_writes_total"), "writes"),
                PromQuery(_rate("checkpoint_failures_total"), "failures"),
            ],
            "ops",
            width=8,
        ),
        time_series(
            "Checkpoint bytes per second",
            "Bytes written to the checkpoint store: the gateway's own traffic to Redis.",
            [PromQuery(_rate("checkpoint_bytes_total"), "checkpoint bytes")],
            "Bps",
            width=8,
        ),
        time_series(
            "Checkpoint write latency",
            "Time to write one checkpoint, p50 and p99 over the interval (all replicas).",
            [
                PromQuery(_quantile(0.5, "checkpoint_seconds"), "p50"),
                PromQuery(_quantile(0.99, "checkpoint_seconds"), "p99"),
            ],
            "s",
            width=8,
        ),
        time_series(
            "Upstream time to first byte",
            "From the gateway's upstream request to the upstream's first response byte, "
            "p50 and p99 over the interval (all replicas): the provider's share of TTFT.",
            [
                PromQuery(_quantile(0.5, "upstream_ttfb_seconds"), "p50"),
                PromQuery(_quantile(0.99, "upstream_ttfb_seconds"), "p99"),
            ],
            "s",
            width=8,
        ),
        time_series(
            "Responses in flight",
            "Upstream calls running, per replica.",
            [PromQuery(_per_instance("in_flight"), "{{instance}}")],
            "short",
            width=8,
        ),
        time_series(
            "Responses and upstream requests per second",
            "Responses the gateway finished, by outcome, and the calls it made upstream.",
            [
                PromQuery(_rate("responses_total", by="outcome"), "{{outcome}}"),
                PromQuery(_rate("upstream_requests_total"), "upstream requests"),
            ],
            "reqps",
            width=8,
        ),
        time_series(
            "Errors per second",
            "Errors answered to clients, upstream failures (errors and timeouts), "
            "upstream 429s passed through, and upstream calls sent again because the "
            "upstream had not processed them (not errors to clients).",
            [
                PromQuery(_rate("errors_total"), "errors"),
                PromQuery(_rate("upstream_errors_total"), "upstream errors"),
                PromQuery(_rate("upstream_rate_limited_total"), "upstream 429"),
                PromQuery(_rate("upstream_retries_total"), "upstream retries"),
            ],
            "reqps",
            width=8,
        ),
        stat(
            "Checkpoint store up",
            "Per replica: 1 when the checkpoint store answers, 0 when it does not (then "
            "conversations live only on their connection).",
            [PromQuery(f"min by (instance) ({_series('checkpoint_up')})", "{{instance}}")],
            "short",
        ),
        stat(
            "Draining",
            "Per replica: 1 once it got SIGTERM and finishes its in-flight responses.",
            [PromQuery(f"max by (instance) ({_series('draining')})", "{{instance}}")],
            "short",
        ),
    ]
    for panel in panels:
        panel.color_by_transport = False
    return dashboard(
        UID,
        "Rig: gateway",
        "The stateful gateway from its Prometheus /metrics: client-edge against upstream "
        "bytes, continuations found and missed by cause, resumes, evictions, sessions and "
        "memory per session, checkpoints, upstream latency and errors.",
        panels,
        [
            label_variable("job", f"{PREFIX}connections_total", "Prometheus job(s)."),
            label_variable(
                "instance",
                f'{PREFIX}connections_total{{job=~"$job"}}',
                "Gateway replicas (Prometheus instance: pod address and port).",
            ),
        ],
    )
