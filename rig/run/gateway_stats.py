"""A gateway's ``GET /stats`` over a run, summed over its replicas: what ``gateway.json``
in the run directory holds and the summary's ``gateway`` section reads
(:mod:`rig.report.gateway`).

``rig compare --target gateway`` samples the gateway it started (or the ``--target-url``
replicas); a Locust master (``--gateway-stats URL``, the Kubernetes ``gateway`` overlay)
reads every replica behind one name: a host name that resolves to several addresses (a
headless Service) is read at each of them (:func:`replica_urls`).
"""

from __future__ import annotations

import socket
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["StatsWatch", "replica_urls"]


def replica_urls(url: str) -> list[str]:
    """``url`` once per address its host resolves to (sorted; the URL itself when it does
    not resolve, so the failure is reported where it is read)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return [url]
    addresses = sorted({str(info[4][0]) for info in infos})
    urls = []
    for address in addresses:
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        urls.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    return urls or [url]


def _origin(base_url: str) -> str:
    """``http://host:port`` of a base URL (where ``/stats`` is)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class StatsWatch:
    """Samples of servers' ``GET /stats`` over a run (a gateway's replicas, summed), and of
    its upstream's when the run started it: what ``gateway.json`` holds."""

    def __init__(self, base_urls: list[str], *, upstream_url: str | None = None):
        self.base_urls = base_urls
        self.upstream_url = upstream_url
        self.start: dict[str, int] = {}
        self.end: dict[str, int] = {}
        self.samples: list[dict[str, int]] = []
        self.upstream_start: dict[str, int] | None = None
        self.upstream_end: dict[str, int] | None = None
        self.errors: list[str] = []

    def _read(self, base_urls: list[str]) -> dict[str, int]:
        """Every integer figure of ``/stats``, summed over ``base_urls``."""
        # urllib, not httpx: under gevent's patching httpcore's import of trio fails.
        import json
        import urllib.request

        total: dict[str, int] = defaultdict(int)
        for url in base_urls:
            try:
                with urllib.request.urlopen(_origin(url) + "/stats", timeout=10) as answer:
                    figures = json.loads(answer.read())
            except (OSError, ValueError) as exc:
                self.errors.append(f"{_origin(url)}/stats: {exc}")
                continue
            for name, value in figures.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[name] += value
        return dict(total)

    def _upstream(self) -> dict[str, int] | None:
        return None if self.upstream_url is None else self._read([self.upstream_url])

    def begin(self) -> None:
        """Before the run."""
        self.start = self._read(self.base_urls)
        self.upstream_start = self._upstream()

    def sample(self) -> None:
        """During the run (the gauges: sessions, memory)."""
        self.samples.append(self._read(self.base_urls))

    def finish(self) -> None:
        """After the run."""
        self.end = self._read(self.base_urls)
        self.upstream_end = self._upstream()

    def observed(self, *, embedded: bool) -> dict[str, Any]:
        """``gateway.json``'s content (see :mod:`rig.report.gateway`)."""
        return {
            "url": ",".join(self.base_urls),
            "embedded": embedded,
            "stats_start": self.start,
            "stats_end": self.end,
            "samples": self.samples,
            "upstream_stats_start": self.upstream_start,
            "upstream_stats_end": self.upstream_end,
            "errors": self.errors[:10],
        }
