"""The gateway's figures (one process): counters for ``GET /stats``, histograms for
``GET /metrics`` (:mod:`rig.gateway.metrics`).

Plain integers on an object the app owns: the gateway runs one process per replica, so
there is nothing to share across workers. The histograms are bucket counts here too (one
``bisect`` and two additions an observation; prometheus-client's ``Histogram`` takes a lock
for each bucket and the sum, about 2% of the gateway's CPU a turn at three observations),
exposed in the Prometheus format by :mod:`rig.gateway.metrics`' collector, registered in
a registry this object owns (no module-level state).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

__all__ = ["BUCKETS", "COUNTERS", "GAUGES", "HISTOGRAMS", "GatewayStats", "Histogram"]

GAUGES = ("connections_open", "in_flight", "draining")
"""Counters that go down as well as up (reported as Prometheus gauges)."""

COUNTERS = (
    *GAUGES,
    "connections_total",
    "http_requests",
    "responses_completed",
    "responses_failed",
    "warmups",
    "errors",
    "client_disconnects",
    "client_bytes_in",
    "client_bytes_out",
    "upstream_requests",
    "upstream_bytes_out",
    "upstream_bytes_in",
    "upstream_errors",
    "upstream_retries",
    "upstream_rate_limited",
    "upstream_ttfb_us",
    "relay_us",
    "relayed_first",
    "hits_connection",
    "hits_checkpoint",
    "misses_not_found",
    "misses_evicted",
    "misses_expired",
    "misses_foreign",
    "misses_unavailable",
    "misses_unknown",
    "resumes",
    "evictions",
    "checkpoint_writes",
    "checkpoint_bytes",
    "checkpoint_failures",
    "checkpoint_us",
    "compactions",
    "compacted_bytes",
    "compacted_to_bytes",
    "compaction_us",
)
"""Every counter, reported even while zero.

``hits_connection``: a continuation found in its WebSocket's memory; ``hits_checkpoint``:
in the checkpoints; ``misses_not_found``: neither (the sum of the ``misses_<cause>``:
evicted, expired, foreign, unavailable, unknown - one answer for all). ``resumes``: a
WebSocket continuing a response it did not hold (after a reconnect, on any replica).
``client_disconnects``: HTTP clients that left before their request's body was read.
``upstream_retries``: requests sent again because the upstream did not process them (a
kept-alive HTTP/1.1 connection closed with no byte of answer; an HTTP/2 stream refused, or
its connection gone away with none processed); such a call is one of
``upstream_requests``, its body counted once in ``upstream_bytes_out`` (what the upstream
that processed it received).
``evictions``: conversations pushed out of memory or the in-process checkpoints by their
caps. ``checkpoint_us``/``upstream_ttfb_us``: summed microseconds; ``upstream_ttfb_us`` runs
from sending the upstream request to the first bytes of its answer. ``relay_us``: the
gateway's own time to a streamed response's first event, summed over ``relayed_first``
responses - from the response's start (its request parsed) to its first event written to
the client, less the upstream's time to first byte: resolving the conversation, building
and sending the upstream request, reading and relaying the first events.
``compactions``: idle conversations packed (:class:`rig.gateway.state.IdleCompaction`),
their JSON ``compacted_bytes`` and the ``compacted_to_bytes`` of their blobs;
``compaction_us``: the packing's summed time."""

HISTOGRAMS = {
    "checkpoint_seconds": "Time to write one checkpoint.",
    "upstream_ttfb_seconds": "Time from sending the upstream request to its first bytes.",
    "relay_seconds": "The gateway's own time to a streamed response's first event.",
}
BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip


class Histogram:
    """Observations counted by bucket (Prometheus' ``le``: a value on a bound is in it)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        """Observations in each bucket of :data:`BUCKETS`, then above the last (not
        cumulative)."""
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """One observation."""
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value


class GatewayStats:
    """Counters and histograms of one gateway process."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self.registry = CollectorRegistry(auto_describe=True)
        self.histograms = {name: Histogram() for name in HISTOGRAMS}

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        self._counts[name] += amount

    def set(self, name: str, value: int) -> None:
        """Set gauge ``name``."""
        self._counts[name] = value

    def observe(self, name: str, seconds: float) -> None:
        """One observation of histogram ``name``."""
        self.histograms[name].observe(seconds)

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, Any]:
        """Every counter, as ``/stats`` returns them."""
        return dict(self._counts)
