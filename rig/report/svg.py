"""Inline SVG charts with no plotting library: lines, box plots and grouped bars.

Each chart is one ``<svg id=...>`` with a ``viewBox`` (it scales to its container), axes
with ticks and labels, a legend, and one ``<g class="series" data-transport=...>`` per
transport. Hovering a point or a box shows its figures (an SVG ``<title>``, no script).
All text is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rig.report.stats import mean_of, nearest_rank

__all__ = ["Bar", "Box", "Series", "bar_chart", "box_plot", "line_chart", "nice_ticks"]

WIDTH = 560
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="13"'
_GRID = "#e3e6ea"
_AXIS = "#6b7280"
_INK = "#1f2933"
_LEGEND_ROW = 20
_BOTTOM = 56  # x tick labels and the axis title


@dataclass(frozen=True, slots=True)
class Series:
    """One transport's line: (x, y) points, drawn in its colour."""

    key: str
    label: str
    color: str
    points: tuple[tuple[float, float], ...]
    dash: str = ""
    sparse: frozenset[float] = frozenset()
    """x values whose points rest on few samples: drawn hollow (the hover text says n)."""


@dataclass(frozen=True, slots=True)
class Box:
    """One transport's distribution: min, quartiles (nearest rank), max, mean and count."""

    key: str
    label: str
    color: str
    low: float
    q1: float
    median: float
    q3: float
    high: float
    mean: float
    n: int

    @classmethod
    def of(cls, key: str, label: str, color: str, values: Sequence[float]) -> Box | None:
        """The box of ``values``; ``None`` when there are none."""
        if not values:
            return None
        ordered = sorted(values)
        return cls(
            key=key,
            label=label,
            color=color,
            low=ordered[0],
            q1=nearest_rank(ordered, 25),
            median=nearest_rank(ordered, 50),
            q3=nearest_rank(ordered, 75),
            high=ordered[-1],
            mean=mean_of(ordered),
            n=len(ordered),
        )


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: a transport's count in one group of bars."""

    group: str
    key: str
    label: str
    color: str
    value: float


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area in SVG units and the data range it shows."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - (value - self.y0) / (self.y1 - self.y0) * self.height

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering ``[low, high]``: steps of 1, 2, 2.5 or 5 x 10^k (whole
    numbers when ``integer``), about ``count`` intervals."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite, got {low}..{high}")
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1, math.ceil(step))
    start = math.floor(low / step + 1e-9) * step
    ticks = []
    value = start
    while value < high - 1e-9 * step:
        ticks.append(round(value, 10))
        value = start + len(ticks) * step
    ticks.append(round(value, 10))
    return ticks


def _tick_text(ticks: Sequence[float]) -> list[str]:
    for digits in range(5):
        if all(abs(round(t, digits) - t) < 1e-9 for t in ticks):
            return [f"{t:,.{digits}f}" for t in ticks]
    return [f"{t:,.4g}" for t in ticks]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(plot_id: str, title: str, height: float) -> list[str]:
    return [
        f'<svg id="{_e(plot_id)}" class="plot" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'role="img" aria-label="{_e(title)}" {_FONT}>',
        f"<title>{_e(title)}</title>",
    ]


def _legend(
    entries: Sequence[tuple[str, str, str]], left: float, right: float, boxes: bool = False
) -> tuple[str, float]:
    """Swatch-and-label entries ``(label, colour, dash)`` in rows from ``left``, wrapping
    before ``right``: line swatches, or squares when the chart draws areas (``boxes``).
    Returns the markup and the y just below the last row."""
    parts = ['<g class="legend">']
    x, y = left, 18.0
    for label, color, dash in entries:
        width = 28 + 7 * len(label)
        if x > left and x + width > right:
            x, y = left, y + _LEGEND_ROW
        if boxes:
            swatch = (
                f'<rect x="{_n(x + 6)}" y="{_n(y - 5)}" width="10" height="10" rx="2" '
                f'fill="{color}"/>'
            )
        else:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            swatch = (
                f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 22)}" y2="{_n(y)}" '
                f'stroke="{color}" stroke-width="3"{dashed}/>'
            )
        parts.append(
            f'{swatch}<text x="{_n(x + 28)}" y="{_n(y + 4)}" fill="{_INK}">{_e(label)}</text>'
        )
        x += width + 22
    parts.append("</g>")
    return "".join(parts), y + 14


def _y_axis(frame: _Frame, ticks: Sequence[float], label: str) -> str:
    parts = ['<g class="axis y-axis">']
    for tick, text in zip(ticks, _tick_text(ticks), strict=True):
        y = _n(frame.y(tick))
        parts.append(
            f'<line x1="{_n(frame.left)}" y1="{y}" x2="{_n(frame.right)}" y2="{y}" '
            f'stroke="{_GRID}"/>'
            f'<text x="{_n(frame.left - 8)}" y="{y}" dy="4" text-anchor="end" '
            f'fill="{_AXIS}">{text}</text>'
        )
    middle = frame.top + frame.height / 2
    parts.append(
        f'<text x="16" y="{_n(middle)}" transform="rotate(-90 16 {_n(middle)})" '
        f'text-anchor="middle" fill="{_INK}">{_e(label)}</text>'
    )
    parts.append(
        f'<line x1="{_n(frame.left)}" y1="{_n(frame.top)}" x2="{_n(frame.left)}" '
        f'y2="{_n(frame.bottom)}" stroke="{_AXIS}"/>'
    )
    parts.append("</g>")
    return "".join(parts)


def _x_axis(frame: _Frame, ticks: Sequence[float], label: str, texts: Sequence[str] = ()) -> str:
    parts = ['<g class="axis x-axis">']
    bottom = _n(frame.bottom)
    parts.append(
        f'<line x1="{_n(frame.left)}" y1="{bottom}" x2="{_n(frame.right)}" y2="{bottom}" '
        f'stroke="{_AXIS}"/>'
    )
    for tick, text in zip(ticks, texts or _tick_text(ticks), strict=True):
        x = _n(frame.x(tick))
        parts.append(
            f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{_n(frame.bottom + 5)}" '
            f'stroke="{_AXIS}"/>'
            f'<text x="{x}" y="{_n(frame.bottom + 19)}" text-anchor="middle" '
            f'fill="{_AXIS}">{_e(text)}</text>'
        )
    parts.append(
        f'<text x="{_n(frame.left + frame.width / 2)}" y="{_n(frame.bottom + 40)}" '
        f'text-anchor="middle" fill="{_INK}">{_e(label)}</text>'
    )
    parts.append("</g>")
    return "".join(parts)


def _no_data(frame: _Frame, text: str = "no data") -> str:
    return (
        f'<text x="{_n(frame.left + frame.width / 2)}" y="{_n(frame.top + frame.height / 2)}" '
        f'text-anchor="middle" fill="{_AXIS}">{_e(text)}</text>'
    )


def line_chart(
    plot_id: str,
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    point_text: Callable[[Series, float, float], str],
    plot_height: float = 260,
) -> str:
    """Lines over integer x values (turn indices) from a y axis starting at zero; every
    point carries a hover text from ``point_text(series, x, y)``."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x_ticks = nice_ticks(min(xs, default=0), max(xs, default=1), 8, integer=True)
    y_ticks = nice_ticks(0, max(ys, default=1) or 1, 5)
    left, right = 72, WIDTH - 20
    legend, legend_bottom = _legend([(s.label, s.color, s.dash) for s in series], left, right)
    top = legend_bottom + 12
    frame = _Frame(left, top, right - left, plot_height, x_ticks[0], x_ticks[-1], 0, y_ticks[-1])
    parts = _open(plot_id, title, top + plot_height + _BOTTOM)
    parts.append(legend)
    parts.append(_y_axis(frame, y_ticks, y_label))
    parts.append(_x_axis(frame, x_ticks, x_label))
    if not ys:
        parts.append(_no_data(frame))
    for s in series:
        points = sorted(s.points)
        coords = " ".join(f"{_n(frame.x(x))},{_n(frame.y(y))}" for x, y in points)
        dashed = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        parts.append(f'<g class="series" data-transport="{_e(s.key)}">')
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2.5" '
            f'stroke-linejoin="round"{dashed}/>'
        )
        radius = 3.5 if len(points) <= 30 else 2
        for x, y in points:
            fill = (
                f'fill="#ffffff" stroke="{s.color}" stroke-width="1.5" class="sparse"'
                if x in s.sparse
                else f'fill="{s.color}"'
            )
            parts.append(
                f'<circle cx="{_n(frame.x(x))}" cy="{_n(frame.y(y))}" r="{radius}" '
                f"{fill}><title>{_e(point_text(s, x, y))}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def box_plot(
    plot_id: str,
    title: str,
    boxes: Sequence[Box],
    x_label: str,
    value_text: Callable[[float], str],
) -> str:
    """Horizontal box plots, one row per transport, on a shared axis from zero: whiskers
    at min and max, box from first to third quartile, a bar at the median, a diamond at
    the mean."""
    row = 52
    height = 44 + max(len(boxes), 1) * row + _BOTTOM
    ticks = nice_ticks(0, max((b.high for b in boxes), default=1) or 1, 6)
    frame = _Frame(140, 44, WIDTH - 140 - 24, height - 44 - _BOTTOM, 0, ticks[-1], 0, 1)
    parts = _open(plot_id, title, height)
    parts.append(
        f'<g class="legend"><text x="{_n(frame.left)}" y="22" fill="{_AXIS}">'
        "box: quartiles · bar: median · \u25c6 mean · whiskers: min and max</text></g>"
    )
    parts.append(_x_axis(frame, ticks, x_label))
    for tick in ticks[1:]:
        grid_x = _n(frame.x(tick))
        parts.append(
            f'<line x1="{grid_x}" y1="{_n(frame.top)}" x2="{grid_x}" y2="{_n(frame.bottom)}" '
            f'stroke="{_GRID}"/>'
        )
    if not boxes:
        parts.append(_no_data(frame, "no completed tasks"))
    for index, box in enumerate(boxes):
        mid = frame.top + row * index + row / 2
        top, bottom = mid - 13, mid + 13
        x = frame.x
        hover = (
            f"{box.label}: n {box.n}, min {value_text(box.low)}, q1 {value_text(box.q1)}, "
            f"median {value_text(box.median)}, q3 {value_text(box.q3)}, "
            f"max {value_text(box.high)}, mean {value_text(box.mean)}"
        )
        parts.append(f'<g class="series" data-transport="{_e(box.key)}"><title>{_e(hover)}</title>')
        parts.append(
            f'<text x="{_n(frame.left - 10)}" y="{_n(mid - 2)}" text-anchor="end" '
            f'fill="{_INK}">{_e(box.label)}</text>'
            f'<text x="{_n(frame.left - 10)}" y="{_n(mid + 13)}" text-anchor="end" '
            f'fill="{_AXIS}" font-size="11">n {box.n:,}</text>'
        )
        parts.append(
            f'<line x1="{_n(x(box.low))}" y1="{_n(mid)}" x2="{_n(x(box.high))}" y2="{_n(mid)}" '
            f'stroke="{box.color}" stroke-width="1.5"/>'
        )
        for end in (box.low, box.high):
            parts.append(
                f'<line x1="{_n(x(end))}" y1="{_n(mid - 7)}" x2="{_n(x(end))}" '
                f'y2="{_n(mid + 7)}" stroke="{box.color}" stroke-width="1.5"/>'
            )
        parts.append(
            f'<rect x="{_n(x(box.q1))}" y="{_n(top)}" width="{_n(max(x(box.q3) - x(box.q1), 1))}" '
            f'height="{_n(bottom - top)}" fill="{box.color}" fill-opacity="0.22" '
            f'stroke="{box.color}" stroke-width="1.5"/>'
        )
        parts.append(
            f'<line x1="{_n(x(box.median))}" y1="{_n(top)}" x2="{_n(x(box.median))}" '
            f'y2="{_n(bottom)}" stroke="{box.color}" stroke-width="3"/>'
        )
        cx = x(box.mean)
        parts.append(
            f'<path d="M{_n(cx)} {_n(mid - 5)}L{_n(cx + 5)} {_n(mid)}L{_n(cx)} {_n(mid + 5)}'
            f'L{_n(cx - 5)} {_n(mid)}Z" fill="#ffffff" stroke="{_INK}" stroke-width="1.2"/>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    plot_id: str, title: str, bars: Sequence[Bar], y_label: str, plot_height: float = 220
) -> str:
    """Grouped vertical bars from zero: a group per category, a bar per transport in it,
    each labelled with its value."""
    groups = list(dict.fromkeys(bar.group for bar in bars))
    keys = list(dict.fromkeys(bar.key for bar in bars))
    ticks = nice_ticks(0, max((bar.value for bar in bars), default=1) or 1, 4, integer=True)
    left, right = 72, WIDTH - 20
    entries = list({bar.key: (bar.label, bar.color, "") for bar in bars}.values())
    legend, legend_bottom = _legend(entries, left, right, boxes=True)
    top = legend_bottom + 12
    frame = _Frame(left, top, right - left, plot_height, 0, max(len(groups), 1), 0, ticks[-1])
    parts = _open(plot_id, title, top + plot_height + _BOTTOM)
    parts.append(legend)
    parts.append(_y_axis(frame, ticks, y_label))
    centres = [index + 0.5 for index in range(len(groups))]
    parts.append(_x_axis(frame, centres, "", groups))
    if not bars:
        parts.append(_no_data(frame))
    slot = frame.width / max(len(groups), 1)
    width = min(36.0, slot * 0.8 / max(len(keys), 1))
    for key in keys:
        mine = [bar for bar in bars if bar.key == key]
        parts.append(f'<g class="series" data-transport="{_e(key)}">')
        for bar in mine:
            group = groups.index(bar.group)
            bar_left = frame.left + slot * group + slot / 2 - width * len(keys) / 2
            bar_left += width * keys.index(key)
            bar_top = frame.y(bar.value)
            parts.append(
                f'<rect x="{_n(bar_left)}" y="{_n(bar_top)}" width="{_n(width - 2)}" '
                f'height="{_n(max(frame.bottom - bar_top, 0))}" fill="{bar.color}">'
                f"<title>{_e(f'{bar.label}, {bar.group}: {bar.value:,.0f}')}</title></rect>"
                f'<text x="{_n(bar_left + (width - 2) / 2)}" y="{_n(bar_top - 4)}" '
                'text-anchor="middle" '
                f'fill="{_INK if bar.value else _AXIS}" font-size="11">{bar.value:,.0f}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
