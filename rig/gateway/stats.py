"""The gateway's counters (one process): what ``GET /stats`` reports.

Plain integers on an object the app owns: the gateway runs one process per replica in this
slice, so there is nothing to share across workers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["COUNTERS", "GatewayStats"]

COUNTERS = (
    "connections_open",
    "connections_total",
    "in_flight",
    "http_requests",
    "responses_completed",
    "responses_failed",
    "warmups",
    "errors",
    "client_bytes_in",
    "client_bytes_out",
    "upstream_requests",
    "upstream_bytes_out",
    "upstream_bytes_in",
    "upstream_errors",
    "upstream_rate_limited",
    "hits_connection",
    "hits_store",
    "misses_not_found",
    "store_evictions",
)
"""Every counter, reported even while zero. ``hits_connection``: a continuation found in
its WebSocket's memory; ``hits_store``: in the store (a checkpoint); ``misses_not_found``:
neither (unknown, evicted, expired or another owner's: one answer for all)."""


class GatewayStats:
    """Counters of one gateway process."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter({name: 0 for name in COUNTERS})

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        self._counts[name] += amount

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, Any]:
        """Every counter, as ``/stats`` returns them."""
        return dict(self._counts)
