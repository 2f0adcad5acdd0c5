"""Server counters shared by every worker process of one mock.

Each process owns a small memory-mapped file of int64 counters in a directory the
supervisor chose; ``/stats`` sums the files of all processes, so the figures are right
whichever worker answers. Counters only grow; gauges (open connections) go up and down.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

__all__ = ["COUNTERS", "Stats"]

COUNTERS = (
    "connections_open",
    "connections_total",
    "http_requests",
    "responses_completed",
    "responses_failed",
    "chat_completions",
    "errors",
    "events_sent",
    "bytes_in",
    "bytes_out",
    "rate_limited_requests",
    "rate_limited_tokens",
    "rate_limited_inflight",
    "rate_limited_connections",
    "client_disconnects",
    "store_evictions",
    "prompt_cache_evictions",
    "plan_cache_evictions",
    "warmups",
    "ws_dropped",
)
"""Counter names in file order. ``bytes_in``/``bytes_out`` are application bytes: request
bodies and WebSocket message payloads in; response bodies (an HTTP error's JSON body
included, a rate limit's 429 among them) and message payloads out, so they reconcile
with a client's body byte counts under rate limits too.
``rate_limited_<limit>`` counts refusals (HTTP 429, WebSocket ``error`` events, refused
handshakes) by the limit that refused them; they are counted in ``errors`` too.
``client_disconnects`` counts requests whose client left before the body was read;
``*_evictions`` count entries the byte bounds of the response store, the provider prompt
cache and the scripted model's plan cache pushed out (docs/reliability.md). ``warmups``
counts responses that generated nothing (``generate: false``, a prompt-cache prewarm):
they are not model turns, so ``responses_completed`` (and ``/stats``' ``turns``) leave them
out. ``ws_dropped`` counts WebSockets dropped by ``SIGUSR1`` or ``POST /admin/drop-websockets``."""

_SLOT = {name: i for i, name in enumerate(COUNTERS)}
_SIZE = 8 * len(COUNTERS)


class Stats:
    """This process's counters, and the sum over all processes of the same mock."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}.stats"
        with open(path, "wb") as handle:
            handle.write(b"\0" * _SIZE)
        self._file = open(path, "r+b")  # noqa: SIM115 - kept open for the mapping's lifetime
        self._map = mmap.mmap(self._file.fileno(), _SIZE)
        self._values = memoryview(self._map).cast("q")

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` of this process."""
        self._values[_SLOT[name]] += amount

    def local(self) -> dict[str, int]:
        """This process's counters."""
        return {name: self._values[i] for i, name in enumerate(COUNTERS)}

    def total(self) -> dict[str, int]:
        """Counters summed over every process of this mock."""
        totals = dict.fromkeys(COUNTERS, 0)
        for path in self.directory.glob("*.stats"):
            raw = path.read_bytes()
            if len(raw) != _SIZE:
                continue
            for i, value in enumerate(memoryview(raw).cast("q")):
                totals[COUNTERS[i]] += value
        return totals

    def close(self) -> None:
        """Unmap the counters (the file stays, so totals keep this process's counts)."""
        self._values.release()
        self._map.close()
        self._file.close()
