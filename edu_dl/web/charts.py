"""Charts drawn on the server as SVG: a line chart (mastery over time, metrics per epoch) and a
bar chart (score distributions).

No JavaScript and no chart library: the page carries the drawing itself, so it loads fast on a
school laptop and works without a network. Every point and bar is focusable and carries a
``<title>`` (the browser shows it on hover, screen readers read it), and every chart comes with
its numbers as a table, so a person can read the values exactly rather than estimate them from
the drawing.

The builders here only compute geometry; ``templates/edu_dl/charts/*.html`` draws it and the
``{% chart %}`` tag of :mod:`edu_dl.templatetags.edu_dl_charts` picks the template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import count

# The drawing's coordinate system (the SVG scales to its box with viewBox).
WIDTH = 640
HEIGHT = 260
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 44
# Series colours: distinguishable for the common colour-vision deficiencies (Okabe-Ito), each
# with at least 3:1 contrast on white for the lines (WCAG 1.4.11); markers differ in shape too.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#000000")
MARKERS = ("circle", "square", "diamond")

_chart_ids = count(1)

XValue = float | int | datetime | date


def percent(value: float) -> str:
    """0.734 -> ``73%``."""
    return f"{value * 100:.0f}%"


def number(value: float) -> str:
    """A number as short as it can be written: ``3``, ``0.25``, ``1.2e+03``."""
    return f"{value:.3g}"


def _x_number(value: XValue) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    return float(value)


def _x_text(value: XValue) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return number(float(value))


def _nice_ticks(low: float, high: float, *, wanted: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw_step = (high - low) / max(1, wanted - 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw_step)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 12))
        value += step
    return ticks


@dataclass(frozen=True)
class Tick:
    position: float  # in drawing coordinates
    text: str


@dataclass(frozen=True)
class PlotPoint:
    x: float
    y: float
    x_text: str
    y_text: str
    title: str  # what hovering (or focusing) the point tells


@dataclass(frozen=True)
class PlotSeries:
    name: str
    colour: str
    marker: str
    dashed: bool
    points: list[PlotPoint]

    @property
    def path(self) -> str:
        """The SVG path through the points (``M x y L x y ...``)."""
        return " ".join(
            f"{'M' if index == 0 else 'L'}{point.x:.1f} {point.y:.1f}"
            for index, point in enumerate(self.points)
        )


@dataclass(frozen=True, kw_only=True)
class _Chart:
    """What every chart has: its names, its y axis and the frame it is drawn in (the template
    ``edu_dl/charts/_frame.html`` draws these; a kind of chart adds its marks)."""

    chart_id: str
    title: str
    description: str
    x_label: str
    y_label: str
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = MARGIN_LEFT
    plot_right: int = WIDTH - MARGIN_RIGHT
    plot_top: int = MARGIN_TOP
    plot_bottom: int = HEIGHT - MARGIN_BOTTOM


@dataclass(frozen=True, kw_only=True)
class LineChart(_Chart):
    series: list[PlotSeries]
    x_ticks: list[Tick]
    # The table under the drawing: one row per x value, one column per series.
    table_header: list[str]
    table_rows: list[list[str]]
    template: str = field(default="edu_dl/charts/line.html")

    @property
    def is_empty(self) -> bool:
        return not any(series.points for series in self.series)


def line_chart(
    *,
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[XValue, float]]]],
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = (0.0, 1.0),
    y_format: Callable[[float], str] = percent,
    x_format: Callable[[XValue], str] = _x_text,
    description: str = "",
) -> LineChart:
    """A line chart of named series of ``(x, y)`` points; x may be numbers, dates or datetimes.

    ``y_range`` fixes the vertical axis (mastery is 0-1); ``None`` fits it to the data.
    Non-finite values are left out: a chart never shows a point that is not a number.
    """
    clean = [
        (
            name,
            sorted(
                ((x, float(y)) for x, y in points if y is not None and math.isfinite(float(y))),
                key=lambda pair: _x_number(pair[0]),
            ),
        )
        for name, points in series
    ]
    xs = [_x_number(x) for _, points in clean for x, _ in points]
    ys = [y for _, points in clean for _, y in points]
    if y_range is None:
        low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if high == low:
            low, high = low - 0.5, high + 0.5
    else:
        low, high = y_range
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1

    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def to_x(value: float) -> float:
        return left + (value - x_low) / (x_high - x_low) * (right - left)

    def to_y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    plot_series = []
    for index, (name, points) in enumerate(clean):
        plot_points = [
            PlotPoint(
                x=to_x(_x_number(x)),
                y=to_y(min(max(y, low), high)),
                x_text=x_format(x),
                y_text=y_format(y),
                title=f"{name}: {y_format(y)} ({x_label} {x_format(x)})",
            )
            for x, y in points
        ]
        plot_series.append(
            PlotSeries(
                name=name,
                colour=PALETTE[index % len(PALETTE)],
                marker=MARKERS[index % len(MARKERS)],
                dashed=index >= len(PALETTE),
                points=plot_points,
            )
        )

    y_ticks = [Tick(to_y(value), y_format(value)) for value in _nice_ticks(low, high)]
    tick_values = _x_ticks(clean, x_low, x_high)
    x_ticks = [Tick(to_x(_x_number(value)), x_format(value)) for value in tick_values]

    # The table: every distinct x, in order, with each series' value there.
    by_x: dict[float, dict[int, str]] = {}
    x_texts: dict[float, str] = {}
    for index, (_, points) in enumerate(clean):
        for x, y in points:
            key = _x_number(x)
            by_x.setdefault(key, {})[index] = y_format(y)
            x_texts[key] = x_format(x)
    table_rows = [
        [x_texts[key], *(by_x[key].get(index, "") for index in range(len(clean)))]
        for key in sorted(by_x)
    ]
    return LineChart(
        chart_id=f"chart-{next(_chart_ids)}",
        title=title,
        description=description,
        x_label=x_label,
        y_label=y_label,
        series=plot_series,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        table_header=[x_label, *(name for name, _ in clean)],
        table_rows=table_rows,
    )


def _x_ticks(
    clean: Sequence[tuple[str, Sequence[tuple[XValue, float]]]], low: float, high: float
) -> list[XValue]:
    """At most six x ticks: the data's own x values when there are few, else evenly spread ones
    (dates stay dates)."""
    distinct: dict[float, XValue] = {}
    for _, points in clean:
        for x, _ in points:
            distinct.setdefault(_x_number(x), x)
    keys = sorted(distinct)
    if len(keys) <= 6:
        return [distinct[key] for key in keys]
    sample = next(iter(distinct.values()))
    if isinstance(sample, datetime | date):
        step = (len(keys) - 1) / 5
        return [distinct[keys[round(index * step)]] for index in range(6)]
    return [value for value in _nice_ticks(low, high, wanted=6) if low <= value <= high]


@dataclass(frozen=True)
class PlotBar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value_text: str
    title: str

    @property
    def center(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, kw_only=True)
class BarChart(_Chart):
    bars: list[PlotBar]
    colour: str
    template: str = field(default="edu_dl/charts/bar.html")

    @property
    def is_empty(self) -> bool:
        return not self.bars

    @property
    def table_header(self) -> list[str]:
        return [self.x_label, self.y_label]

    @property
    def table_rows(self) -> list[list[str]]:
        return [[bar.label, bar.value_text] for bar in self.bars]


def bar_chart(
    *,
    title: str,
    bars: Sequence[tuple[str, float]],
    x_label: str,
    y_label: str,
    y_format: Callable[[float], str] = number,
    description: str = "",
) -> BarChart:
    """Vertical bars, one per ``(label, value)``; values of zero or more (counts, shares)."""
    values = [max(0.0, float(value)) for _, value in bars]
    high = max(values, default=0.0) or 1.0
    ticks = _nice_ticks(0.0, high)
    if ticks and ticks[-1] < high:
        ticks.append(ticks[-1] + (ticks[1] - ticks[0] if len(ticks) > 1 else high))
    top_value = ticks[-1] if ticks else high
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    slot = (right - left) / max(1, len(bars))
    plot_bars = []
    for index, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        height = value / top_value * (bottom - top)
        plot_bars.append(
            PlotBar(
                x=left + index * slot + slot * 0.15,
                y=bottom - height,
                width=slot * 0.7,
                height=height,
                label=str(label),
                value_text=y_format(value),
                title=f"{x_label} {label}: {y_format(value)}",
            )
        )
    return BarChart(
        chart_id=f"chart-{next(_chart_ids)}",
        title=title,
        description=description,
        x_label=x_label,
        y_label=y_label,
        bars=plot_bars,
        y_ticks=[
            Tick(bottom - value / top_value * (bottom - top), y_format(value)) for value in ticks
        ],
        colour=PALETTE[0],
    )
