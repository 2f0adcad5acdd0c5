"""report.html as a browser renders it: headless Chromium, no network, DOM and screenshot.

The run is synthetic but shaped like a real one (HTTP requests growing ~3.7 KB a turn from
~2.7 KB, WebSocket continuations flat at ~2.2 KB, GPT-5.4-like TTFTs, a timeout, a few
rate-limit hits). Chromium is the Debian package ``chromium``; in CI a missing binary fails.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    RecordTags,
    TaskRecord,
    TurnRecord,
)
from rig.metrics.rundir import RunDirectory
from rig.report import render_run
from rig.report.html import PLOT_IDS
from rig.report.palette import color
from tests.servers import require_binary

TRANSPORTS = ("http", "http_chained", "ws", "ws_stored")
LATENCY_MODEL = {
    "name": "gpt-5.4",
    "base_ms": 1050,
    "parse_ms_per_kb": 3.0,
    "rehydrate_ms_per_kb": 1.5,
    "prefill_ms_per_1k_tokens": 60,
    "tokens_per_s": 110,
    "jitter": 0.12,
    "prompt_cache_hit_rate": 0.5,
}


def build_run(parent: Path, sessions: int = 30) -> RunDirectory:
    """A finished run directory with every record kind, deterministic from a seed."""
    rng = random.Random(20261121)
    run_id = "20261121-101500-3fa2"
    meta = {
        "target": "mock",
        "scenario": "mixed",
        "duration_s": 300,
        "users": 120,
        "transports": list(TRANSPORTS),
        "preset": "gpt-5.4",
        "latency_model": LATENCY_MODEL,
        "seed": 0,
    }
    run = RunDirectory.create(parent, run_id, meta)
    records: list = []
    for name in TRANSPORTS:
        tags = RecordTags(run=run_id, scenario="mixed", transport=name, target="mock")
        full_context = name == "http"
        for session in range(sessions):
            turns = rng.randint(8, 11)
            task_ms = sent_total = recv_total = 0.0
            for index in range(turns):
                if full_context:  # the whole conversation every turn, parsed and prefilled
                    sent = (2700 + 3700 * index) * rng.uniform(0.96, 1.04)
                    ttft = (1100 + 25 * index) * rng.uniform(0.9, 1.1)
                else:  # previous_response_id + the new items; the handshake on turn 0
                    sent = (2200 + (350 if index == 0 else 0)) * rng.uniform(0.92, 1.08)
                    ttft = (1150 if name == "http_chained" else 1060) * rng.uniform(0.9, 1.1)
                recv = (48_000 if name.startswith("http") else 34_000) * rng.uniform(0.8, 1.2)
                turn_ms = ttft + 1400 * rng.uniform(0.7, 1.3)
                timed_out = full_context and session == 4 and index == 6
                records.append(
                    TurnRecord(
                        tags=tags,
                        session=f"s{session}",
                        turn=index,
                        ts=1000.0 + task_ms / 1000,
                        bytes_sent=int(sent),
                        bytes_recv=int(recv),
                        body_bytes_sent=int(sent) - 350,
                        body_bytes_recv=int(recv) - 1500,
                        ttfb_ms=ttft * 0.7,
                        ttft_ms=ttft,
                        turn_ms=turn_ms,
                        input_tokens=1000 + 900 * index,
                        cached_tokens=0,
                        output_tokens=180,
                        tool_calls=1 + index % 2,
                        status="timeout" if timed_out else "ok",
                    )
                )
                task_ms += turn_ms + 900 * rng.uniform(0.2, 2.0)
                sent_total += int(sent)
                recv_total += int(recv)
            records.append(
                TaskRecord(
                    tags=tags,
                    session=f"s{session}",
                    ts=1000.0,
                    task_ms=task_ms,
                    turns=turns,
                    bytes_sent=int(sent_total),
                    bytes_recv=int(recv_total),
                    tool_calls=turns,
                    ok=not (full_context and session == 4),
                )
            )
        if name == "ws":
            records += [RateLimitRecord(tags, 1000.0 + k, "requests", 1200.0, 0) for k in range(3)]
    health_tags = RecordTags(run=run_id, scenario="mixed", transport="-", target="mock")
    records += [
        HealthRecord(
            tags=health_tags,
            ts=1000.0 + 10 * k,
            users=120,
            turns_per_s=40.0,
            cpu_percent=35.0 + k,
            lag_ms_p99=4.0 + k / 10,
            lag_ms_max=11.0,
            saturated=False,
        )
        for k in range(12)
    ]
    run.append(records)
    run.close()
    return run


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with every network path closed: a dead proxy, no DNS, no updates."""
    argv = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


class SeriesPoints(HTMLParser):
    """From a rendered DOM: each plot's series, with the points of its polyline if any."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, dict[str, list[tuple[float, float]] | None]] = {}
        self._plot: str | None = None
        self._series: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self._plot = found.get("id") or ""
            self.plots[self._plot] = {}
        elif tag == "g" and found.get("data-transport") and self._plot is not None:
            self._series = found["data-transport"]
            self.plots[self._plot][self._series] = None
        elif tag == "polyline" and self._plot is not None and self._series is not None:
            self.plots[self._plot][self._series] = [
                (float(x), float(y))
                for x, y in (pair.split(",") for pair in (found.get("points") or "").split())
            ]

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._plot = self._series = None


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """The report of a realistic run, opened in Chromium: (DOM, screenshot, net log)."""
    binary = require_binary("chromium")
    base = tmp_path_factory.mktemp("report")
    report = render_run(build_run(base / "runs").path).report_path
    url = report.resolve().as_uri()
    netlog = base / "netlog.json"
    dom = chromium(binary, base / "profile-dom", f"--log-net-log={netlog}", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    screenshot = base / "report.png"
    shot = chromium(
        binary,
        base / "profile-shot",
        "--window-size=1400,4000",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        url,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout, screenshot, netlog


def test_the_rendered_dom_has_every_plot_with_a_line_or_box_per_transport(rendered) -> None:
    dom, _, _ = rendered
    parser = SeriesPoints()
    parser.feed(dom)
    assert [plot for plot in parser.plots if plot in PLOT_IDS] == list(PLOT_IDS)
    for plot_id in ("plot-bytes-per-turn", "plot-ttft-per-turn"):
        assert set(parser.plots[plot_id]) == set(TRANSPORTS)
        assert all(points for points in parser.plots[plot_id].values()), plot_id
    assert set(parser.plots["plot-task-time"]) == set(TRANSPORTS)
    assert set(parser.plots["plot-errors"]) == set(TRANSPORTS)


def test_http_bytes_per_turn_rise_and_websocket_stays_flat(rendered) -> None:
    dom, _, _ = rendered
    parser = SeriesPoints()
    parser.feed(dom)
    http = parser.plots["plot-bytes-per-turn"]["http"]
    ws = parser.plots["plot-bytes-per-turn"]["ws"]
    assert http is not None and ws is not None
    heights = [y for _, y in http]  # SVG y grows downwards: rising bytes, falling y
    assert all(later < earlier for earlier, later in itertools.pairwise(heights))
    ws_heights = [y for _, y in ws]
    assert max(ws_heights) - min(ws_heights) < (heights[0] - heights[-1]) / 10


def test_the_dom_shows_the_comparison_projection_and_latency_model(rendered) -> None:
    dom, _, _ = rendered
    for section in (
        "comparison-table",
        "projection-table",
        "latency-model",
        "rig-health",
        "warnings",
    ):
        assert f'id="{section}"' in dom, section
    assert "http: 1 of " in dom and " turns failed (error or timeout)" in dom
    assert "ws: 3 rate-limit hits" in dom


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked the network for. Chromium's own background requests (blocked by
    the dead proxy) have the initiator "not an origin"; a file:// page's have "null"."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
    ]


def test_the_page_requests_nothing_from_the_network(rendered) -> None:
    _, _, netlog = rendered
    assert netlog.exists()
    assert page_requests(netlog) == []


def test_the_screenshot_is_a_full_page_png_that_shows_the_plots(rendered) -> None:
    _, screenshot, _ = rendered
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(screenshot) as image:
        assert image.size == (1400, 4000)
        pixels = image.convert("RGB")
    small = pixels.resize((350, 1000))  # cheap statistics over the whole page
    colours = small.getcolors(maxcolors=350 * 1000)
    assert colours is not None and len(colours) > 200, "the page looks blank"
    white = sum(count for count, rgb in colours if min(rgb) > 245)
    assert white < 0.97 * 350 * 1000, "almost every pixel is white"
    # Each transport's colour covers thousands of pixels (its line, markers, box and bars);
    # the table swatches alone are about 400.
    full = pixels.getcolors(maxcolors=1400 * 4000) or []
    for name in ("http", "ws"):
        target = tuple(int(color(name)[i : i + 2], 16) for i in (1, 3, 5))
        near = sum(
            count
            for count, rgb in full
            if sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) < 30
        )
        assert near > 2000, f"{name}'s colour {color(name)} barely appears ({near} pixels)"
