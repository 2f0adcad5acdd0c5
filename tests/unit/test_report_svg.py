"""Inline SVG charts: ticks, coordinates, series markup and escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rig.report.svg import WIDTH, Bar, Box, Series, bar_chart, box_plot, line_chart, nice_ticks


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the markup is well-formed


def series_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-transport"): g for g in root.iter("g") if g.get("class") == "series"}


@pytest.mark.parametrize(
    ("low", "high", "count", "integer", "ticks"),
    [
        (0, 37, 5, False, [0, 10, 20, 30, 40]),
        (0, 40, 5, False, [0, 10, 20, 30, 40]),
        (0, 1253, 5, False, [0, 500, 1000, 1500]),
        (0, 1100, 5, False, [0, 250, 500, 750, 1000, 1250]),
        (0, 0.9, 5, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0, 9, 8, True, [0, 2, 4, 6, 8, 10]),
        (3, 3, 8, True, [3, 4]),
        (0, 2, 8, True, [0, 1, 2]),
    ],
)
def test_nice_ticks_cover_the_range_with_round_steps(
    low: float, high: float, count: int, integer: bool, ticks: list[float]
) -> None:
    assert nice_ticks(low, high, count, integer=integer) == pytest.approx(ticks)


def test_a_line_chart_has_one_series_group_per_transport_with_a_polyline() -> None:
    rising = Series("http", "HTTP", "#D55E00", ((0, 2.0), (1, 6.0), (2, 10.0)))
    flat = Series("ws", "WebSocket", "#0072B2", ((0, 2.0), (1, 2.0), (2, 2.0)), dash="6 3")
    root = parse(
        line_chart("plot-x", "Bytes", [rising, flat], "turn", "KB", lambda s, x, y: f"{y}")
    )
    assert root.get("id") == "plot-x"
    groups = series_groups(root)
    assert set(groups) == {"http", "ws"}
    http_points = [
        tuple(map(float, p.split(",")))
        for p in groups["http"].find("polyline").get("points").split()
    ]
    ws_points = [
        tuple(map(float, p.split(","))) for p in groups["ws"].find("polyline").get("points").split()
    ]
    assert [x for x, _ in http_points] == sorted(x for x, _ in http_points)
    assert http_points[0][1] > http_points[1][1] > http_points[2][1]  # SVG y grows downwards
    assert len({y for _, y in ws_points}) == 1
    assert http_points[0][1] == ws_points[0][1]  # same value, same height
    assert groups["ws"].find("polyline").get("stroke-dasharray") == "6 3"
    assert len(groups["http"].findall("circle")) == 3


def test_a_line_chart_y_axis_starts_at_zero_and_covers_the_maximum() -> None:
    chart = line_chart(
        "p", "t", [Series("ws", "WS", "#000", ((0, 37.0),))], "turn", "KB", lambda s, x, y: ""
    )
    labels = [
        t.text
        for g in parse(chart).iter("g")
        if g.get("class") == "axis y-axis"
        for t in g.iter("text")
    ]
    assert labels[0] == "0"
    assert labels[-2] == "40"  # the last text is the axis title
    assert labels[-1] == "KB"


def test_chart_text_is_escaped() -> None:
    hostile = Series("<x>", "<script>alert(1)</script>", "#000", ((0, 1.0),))
    svg = line_chart("p", "a & b", [hostile], "<turn>", "<y>", lambda s, x, y: "<hover>")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    assert set(series_groups(root)) == {"<x>"}


def test_a_line_chart_without_points_says_so() -> None:
    svg = line_chart("p", "t", [Series("ws", "WS", "#000", ())], "turn", "KB", lambda s, x, y: "")
    assert "no data" in [t.text for t in parse(svg).iter("text")]


def test_box_of_values_uses_nearest_rank_quartiles() -> None:
    box = Box.of("ws", "WS", "#000", [float(v) for v in range(1, 9)])  # 1..8
    assert (box.low, box.q1, box.median, box.q3, box.high) == (1, 2, 4, 6, 8)
    assert box.mean == 4.5
    assert box.n == 8
    assert Box.of("ws", "WS", "#000", []) is None


def test_a_box_plot_draws_a_box_and_median_per_transport() -> None:
    boxes = [
        Box.of(name, name, "#000", values)
        for name, values in (("http", [30.0, 40.0, 50.0]), ("ws", [20.0, 25.0, 30.0]))
    ]
    root = parse(box_plot("plot-task-time", "Task time", boxes, "seconds", lambda v: f"{v} s"))
    groups = series_groups(root)
    assert set(groups) == {"http", "ws"}
    http_box = groups["http"].find("rect")
    ws_box = groups["ws"].find("rect")
    assert float(http_box.get("x")) > float(ws_box.get("x"))  # http's quartile starts later


def test_bar_heights_are_proportional_to_values() -> None:
    bars = [Bar("errors", "http", "HTTP", "#D55E00", 4), Bar("errors", "ws", "WS", "#0072B2", 2)]
    root = parse(bar_chart("plot-errors", "Errors", bars, "count"))
    groups = series_groups(root)
    heights = {key: float(g.find("rect").get("height")) for key, g in groups.items()}
    assert heights["http"] == pytest.approx(2 * heights["ws"])


def test_a_long_legend_wraps_inside_the_chart() -> None:
    names = ["HTTP", "HTTP chained", "WebSocket", "WebSocket stored", "Chat Completions"]
    series = [Series(f"t{i}", name, "#000", ((0, 1.0),)) for i, name in enumerate(names)]
    root = parse(line_chart("p", "t", series, "turn", "KB", lambda s, x, y: ""))
    legend = next(g for g in root.iter("g") if g.get("class") == "legend")
    texts = list(legend.iter("text"))
    assert [t.text for t in texts] == names
    assert all(float(t.get("x")) + 7 * len(t.text) <= WIDTH for t in texts)
    assert len({t.get("y") for t in texts}) == 2  # two rows
    plot_top = min(
        float(line.get("y1"))
        for g in root.iter("g")
        if g.get("class") == "axis y-axis"
        for line in g.iter("line")
    )
    assert plot_top > max(float(t.get("y")) for t in texts)  # the plot starts below the legend
