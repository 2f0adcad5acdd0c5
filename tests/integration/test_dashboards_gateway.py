"""Every panel of the gateway's dashboard, its PromQL with Grafana's variables and
``$__rate_interval`` substituted, against a real VictoriaMetrics (a Prometheus-compatible
server) holding two scrapes of two gateway replicas: each query returns the series it
should, with the values the scraped figures give.

The scrapes are Prometheus text written by prometheus-client from :data:`REPLICAS`, the
metric families of the gateway's ``/metrics`` as docs/gateway.md lists them (names, types
and labels written out here, not taken from the dashboard). :func:`scrapes` is the one
source: a scrape of a real gateway's ``/metrics`` can replace it, with the expectations
then read from that gateway's ``/stats``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rig.dashboards import ALL, build_prometheus, prometheus_queries
from rig.dashboards.gateway import METRICS, PREFIX
from rig.dashboards.provisioning import SCRAPE_INTERVAL
from rig.dashboards.templating import parse_interval_ms
from tests.servers import VictoriaMetricsServer, start_gateway, start_mock

JOB = "rig-gateway"
SCRAPE_S = 30
"""Seconds between the two scrapes: every rate is an increment over this."""
CHECKPOINT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
COUNTERS: dict[str, tuple[str, ...]] = {
    "connections": (),
    "responses": ("outcome",),
    "client_bytes": ("direction",),
    "upstream_bytes": ("direction",),
    "upstream_requests": (),
    "upstream_errors": (),
    "upstream_retries": (),
    "upstream_rate_limited": (),
    "cache_hits": ("source",),
    "cache_misses": ("cause",),
    "resumes": (),
    "evictions": (),
    "checkpoint_writes": (),
    "checkpoint_bytes": (),
    "checkpoint_failures": (),
    "errors": (),
}
"""Counter families without the ``_total`` prometheus-client appends, and their labels."""
GAUGES = ("connections_open", "in_flight", "sessions", "session_bytes", "memory_rss_bytes",
          "checkpoint_up", "draining")  # fmt: skip
HISTOGRAMS = {"checkpoint_seconds": CHECKPOINT_BUCKETS, "upstream_ttfb_seconds": TTFB_BUCKETS}

Labels = tuple[str, ...]


@dataclass
class Replica:
    """One gateway replica's figures between the two scrapes: counter increments (by
    label values), gauges at the second scrape, and the histograms' new observations."""

    instance: str
    increments: dict[str, dict[Labels, float]]
    gauges: dict[str, float]
    observations: dict[str, list[float]]
    before: dict[str, float] = field(default_factory=dict)
    """Gauges at the first scrape (the dashboard must show the latest)."""


REPLICAS = (
    Replica(
        "10.0.0.1:8100",
        increments={
            "connections": {(): 12},
            "responses": {("completed",): 90, ("failed",): 3},
            "client_bytes": {("in",): 30_000, ("out",): 300_000},
            "upstream_bytes": {("out",): 600_000, ("in",): 270_000},
            "upstream_requests": {(): 93},
            "upstream_errors": {(): 3},
            "upstream_retries": {(): 6},
            "upstream_rate_limited": {(): 0},
            "cache_hits": {("connection",): 60, ("checkpoint",): 15},
            "cache_misses": {("evicted",): 3, ("expired",): 0, ("foreign",): 3, ("unknown",): 0},
            "resumes": {(): 9},
            "evictions": {(): 30},
            "checkpoint_writes": {(): 90},
            "checkpoint_bytes": {(): 450_000},
            "checkpoint_failures": {(): 0},
            "errors": {(): 3},
        },
        gauges={
            "connections_open": 12,
            "in_flight": 3,
            "sessions": 4,
            "session_bytes": 40_000,
            "memory_rss_bytes": 200_000_000,
            "checkpoint_up": 1,
            "draining": 0,
        },
        observations={
            "checkpoint_seconds": [0.0008] * 60 + [0.004] * 10,
            "upstream_ttfb_seconds": [0.03] * 50,
        },
        before={"connections_open": 30, "sessions": 9, "session_bytes": 1, "in_flight": 8},
    ),
    Replica(
        "10.0.0.2:8100",
        increments={
            "connections": {(): 18},
            "responses": {("completed",): 60, ("failed",): 0},
            "client_bytes": {("in",): 60_000, ("out",): 150_000},
            "upstream_bytes": {("out",): 1_200_000, ("in",): 180_000},
            "upstream_requests": {(): 60},
            "upstream_errors": {(): 0},
            "upstream_retries": {(): 0},
            "upstream_rate_limited": {(): 3},
            "cache_hits": {("connection",): 30, ("checkpoint",): 0},
            "cache_misses": {("evicted",): 0, ("expired",): 6, ("foreign",): 3, ("unknown",): 0},
            "resumes": {(): 6},
            "evictions": {(): 0},
            "checkpoint_writes": {(): 60},
            "checkpoint_bytes": {(): 300_000},
            "checkpoint_failures": {(): 3},
            "errors": {(): 3},
        },
        # A replica that holds no session: no memory per session, not a division by zero.
        gauges={
            "connections_open": 7,
            "in_flight": 0,
            "sessions": 0,
            "session_bytes": 0,
            "memory_rss_bytes": 100_000_000,
            "checkpoint_up": 0,
            "draining": 1,
        },
        observations={
            "checkpoint_seconds": [0.0008] * 30,
            "upstream_ttfb_seconds": [0.03] * 40 + [0.3] * 10,
        },
    ),
)
EARLIER = {"checkpoint_seconds": [0.09] * 50, "upstream_ttfb_seconds": [0.9] * 50}
"""Observations before the first scrape: outside every rate, so in no quantile."""


def _registry(replica: Replica, second: bool) -> prometheus_client.CollectorRegistry:
    """The replica's metrics at the first or second scrape, as prometheus-client exposes
    them. Counters start from a history of their own (ten increments' worth)."""
    registry = prometheus_client.CollectorRegistry()
    prefix = "rig_gateway_"
    for name, labels in COUNTERS.items():
        counter = prometheus_client.Counter(prefix + name, name, labels, registry=registry)
        for values, amount in replica.increments[name].items():
            child = counter.labels(*values) if labels else counter
            child.inc(amount * 10 + 1 + (amount if second else 0))
    for name in GAUGES:
        gauge = prometheus_client.Gauge(prefix + name, name, registry=registry)
        value = replica.gauges[name] if second else replica.before.get(name, replica.gauges[name])
        gauge.set(value)
    for name, buckets in HISTOGRAMS.items():
        histogram = prometheus_client.Histogram(
            prefix + name, name, buckets=buckets, registry=registry
        )
        for value in EARLIER[name] + (replica.observations[name] if second else []):
            histogram.observe(value)
    return registry


def _with_timestamp(text: str, at_ms: int) -> str:
    """Every sample line of ``text`` stamped with the scrape's time."""
    lines = text.splitlines()
    return "".join(
        f"{line} {at_ms}\n" if line and line[0] != "#" else f"{line}\n" for line in lines
    )


def scrapes(first_at: float) -> Iterator[tuple[str, float, str]]:
    """(instance, Unix seconds, exposition text with timestamps) of every scrape."""
    for index, at in enumerate((first_at, first_at + SCRAPE_S)):
        for replica in REPLICAS:
            text = prometheus_client.generate_latest(_registry(replica, index == 1)).decode()
            yield replica.instance, at, _with_timestamp(text, int(at * 1000))


def _rate(name: str, values: Labels = ()) -> float:
    return sum(r.increments[name].get(values, 0) for r in REPLICAS) / SCRAPE_S


def _by(name: str, label: str) -> dict[frozenset, float]:
    values = {v for r in REPLICAS for v in r.increments[name]}
    return {frozenset({(label, v[0])}): _rate(name, v) for v in values}


def _gauge(name: str) -> dict[frozenset, float]:
    return {frozenset({("instance", r.instance)}): r.gauges[name] for r in REPLICAS}


def _per_session(name: str) -> dict[frozenset, float]:
    return {
        frozenset({("instance", r.instance)}): r.gauges[name] / r.gauges["sessions"]
        for r in REPLICAS
        if r.gauges["sessions"] > 0
    }


def _quantile(q: float, name: str) -> float:
    """Prometheus's histogram_quantile over the increments of every replica's buckets:
    the bucket holding rank q * count, linearly interpolated within it."""
    observed = [v for r in REPLICAS for v in r.observations[name]]
    bounds = (*HISTOGRAMS[name], math.inf)
    cumulative = [sum(v <= le for v in observed) for le in bounds]
    rank = q * cumulative[-1]
    index = next(i for i, count in enumerate(cumulative) if count >= rank)
    lower = 0.0 if index == 0 else bounds[index - 1]
    below = 0 if index == 0 else cumulative[index - 1]
    return lower + (bounds[index] - lower) * (rank - below) / (cumulative[index] - below)


def _one(value: float) -> dict[frozenset, float]:
    return {frozenset(): value}


EXPECTED: dict[tuple[str, str], dict[frozenset, float]] = {
    ("Client edge vs upstream bytes per second", "A"): _by("client_bytes", "direction"),
    ("Client edge vs upstream bytes per second", "B"): _by("upstream_bytes", "direction"),
    ("Upstream bytes sent per client byte received", "A"): _one(
        _rate("upstream_bytes", ("out",)) / _rate("client_bytes", ("in",))
    ),
    ("Continuations: hits and misses per second", "A"): _by("cache_hits", "source"),
    ("Continuations: hits and misses per second", "B"): _by("cache_misses", "cause"),
    ("Resumes and evictions per second", "A"): _one(_rate("resumes")),
    ("Resumes and evictions per second", "B"): _one(_rate("evictions")),
    ("Sessions in memory", "A"): _gauge("sessions"),
    ("Memory per session", "A"): _per_session("session_bytes"),
    ("Memory per session", "B"): _per_session("memory_rss_bytes"),
    ("Connections", "A"): _gauge("connections_open"),
    ("Connections", "B"): _one(_rate("connections")),
    ("Checkpoint writes per second", "A"): _one(_rate("checkpoint_writes")),
    ("Checkpoint writes per second", "B"): _one(_rate("checkpoint_failures")),
    ("Checkpoint bytes per second", "A"): _one(_rate("checkpoint_bytes")),
    ("Checkpoint write latency", "A"): _one(_quantile(0.5, "checkpoint_seconds")),
    ("Checkpoint write latency", "B"): _one(_quantile(0.99, "checkpoint_seconds")),
    ("Upstream time to first byte", "A"): _one(_quantile(0.5, "upstream_ttfb_seconds")),
    ("Upstream time to first byte", "B"): _one(_quantile(0.99, "upstream_ttfb_seconds")),
    ("Responses in flight", "A"): _gauge("in_flight"),
    ("Responses and upstream requests per second", "A"): _by("responses", "outcome"),
    ("Responses and upstream requests per second", "B"): _one(_rate("upstream_requests")),
    ("Errors per second", "A"): _one(_rate("errors")),
    ("Errors per second", "B"): _one(_rate("upstream_errors")),
    ("Errors per second", "C"): _one(_rate("upstream_rate_limited")),
    ("Errors per second", "D"): _one(_rate("upstream_retries")),
    ("Checkpoint store up", "A"): _gauge("checkpoint_up"),
    ("Draining", "A"): _gauge("draining"),
}
"""Each panel target's answer at the second scrape: labels -> value."""


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VictoriaMetricsServer, float]]:
    """A VictoriaMetrics holding both scrapes of both replicas; the second scrape's time."""
    server = VictoriaMetricsServer(str(tmp_path_factory.mktemp("vm")))
    try:
        first_at = float(int(time.time()) - 300)
        samples = 0
        for instance, _, text in scrapes(first_at):
            server.import_prometheus(text, {"job": JOB, "instance": instance})
            samples += sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        last_at = first_at + SCRAPE_S
        # Newly ingested series become searchable a moment later: poll the server's answer.
        deadline = time.monotonic() + 30
        query = f'count(count_over_time({{job="{JOB}"}}[{SCRAPE_S * 2}s]))'
        while (found := _value(server.query(query, last_at))) != samples / 2:
            assert time.monotonic() < deadline, f"{found} of {samples / 2} series searchable"
            time.sleep(0.1)
        yield server, last_at
    finally:
        server.stop()


def _value(result: list[dict]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def _queries(**variables: str | list[str]):
    values: dict[str, str | list[str]] = {"job": ALL, "instance": ALL, **variables}
    return prometheus_queries(
        build_prometheus()["rig-gateway"],
        values,
        interval_ms=15_000,
        scrape_interval_ms=parse_interval_ms(SCRAPE_INTERVAL),
    )


def test_every_panel_target_has_an_expectation() -> None:
    assert {(q.panel_title, q.ref_id) for q in _queries()} == set(EXPECTED)


def test_every_panel_query_returns_the_figures_of_the_scrapes(scraped) -> None:
    server, at = scraped
    for query in _queries():
        result = server.query(query.expr, at)
        got = {frozenset(item["metric"].items()): float(item["value"][1]) for item in result}
        expected = EXPECTED[(query.panel_title, query.ref_id)]
        where = f"{query.panel_title} / {query.ref_id}: {query.expr}"
        assert set(got) == set(expected), where
        for labels, value in expected.items():
            assert got[labels] == pytest.approx(value, rel=1e-9), (where, dict(labels))


def test_the_instance_variable_selects_one_replica(scraped) -> None:
    server, at = scraped
    first = REPLICAS[0]
    (query,) = [
        q
        for q in _queries(instance=[first.instance])
        if q.panel_title == "Resumes and evictions per second" and q.ref_id == "A"
    ]
    assert _value(server.query(query.expr, at)) == pytest.approx(
        first.increments["resumes"][()] / SCRAPE_S
    )
    (query,) = [q for q in _queries(job="other") if q.panel_title == "Sessions in memory"]
    assert server.query(query.expr, at) == []


# -- the real gateway's /metrics -------------------------------------------------------


@pytest.fixture(scope="module")
def real_gateway() -> Iterator[tuple[str, str]]:
    """The mock and a gateway in front of it: (gateway /v1 URL, its origin)."""
    mock, upstream = start_mock("--preset", "instant")
    gateway, url = start_gateway(upstream)
    try:
        yield url, url.removesuffix("/v1")
    finally:
        gateway.stop()
        mock.stop()


def _families(origin: str) -> dict[str, Any]:
    text = httpx.get(origin + "/metrics", timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def _session(url: str, turns: int, while_open: Any = None) -> Any:
    """A WebSocket session of ``turns``; ``while_open()``'s answer, called before it
    closes (its conversation still held)."""
    with (
        openai.OpenAI(base_url=url, api_key="sk-dash-0001", max_retries=0) as client,
        client.responses.connect() as ws,
    ):
        previous = None
        for turn in range(turns):
            ws.response.create(
                model="mock-agent", previous_response_id=previous, input=f"step {turn}"
            )
            for event in ws:
                if event.type == "response.completed":
                    previous = event.response.id
                    break
                assert event.type != "error", event
        return while_open() if while_open is not None else None


def test_the_real_gateway_exposes_every_family_the_dashboard_reads(
    real_gateway: tuple[str, str],
) -> None:
    url, origin = real_gateway
    _session(url, 2)
    families = _families(origin)
    for name, metric in METRICS.items():
        # prometheus-client names a counter family without its _total suffix.
        family = families.get(PREFIX + name.removesuffix("_total"))
        assert family is not None, name
        assert family.type == metric.kind, name
        labels = {key for s in family.samples for key in s.labels if key != "le"}
        assert labels == set(metric.labels), name


def test_every_panel_query_answers_on_the_real_gateways_scrapes(
    real_gateway: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    url, origin = real_gateway
    server = VictoriaMetricsServer(str(tmp_path_factory.mktemp("vm-real")))
    try:
        first_at = float(int(time.time()) - 300)
        first = httpx.get(origin + "/metrics", timeout=10).text
        stats, second = _session(
            url,
            3,
            lambda: (
                httpx.get(origin + "/stats", timeout=10).json(),
                httpx.get(origin + "/metrics", timeout=10).text,
            ),
        )
        labels = {"job": JOB, "instance": "gw-real:8100"}
        server.import_prometheus(_with_timestamp(first, int(first_at * 1000)), labels)
        last_at = first_at + SCRAPE_S
        server.import_prometheus(_with_timestamp(second, int(last_at * 1000)), labels)
        query = f'rig_gateway_checkpoint_writes_total{{job="{JOB}"}}'
        deadline = time.monotonic() + 30
        while _value(server.query(query, last_at)) != stats["checkpoint_writes"]:
            assert time.monotonic() < deadline, "the scrapes never became searchable"
            time.sleep(0.1)
        empty = []
        for panel in _queries():
            if not server.query(panel.expr, last_at):
                empty.append(f"{panel.panel_title} / {panel.ref_id}")
        # Every panel draws from the real gateway (misses, failures and rate limits are
        # zero-valued series, still present).
        assert empty == []
    finally:
        server.stop()
