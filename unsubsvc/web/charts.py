"""The admin console's charts, laid out: scales, positions and texts, but no markup.

``line_chart`` and ``bar_chart`` return what a chart shows and where; the
macros in ``templates/admin/_charts.html`` write it as an accessible inline
``<svg role="img">`` with a ``<title>`` and a ``<desc>`` carrying the numbers,
so a screen reader gets what the picture shows. Jinja's autoescape escapes
every text that comes from data. Coordinates are strings with one decimal, so
the same input gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from unsubsvc.core.reporting import BAND_EDGES, Band, TrendPoint, percent

#: Rough width of a character at the 12px label size, to decide when labels need turning.
CHAR_WIDTH = 7.0
LABEL_MAX = 16
#: Shown where a line chart has no send with deliveries, or a bar chart no bars.
NO_SENDS = "No sends with deliveries yet."
NO_DATA = "No data yet."

_NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
_Getter = Callable[[TrendPoint], float | None]


def format_rate(value: float | None) -> str:
    """Return a percentage for people: two decimals, ``<0.01 %`` for tiny ones, ``–`` for none."""
    if value is None:
        return "–"
    if 0 < value < 0.005:
        return "<0.01 %"
    return f"{value:.2f} %"


def nice_step(span: float, max_ticks: int = 6) -> float:
    """Return a round tick step (1, 2, 2.5 or 5 × 10ⁿ) giving at most ``max_ticks`` steps."""
    if span <= 0:
        return 1.0
    raw = span / max_ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in _NICE_STEPS:
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def safe_id(value: str) -> str:
    """Return ``value`` made into an element id (letters, digits, ``-`` and ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", value).strip("-")
    return cleaned if cleaned and cleaned[0].isalpha() else f"chart-{cleaned or 'x'}"


def n(value: float) -> str:
    """Return a coordinate with one decimal, without a trailing ``.0`` (stable output)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _short(label: str, limit: int = LABEL_MAX) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _tick_label(value: float, step: float, unit: str) -> str:
    fraction = f"{step:.6f}".rstrip("0").partition(".")[2]
    return f"{value:.{len(fraction)}f}{unit}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _label_room(labels: Sequence[str]) -> float:
    """Return the bottom margin turned (-35°) x labels and the axis title need."""
    return 46 + max(len(label) for label in labels) * CHAR_WIDTH * math.sin(math.radians(35))


@dataclass(frozen=True)
class Frame:
    """The chart's box, names and description; ``empty`` charts show the description alone."""

    id: str
    css: str
    width: int
    height: int
    title: str
    desc: str
    empty: bool = False

    @property
    def middle(self) -> tuple[str, str]:
        """Return the centre of the box (where an empty chart says why)."""
        return n(self.width / 2), n(self.height / 2)


@dataclass(frozen=True)
class Plot:
    """The plotting area: left, top, right and bottom edges."""

    left: str
    top: str
    right: str
    bottom: str


@dataclass(frozen=True)
class Text:
    """A text at a point; ``turned`` ones are rotated -35° (long x-axis labels)."""

    x: str
    y: str
    text: str
    turned: bool = False


@dataclass(frozen=True)
class Threshold:
    """A dashed band edge across the plot, with the band below it (for its colour)."""

    y: str
    label: str
    band: Band


@dataclass(frozen=True)
class Marker:
    """A send's rate on the line: a dot, or a triangle with its value when flagged."""

    x: str
    y: str
    tip: str
    flagged: bool
    value: str
    triangle: str  # path data, used when flagged
    value_y: str


@dataclass(frozen=True)
class Bar:
    """One bar with its value written above it (when not zero)."""

    x: str
    y: str
    width: str
    height: str
    middle: str
    value_y: str
    tip: str
    value: str


@dataclass(frozen=True)
class LegendItem:
    """One entry of the line chart's legend: its sample's kind, where it starts, its text."""

    kind: str  # rate, average, flag, edge
    x: str
    text: str


@dataclass(frozen=True)
class LineChart:
    """Per-send rates, their rolling average, band edges and flagged sends."""

    frame: Frame
    plot: Plot | None = None
    ticks: tuple[Text, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    threshold_x: str = ""
    bands: tuple[Text, ...] = ()
    y_label: Text | None = None
    x_label: Text | None = None
    x_labels: tuple[Text, ...] = ()
    averages: tuple[str, ...] = ()  # polyline points, one run per gap-free stretch
    rates: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = ()
    legend: tuple[LegendItem, ...] = ()


@dataclass(frozen=True)
class BarChart:
    """Counts as bars, e.g. unsubscribes by minutes after a send."""

    frame: Frame
    plot: Plot | None = None
    ticks: tuple[Text, ...] = ()
    bars: tuple[Bar, ...] = ()
    divider: Text | None = None  # a dashed line at x, down from divider_top; its label at y
    divider_top: str = ""
    x_labels: tuple[Text, ...] = ()
    y_label: Text | None = None
    x_label: Text | None = None


def _empty_frame(chart_id: str, css: str, width: int, height: int, title: str, desc: str) -> Frame:
    return Frame(chart_id, css, width, min(height, 120), title, desc, empty=True)


def _trend_desc(points: Sequence[TrendPoint], window: int) -> str:
    pieces = []
    for point in points:
        piece = f"{point.campaign}: {format_rate(point.unsubscribe_rate)}"
        if point.rolling_average is not None:
            piece += (
                f" (average of the previous {window} sends {format_rate(point.rolling_average)})"
            )
        if point.well_above_average:
            piece += ", well above average"
        pieces.append(piece)
    flagged = [p.campaign for p in points if p.well_above_average]
    edges = [percent(edge, 1) for edge, _ in BAND_EDGES]
    summary = (
        f"Unsubscribe rate per send (unsubscribes ÷ delivered × 100) for {len(points)} "
        f"send{'s' if len(points) != 1 else ''}, oldest first, with the rolling average of up "
        f"to {window} earlier sends and band thresholds at {', '.join(edges[:-1])} and "
        f"{edges[-1]}. "
    )
    flags = (
        f"Well above average: {', '.join(flagged)}. " if flagged else "No send well above average. "
    )
    return summary + flags + "; ".join(pieces) + "."


def _segments(points: Sequence[TrendPoint], value: _Getter) -> list[list[tuple[int, float]]]:
    """Split a series into runs without gaps, so a missing value breaks the line."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, point in enumerate(points):
        v = value(point)
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((index, v))
    return [run for run in runs if run]


def _x_labels(
    labels: Sequence[str], x_at: Callable[[int], float], y: float, every: int, turned: bool
) -> tuple[Text, ...]:
    return tuple(
        Text(n(x_at(index)), n(y), label, turned)
        for index, label in enumerate(labels)
        if not index % every
    )


def _legend(left: float, window: int) -> tuple[LegendItem, ...]:
    items = []
    x = left
    for kind, text in (
        ("rate", "Rate per send"),
        ("average", f"Rolling average ({window} sends before)"),
        ("flag", "Well above average"),
        ("edge", "Band edge"),
    ):
        items.append(LegendItem(kind, n(x), text))
        x += 30 + len(text) * 6.4 + 24
    return tuple(items)


def _marker(point: TrendPoint, x: float, y: float) -> Marker:
    tip = f"{point.campaign}"
    if point.sent_at is not None:
        tip += f", sent {point.sent_at:%Y-%m-%d %H:%M}"
    tip += f": {format_rate(point.unsubscribe_rate)}"
    if point.rolling_average is not None:
        tip += f"; rolling average {format_rate(point.rolling_average)}"
    if point.well_above_average:
        tip += "; well above average"
    triangle = f"M{n(x)} {n(y - 9)} L{n(x + 8)} {n(y + 6)} L{n(x - 8)} {n(y + 6)} Z"
    return Marker(
        n(x),
        n(y),
        tip,
        point.well_above_average,
        format_rate(point.unsubscribe_rate),
        triangle,
        n(y - 14),
    )


def line_chart(
    points: Sequence[TrendPoint],
    *,
    title: str,
    width: int = 760,
    height: int = 380,
    chart_id: str = "trend",
    window: int = 4,
    x_label: str = "Sends, oldest first",
    y_label: str = "Unsubscribe rate (% of delivered)",
) -> LineChart:
    """Lay out per-send rates, their rolling average, band edges and flagged sends."""
    chart_id = safe_id(chart_id)
    css = "chart chart-line"
    if not points:
        return LineChart(_empty_frame(chart_id, css, width, height, title, NO_SENDS))
    labels = [_short(p.campaign) for p in points]
    left, right, top = 78.0, 124.0, 44.0
    plot_w = width - left - right
    slot = plot_w / len(points)
    every = max(1, math.ceil(len(points) / 16))
    turned = max(len(label) for label in labels) * CHAR_WIDTH > slot * every - 8
    bottom = _label_room(labels) if turned else 60.0
    plot_h = height - top - bottom
    edges = [float(edge) for edge, _ in BAND_EDGES]
    values = [v for p in points for v in (p.unsubscribe_rate, p.rolling_average) if v is not None]
    highest = max([*values, edges[-1]]) * 1.12
    step = nice_step(highest)
    y_max = math.ceil(highest / step - 1e-9) * step

    def x_at(index: int) -> float:
        return left + slot * (index + 0.5)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    def runs(value: _Getter) -> tuple[str, ...]:
        return tuple(
            " ".join(f"{n(x_at(i))},{n(y_at(v))}" for i, v in segment)
            for segment in _segments(points, value)
        )

    bounds = [0.0, *edges, y_max]
    return LineChart(
        frame=Frame(chart_id, css, width, height, title, _trend_desc(points, window)),
        plot=Plot(n(left), n(top), n(left + plot_w), n(top + plot_h)),
        ticks=tuple(
            Text(n(left - 8), n(y_at(i * step)), _tick_label(i * step, step, " %"))
            for i in range(int(round(y_max / step)) + 1)
        ),
        thresholds=tuple(
            Threshold(n(y_at(float(edge))), percent(edge, 1), below) for edge, below in BAND_EDGES
        ),
        threshold_x=n(left + plot_w + 6),
        bands=tuple(
            Text(n(left + plot_w + 44), n((y_at(low) + y_at(high)) / 2), name.value)
            for name, low, high in zip(Band, bounds, bounds[1:], strict=False)
            if high > low and y_at(low) - y_at(high) >= 14
        ),
        y_label=Text("14", n(top + plot_h / 2), y_label),
        x_label=Text(n(left + plot_w / 2), n(height - 8), x_label),
        x_labels=_x_labels(labels, x_at, top + plot_h + 16, every, turned),
        averages=runs(lambda p: p.rolling_average),
        rates=runs(lambda p: p.unsubscribe_rate),
        markers=tuple(
            _marker(point, x_at(index), y_at(point.unsubscribe_rate))
            for index, point in enumerate(points)
            if point.unsubscribe_rate is not None
        ),
        legend=_legend(left, window),
    )


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    width: int = 760,
    height: int = 300,
    chart_id: str = "bars",
    x_label: str = "",
    y_label: str = "",
    divider: tuple[int, str] | None = None,
    unit: str = "",
) -> BarChart:
    """Lay out a bar chart with each bar's value written on it.

    ``divider`` = (index, label) draws a dashed line before bar ``index``, e.g.
    where the first hour after a send ends.
    """
    if len(values) != len(labels):
        raise ValueError("values and labels differ in length")
    chart_id = safe_id(chart_id)
    css = "chart chart-bars"
    pieces = [f"{label}: {_number(v)}{unit}" for label, v in zip(labels, values, strict=True)]
    desc = (
        (f"{y_label} by {x_label.lower()}: " if y_label and x_label else "")
        + "; ".join(pieces)
        + "."
    )
    if not values:
        return BarChart(_empty_frame(chart_id, css, width, height, title, NO_DATA))
    left, right, top = 64.0, 16.0, 28.0
    plot_w = width - left - right
    slot = plot_w / len(values)
    every = max(1, math.ceil(len(values) / 16))
    short = [_short(label) for label in labels]
    turned = max(len(label) for label in short) * CHAR_WIDTH > slot * every - 8
    bottom = _label_room(short) if turned else 52.0
    plot_h = height - top - bottom
    highest = max(max(values), 0)
    step = max(1.0, nice_step(highest * 1.1 or 1, 5))
    y_max = max(step, math.ceil(highest * 1.1 / step - 1e-9) * step)

    def x_at(index: int) -> float:
        return left + slot * (index + 0.5)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    bar_w = max(2.0, slot * 0.72)
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * index + (slot - bar_w) / 2
        y = y_at(max(value, 0))
        bars.append(
            Bar(
                x=n(x),
                y=n(y),
                width=n(bar_w),
                height=n(top + plot_h - y),
                middle=n(x + bar_w / 2),
                value_y=n(y - 5),
                tip=f"{label}: {_number(value)}{unit}",
                value=_number(value) if value else "",
            )
        )
    line = None
    if divider is not None and 0 < divider[0] < len(values):
        line = Text(n(left + slot * divider[0]), n(top - 16), divider[1])
    return BarChart(
        frame=Frame(chart_id, css, width, height, title, desc),
        plot=Plot(n(left), n(top), n(left + plot_w), n(top + plot_h)),
        ticks=tuple(
            Text(n(left - 8), n(y_at(i * step)), _tick_label(i * step, step, ""))
            for i in range(int(round(y_max / step)) + 1)
        ),
        bars=tuple(bars),
        divider=line,
        divider_top=n(top - 12),
        x_labels=_x_labels(short, x_at, top + plot_h + 16, every, turned),
        y_label=Text("14", n(top + plot_h / 2), y_label) if y_label else None,
        x_label=Text(n(left + plot_w / 2), n(height - 8), x_label) if x_label else None,
    )
