"""report.html and render_run: self-contained, escaped, a plot per figure, deterministic."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    RecordTags,
    TaskRecord,
    TurnRecord,
)
from rig.metrics.rundir import RunDirectory
from rig.report import RenderedRun, ReportError, render_run
from rig.report.html import CAPACITY_PLOT_IDS, PLOT_IDS, readable_time, render_html
from rig.report.summary import build_summary

LATENCY_MODEL = {"name": "fast", "base_ms": 100.0, "parse_ms_per_kb": 0.3, "tokens_per_s": 1000.0}


class PageOutline(HTMLParser):
    """Which plots a page has, and for each, the elements inside each transport's series."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, dict[str, list[str]]] = {}
        self.ids: list[str] = []
        self.tags: set[str] = set()
        self._plot: str | None = None
        self._series: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if "id" in found:
            self.ids.append(found["id"] or "")
        if tag == "svg":
            self._plot = found.get("id")
            self.plots[self._plot or ""] = {}
        elif tag == "g" and found.get("data-transport") and self._plot is not None:
            self._series = found["data-transport"]
            self.plots[self._plot][self._series] = []
            self._depth = 0
        elif self._series is not None:
            self.plots[self._plot or ""][self._series].append(tag)
        if tag == "g" and self._series is not None:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "g" and self._series is not None:
            self._depth -= 1
            if self._depth == 0:
                self._series = None
        if tag == "svg":
            self._plot = None


def outline(page: str) -> PageOutline:
    parser = PageOutline()
    parser.feed(page)
    return parser


def tags(transport: str, scenario: str = "fix_failing_test") -> RecordTags:
    return RecordTags(run="r1", scenario=scenario, transport=transport, target="mock")


def turn(transport: str, session: str, index: int, sent: int) -> TurnRecord:
    return TurnRecord(
        tags=tags(transport),
        session=session,
        turn=index,
        ts=0.0,
        bytes_sent=sent,
        bytes_recv=9000,
        body_bytes_sent=sent,
        body_bytes_recv=9000,
        ttfb_ms=90.0,
        ttft_ms=100.0 + index,
        turn_ms=300.0,
        input_tokens=10,
        cached_tokens=0,
        output_tokens=10,
        tool_calls=1,
        status="ok",
    )


def health(saturated: bool) -> HealthRecord:
    return HealthRecord(
        tags=tags("-"),
        ts=0.0,
        users=3,
        turns_per_s=1.0,
        cpu_percent=99.0 if saturated else 20.0,
        lag_ms_p99=400.0 if saturated else 2.0,
        lag_ms_max=900.0 if saturated else 3.0,
        saturated=saturated,
    )


MOCK_META = {
    "target": "mock",
    "scenario": "fix_failing_test",
    "duration_s": 30,
    "preset": "fast",
    "latency_model": LATENCY_MODEL,
}


def make_run(parent: Path, meta: dict | None = None, transports=("http", "ws")) -> RunDirectory:
    """Three 4-turn tasks per transport: http sends 2, 5, 8, 11 KB, ws 2 KB a turn."""
    meta = dict(MOCK_META if meta is None else meta)
    run = RunDirectory.create(parent, meta.pop("run_id", "r1"), meta)
    records: list = []
    for name in transports:
        for session in range(3):
            sent_total = 0
            for index in range(4):
                sent = 2000 + (3000 * index if name == "http" else 0)  # http: 2, 5, 8, 11 KB
                sent_total += sent
                records.append(turn(name, f"s{session}", index, sent))
            records.append(
                TaskRecord(
                    tags=tags(name),
                    session=f"s{session}",
                    ts=0.0,
                    task_ms=5000.0 + 100 * session,
                    turns=4,
                    bytes_sent=sent_total,
                    bytes_recv=36_000,
                    tool_calls=4,
                    ok=True,
                )
            )
    records.append(health(saturated=False))
    run.append(records)
    run.close()
    return run


def page_of(run: RunDirectory) -> str:
    return render_html(build_summary(run), run)


def test_the_page_has_every_plot_with_a_series_per_transport(tmp_path: Path) -> None:
    page = outline(page_of(make_run(tmp_path)))
    assert list(page.plots) == list(PLOT_IDS)
    for plot_id in ("plot-bytes-per-turn", "plot-ttft-per-turn"):
        assert set(page.plots[plot_id]) == {"http", "ws"}
        for elements in page.plots[plot_id].values():
            assert "polyline" in elements
            assert elements.count("circle") == 4  # one marker per turn index
    assert {
        name: "rect" in elements for name, elements in page.plots["plot-task-time"].items()
    } == {"http": True, "ws": True}
    assert set(page.plots["plot-errors"]) == {"http", "ws"}


def test_ids_are_unique(tmp_path: Path) -> None:
    ids = outline(page_of(make_run(tmp_path))).ids
    assert len(ids) == len(set(ids))


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    parsed = outline(page)
    assert parsed.tags.isdisjoint(
        {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    )
    assert not re.search(r"\b(src|href|xlink:href)\s*=", page, re.IGNORECASE)
    assert "url(" not in page
    assert "@import" not in page
    assert "@font-face" not in page
    assert "<style>" in page  # the CSS is inline


def test_hostile_strings_from_the_run_are_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    meta = {
        "run_id": '"><img src=x onerror=alert(1)>',
        "target": hostile,
        "scenario": hostile,
        "note": "<b onmouseover=alert(1)>",
        "latency_model": {"<i>": "<script>x</script>"},
    }
    run = make_run(tmp_path, meta, transports=("http", "<svg onload=alert(1)>"))
    page = page_of(run)
    assert "<script" not in page
    assert "<img" not in page
    assert "<b onmouseover" not in page
    assert "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'data-transport="&lt;svg onload=alert(1)&gt;"' in page


def test_the_latency_model_is_shown_only_when_the_target_was_the_mock(tmp_path: Path) -> None:
    mock_page = page_of(make_run(tmp_path / "a"))
    assert 'id="latency-model"' in mock_page
    assert "parse_ms_per_kb" in mock_page
    assert "preset <b>fast</b>" in mock_page
    real_page = page_of(
        make_run(tmp_path / "b", {"target": "https://api.example.com/v1", "scenario": "s"})
    )
    assert 'id="latency-model"' not in real_page


def test_the_comparison_table_shows_deltas_against_http(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    table = page[
        page.index('id="comparison-table"') : page.index(
            "</table>", page.index('id="comparison-table"')
        )
    ]
    # bytes per task: http 3 x (2, 5, 8, 11 KB) = 26 KB, ws 8 KB -> -69%
    assert "26.0 KB" in table
    assert "8.00 KB" in table
    assert '<td class="delta better">-69%</td>' in table


def test_warnings_are_shown_first(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.append([health(saturated=True)])
    run.close()
    page = page_of(run)
    assert page.index('id="warnings"') < page.index('id="comparison"')
    assert "latency figures unreliable" in page


# -- render_run -------------------------------------------------------------------------


def test_render_run_writes_summary_and_report_into_the_run_directory(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rendered = render_run(run.path)
    assert isinstance(rendered, RenderedRun)
    assert rendered.summary_path == run.path / "summary.json"
    assert rendered.report_path == run.path / "report.html"
    assert json.loads(rendered.summary_path.read_text()) == rendered.summary
    assert rendered.report_path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert not list(run.path.glob("*.tmp"))


def test_render_run_is_deterministic(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    first = render_run(run.path)
    before = (first.summary_path.read_bytes(), first.report_path.read_bytes())
    second = render_run(run.path)
    assert (second.summary_path.read_bytes(), second.report_path.read_bytes()) == before
    text = before[0].decode()
    assert "NaN" not in text and "Infinity" not in text
    assert json.dumps(json.loads(text), indent=2, sort_keys=True) == text  # sorted keys


def test_render_run_on_a_run_without_turns_says_what_to_do(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "empty", {"target": "mock"})
    with pytest.raises(ReportError, match="no turn records") as caught:
        render_run(run.path)
    assert str(run.path) in str(caught.value)
    assert not (run.path / "report.html").exists()


def test_render_run_on_something_that_is_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such run directory"):
        render_run(tmp_path / "missing")
    with pytest.raises(ReportError, match=r"meta\.json: missing; is .* a run directory\?"):
        render_run(tmp_path)


def test_a_steps_run_gets_the_capacity_section_with_a_point_per_level(tmp_path: Path) -> None:
    # All records have ts 0; a steps shape started at -10 s puts them in the first level's
    # measured window (after its 5 s settling time).
    meta = {**MOCK_META, "shape": "steps:users=2,every=20s,max=6", "started_at": -10.0}
    page_text = page_of(make_run(tmp_path, meta))
    page = outline(page_text)
    assert list(page.plots) == [*CAPACITY_PLOT_IDS, *PLOT_IDS]
    # Throughput has a point per level (0 where nothing ran); TTFT only where turns ran.
    for plot_id, points in (("plot-capacity-throughput", 3), ("plot-capacity-ttft", 1)):
        assert set(page.plots[plot_id]) == {"http", "ws"}
        for elements in page.plots[plot_id].values():
            assert elements.count("circle") == points
    assert "Capacity: concurrent sessions per transport" in page_text
    assert "the next level broke" in page_text


def test_a_run_without_a_steps_shape_has_no_capacity_section(tmp_path: Path) -> None:
    page_text = page_of(make_run(tmp_path))
    assert "Capacity:" not in page_text
    assert not set(CAPACITY_PLOT_IDS) & set(outline(page_text).plots)


def test_a_run_with_a_quota_shows_the_rate_limit_section(tmp_path: Path) -> None:
    meta = {**MOCK_META, "mock_limits": ["--rpm", "600"]}
    page_text = page_of(make_run(tmp_path, meta))
    assert "Rate limits</h2>" in page_text and "rpm 600" in page_text
    assert "Rate limits</h2>" not in page_of(make_run(tmp_path / "plain"))


def test_dropped_metric_points_are_a_warning_and_a_fault_in_the_health_section(
    tmp_path: Path,
) -> None:
    sink = {"kind": "influx-v1", "points_written": 104, "points_dropped": 332}
    page = page_of(make_run(tmp_path, {**MOCK_META, "sink": sink}))
    warnings = page[page.index('id="warnings"') : page.index('id="comparison"')]
    assert "dropped 332 points of 436" in warnings
    health_section = page[page.index('id="rig-health"') :]
    assert "104 / 332 (influx-v1)" in health_section
    assert "InfluxDB lacks 332 points" in health_section


def test_a_sink_that_lost_nothing_shows_its_count_without_a_warning(tmp_path: Path) -> None:
    sink = {"kind": "influx-v1", "points_written": 436, "points_dropped": 0}
    page = page_of(make_run(tmp_path, {**MOCK_META, "sink": sink}))
    assert "436 / 0 (influx-v1)" in page
    assert "sink dropped" not in page and "InfluxDB lacks" not in page


def test_per_turn_points_say_n_and_few_samples_are_hollow(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))  # three tasks: n = 3 at every turn index
    assert "HTTP, turn 0: 2.00 KB, n = 3 (few samples)" in page
    bytes_plot = page[page.index('id="plot-bytes-per-turn"') : page.index('id="plot-ttft')]
    assert bytes_plot.count('class="sparse"') == 8  # 4 turn indices x 2 transports
    assert "hollow point rests on fewer than 10" in page


def test_the_ingress_headline_states_its_assumptions(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    card = page[page.index('id="headline-ingress"') : page.index('id="comparison"')]
    assert "Assumes every session starts its next task as soon as one ends" in card
    # Three tasks per transport are too few: the figure is marked unreliable, saying why.
    assert "unreliable: http: only 3 completed tasks; ws: only 3 completed tasks" in card


def test_a_rate_limited_run_is_marked_unreliable_and_its_captions_say_what_counts(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path)
    run = RunDirectory(run.path)
    run.append([RateLimitRecord(tags("http"), 0.0, "requests", 500.0, 0, 500.0)])
    run.close()
    page = html.unescape(page_of(run))
    card = page[page.index('id="headline-ingress"') : page.index('id="comparison"')]
    assert 'class="card caveat" id="headline-ingress"' in page
    assert "http: 1 rate-limit hits" in card
    assert "a turn's bytes are every attempt's, the rejected ones included" in page
    assert "it includes the back-off waits" in page
    clean = page_of(make_run(tmp_path / "clean"))
    assert "the rejected ones included" not in clean and "back-off waits" not in clean


def test_the_header_says_when_the_run_started_and_that_its_duration_includes_the_drain(
    tmp_path: Path,
) -> None:
    meta = {**MOCK_META, "started_at": 1_796_213_165.25}  # 2026-12-02 12:06:05 UTC
    page = page_of(make_run(tmp_path, meta))
    header = page[page.index("<header>") : page.index("</header>")]
    assert "started <b>2026-12-02 12:06:05 UTC</b>" in header
    assert "start to end, drain included" in header
    details = page[page.index('id="run"') :]
    assert "<td>2026-12-02 12:06:05 UTC</td>" in details


def test_readable_time_refuses_what_is_not_a_time() -> None:
    assert readable_time(0) is None and readable_time("x") is None and readable_time(True) is None
    assert readable_time(1e30) is None
    assert readable_time(1_796_213_165) == "2026-12-02 12:06:05 UTC"


def test_task_time_is_explained_by_its_parts(tmp_path: Path) -> None:
    page = page_of(make_run(tmp_path))
    section = page[page.index('id="task-parts"') :]
    section = section[: section.index("</section>")]
    for part in ("connection set-up", "upload", "server parse and prefill", "streaming"):
        assert part in section
    # Four turns of 300 ms (100-103 ms to the first token) in tasks of 5.1 s on average.
    assert "<td>406 ms</td><td>794 ms</td><td>3.90 s</td>" in section
    assert section.count('class="part part-') >= 2 * 5


def relinked(run: RunDirectory, link_of) -> RunDirectory:
    """The run's records rewritten with each record's link ``link_of(record)``."""
    records = [*run.turns(), *run.tasks()]
    moved = RunDirectory.create(run.path.parent / "linked", "r1", run.read_json("meta.json"))
    moved.append(
        [dataclasses.replace(r, tags=dataclasses.replace(r.tags, link=link_of(r))) for r in records]
    )
    moved.close()
    return moved


def test_the_header_names_the_runs_single_link(tmp_path: Path) -> None:
    page = page_of(relinked(make_run(tmp_path), lambda record: "airplane"))
    header = page[page.index("<header>") : page.index("</header>")]
    assert "link <b>airplane</b>" in header
    assert 'id="by-link"' not in page


def test_a_mix_of_links_gets_a_table_per_link(tmp_path: Path) -> None:
    run = relinked(make_run(tmp_path), lambda r: "lte" if r.session == "s0" else "cable")
    page = page_of(run)
    header = page[page.index("<header>") : page.index("</header>")]
    assert "links <b>cable, lte (figures by link below)</b>" in header
    section = page[page.index('id="by-link"') :]
    section = section[: section.index("</section>")]
    assert re.findall(r'data-link="(\w+)"', section) == ["cable", "lte"]
    lte = section[section.index('data-link="lte"') :]
    # One task of each transport ran on lte (session s0: 5.0 s, ws 8 KB, http 26 KB sent).
    assert "<td>1 / 0</td><td>100%</td><td>0 (0)</td><td>5.00 s / 5.00 s</td>" in lte
    assert "<td>26.0 KB</td>" in lte and "<td>8.00 KB</td>" in lte


def test_turn_outcomes_by_index_are_plotted_with_their_counts(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run = RunDirectory(run.path)
    failed = dataclasses.replace(turn("http", "s9", 1, 5000), status="timeout")
    run.append([turn("http", "s9", 0, 2000), failed])
    run.close()
    page = outline(page_of(run))
    for plot_id in ("plot-success-per-turn", "plot-timeouts-per-turn"):
        assert set(page.plots[plot_id]) == {"http", "ws"}
        assert page.plots[plot_id]["http"].count("circle") == 4
    text = html.unescape(page_of(run))
    assert "HTTP, turn 1: 75.0%, 3 of 4 turns successful, 1 failed (1 timed out)" in text
    assert "HTTP, turn 1: 25.0% timed out; 3 of 4" in text
    assert "WebSocket, turn 1: 100.0%, 3 of 3 turns successful, 0 failed" in text


def test_transport_settings_off_their_defaults_are_named_in_the_report_s_header(
    tmp_path: Path,
) -> None:
    options = {"ws": {"deflate": True, "resume": False}}
    named = page_of(make_run(tmp_path / "a", {**MOCK_META, "transport_options": options}))
    header = named[named.index("<header") : named.index("</header>")]
    assert "transport options" in header and "--ws-deflate yes" in header
    assert "--ws-resume" not in header  # at its default
    plain = page_of(make_run(tmp_path / "b"))
    assert "--ws-deflate" not in plain
