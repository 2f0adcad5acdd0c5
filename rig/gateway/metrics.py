"""``GET /metrics``: the gateway's figures in the Prometheus text format (prometheus-client).

The counters of :class:`rig.gateway.stats.GatewayStats` are exposed by a collector that
reads them at scrape time (no second set of counters to keep in step), grouped into
labelled families, and the histograms from their bucket counts. Every name starts with
``rig_gateway_``; the Grafana gateway dashboard (``rig.dashboards``) reads exactly these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from rig.gateway.stats import BUCKETS, HISTOGRAMS, GatewayStats, Histogram

__all__ = ["CONTENT_TYPE_LATEST", "GatewayCollector", "exposition"]

PREFIX = "rig_gateway_"

GAUGES = {
    "connections_open": "Client WebSockets open.",
    "in_flight": "Upstream calls running.",
    "sessions": "Conversations held in connection memory.",
    "session_bytes": "JSON bytes of the conversations held in connection memory "
    "(uncompressed, packed or not).",
    "memory_rss_bytes": "Resident memory of the gateway process.",
    "checkpoint_up": "1 when the checkpoint store answered last time it was asked.",
    "draining": "1 while the gateway drains before shutting down.",
}

COUNTERS = {
    "connections": ("connections_total", "Client WebSockets accepted."),
    "upstream_requests": ("upstream_requests", "Calls made to upstreams."),
    "upstream_errors": ("upstream_errors", "Upstream calls that failed."),
    "upstream_retries": (
        "upstream_retries",
        "Upstream calls sent again (the upstream had not processed them).",
    ),
    "upstream_rate_limited": ("upstream_rate_limited", "Upstream 429 answers."),
    "resumes": ("resumes", "WebSocket continuations of a response the connection did not hold."),
    "evictions": ("evictions", "Conversations pushed out by a memory cap."),
    "checkpoint_writes": ("checkpoint_writes", "Checkpoints written."),
    "checkpoint_bytes": ("checkpoint_bytes", "Bytes of checkpoints written."),
    "checkpoint_failures": ("checkpoint_failures", "Checkpoints not written (store down)."),
    "errors": ("errors", "Errors answered to clients."),
    "compactions": ("compactions", "Idle conversations packed (zlib)."),
}

LABELLED = {
    "responses": ("outcome", {"completed": "responses_completed", "failed": "responses_failed"},
                  "Responses finished."),
    "client_bytes": ("direction", {"in": "client_bytes_in", "out": "client_bytes_out"},
                     "Bytes received from and sent to clients."),
    "upstream_bytes": ("direction", {"out": "upstream_bytes_out", "in": "upstream_bytes_in"},
                       "Bytes sent to and received from upstreams."),
    "cache_hits": ("source", {"connection": "hits_connection", "checkpoint": "hits_checkpoint"},
                   "Continuations found, by where."),
    "cache_misses": ("cause", {cause: f"misses_{cause}" for cause in
                               ("evicted", "expired", "foreign", "unavailable", "unknown")},
                     "Continuations not found, by cause."),
}  # fmt: skip


class GatewayCollector(Collector):
    """The counters and gauges, read from ``figures()`` (``/stats``'s snapshot) at scrape,
    and the ``histograms`` (:attr:`GatewayStats.histograms`)."""

    def __init__(
        self,
        figures: Callable[[], Mapping[str, Any]],
        histograms: Mapping[str, Histogram],
    ):
        self.figures = figures
        self.histograms = histograms

    def collect(self) -> Iterator[Metric]:
        """One family per figure."""
        values = self.figures()
        for name, text in GAUGES.items():
            yield GaugeMetricFamily(PREFIX + name, text, value=float(values.get(name, 0)))
        for name, (key, text) in COUNTERS.items():
            yield CounterMetricFamily(PREFIX + name, text, value=float(values.get(key, 0)))
        for name, (label, keys, text) in LABELLED.items():
            family = CounterMetricFamily(PREFIX + name, text, labels=[label])
            for value, key in keys.items():
                family.add_metric([value], float(values.get(key, 0)))
            yield family
        for name, histogram in self.histograms.items():
            yield histogram_family(PREFIX + name, HISTOGRAMS[name], histogram)


def histogram_family(name: str, text: str, histogram: Histogram) -> HistogramMetricFamily:
    """``histogram`` as Prometheus exposes a histogram: cumulative ``le`` buckets (the
    bounds written as prometheus-client writes them), ``+Inf``, the sum."""
    buckets = []
    total = 0
    for bound, count in zip([*BUCKETS, float("inf")], histogram.counts, strict=True):
        total += count
        buckets.append((floatToGoString(bound), float(total)))
    return HistogramMetricFamily(name, text, buckets=buckets, sum_value=histogram.sum)


def exposition(stats: GatewayStats) -> bytes:
    """The Prometheus text of every figure and histogram of ``stats``' registry (a
    :class:`GatewayCollector` is registered there by the app)."""
    return generate_latest(stats.registry)
