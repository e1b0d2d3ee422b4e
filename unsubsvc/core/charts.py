"""Accessible inline SVG charts for the admin console: pure string building, no framework.

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that
carries the numbers, so a screen reader gets what the picture shows. Styling
is by presentation attributes and class names only (the pages' Content
Security Policy forbids ``style`` attributes and scripts). Every piece of text
that comes from data is escaped. The output is deterministic: the same input
gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape, quoteattr

from unsubsvc.core.reporting import TrendPoint

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
#: Band thresholds drawn on rate charts (RATE-FACTS): value, line label, colour.
THRESHOLDS: tuple[tuple[float, str, str], ...] = (
    (0.2, "0.2 %", "#137333"),
    (0.5, "0.5 %", "#8a4b00"),
    (1.0, "1.0 %", "#a50e0e"),
)
#: The band each stretch between thresholds stands for, bottom up.
BAND_NAMES = ("good", "acceptable", "investigate", "critical")
RATE_COLOUR = "#0b57d0"
AVERAGE_COLOUR = "#45454f"
FLAG_COLOUR = "#a50e0e"
GRID_COLOUR = "#e2e2e8"
AXIS_COLOUR = "#5b5b66"
TEXT_COLOUR = "#1b1b1f"
#: Rough width of a character at the 12px label size, to decide when labels need turning.
CHAR_WIDTH = 7.0
LABEL_MAX = 16

_NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
_Getter = Callable[[TrendPoint], float | None]


def format_rate(value: float | None) -> str:
    """Return a percentage for people: two decimals, ``<0.01 %`` for tiny ones, ``–`` for none."""
    if value is None:
        return "–"
    if 0 < value < 0.005:
        return "<0.01 %"
    return f"{value:.2f} %"


def _n(value: float) -> str:
    """Return a coordinate with one decimal, without a trailing ``.0`` (stable output)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attr(value: str) -> str:
    return quoteattr(value)


def _text(value: str) -> str:
    return escape(value)


def _safe_id(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", value).strip("-")
    return cleaned if cleaned and cleaned[0].isalpha() else f"chart-{cleaned or 'x'}"


def _short(label: str, limit: int = LABEL_MAX) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


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


def _tick_label(value: float, step: float, unit: str) -> str:
    fraction = f"{step:.6f}".rstrip("0").partition(".")[2]
    return f"{value:.{len(fraction)}f}{unit}"


def _open(width: int, height: int, chart_id: str, title: str, desc: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="{SVG_NS}" role="img" class={_attr(css)} '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family={_attr(FONT)} font-size="12" fill="{TEXT_COLOUR}">',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{_text(desc)}</desc>',
    ]


def _empty(width: int, height: int, chart_id: str, title: str, desc: str, css: str) -> str:
    height = min(height, 120)
    parts = _open(width, height, chart_id, title, desc, css)
    parts.append(
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fafafc" '
        f'stroke="{GRID_COLOUR}" class="chart-empty"/>'
    )
    parts.append(
        f'<text x="{_n(width / 2)}" y="{_n(height / 2)}" text-anchor="middle" '
        f'font-size="14" fill="{AXIS_COLOUR}">{_text(desc)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _trend_desc(points: Sequence[TrendPoint], window: int) -> str:
    pieces = []
    for point in points:
        piece = f"{point.campaign}: {format_rate(point.rate)}"
        if point.rolling_average is not None:
            piece += (
                f" (average of the previous {window} sends {format_rate(point.rolling_average)})"
            )
        if point.well_above_average:
            piece += ", well above average"
        pieces.append(piece)
    flagged = [p.campaign for p in points if p.well_above_average]
    summary = (
        f"Unsubscribe rate per send (unsubscribes ÷ delivered × 100) for {len(points)} "
        f"send{'s' if len(points) != 1 else ''}, oldest first, with the rolling average of up "
        f"to {window} earlier sends and band thresholds at 0.2 %, 0.5 % and 1.0 %. "
    )
    flags = (
        f"Well above average: {', '.join(flagged)}. " if flagged else "No send well above average. "
    )
    return summary + flags + "; ".join(pieces) + "."


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
) -> str:
    """Return an SVG of per-send rates, their rolling average, band lines and flagged sends."""
    chart_id = _safe_id(chart_id)
    css = "chart chart-line"
    if not points:
        return _empty(width, height, chart_id, title, "No sends with deliveries yet.", css)
    labels = [_short(p.campaign) for p in points]
    left, right, top = 78.0, 124.0, 44.0
    plot_w = width - left - right
    slot = plot_w / len(points)
    every = max(1, math.ceil(len(points) / 16))
    turned = max(len(label) for label in labels) * CHAR_WIDTH > slot * every - 8
    bottom = _label_room(labels) if turned else 60.0
    plot_h = height - top - bottom
    values = [v for p in points for v in (p.rate, p.rolling_average) if v is not None]
    highest = max([*values, THRESHOLDS[-1][0]]) * 1.12
    step = nice_step(highest)
    y_max = math.ceil(highest / step - 1e-9) * step

    def x_at(index: int) -> float:
        return left + slot * (index + 0.5)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = _open(width, height, chart_id, title, _trend_desc(points, window), css)
    # Grid and y-axis ticks.
    parts.append('<g class="chart-grid">')
    ticks = int(round(y_max / step))
    for i in range(ticks + 1):
        value = i * step
        ys = _n(y_at(value))
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{ys}" y2="{ys}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_n(left - 8)}" y="{ys}" dy="0.32em" text-anchor="end" '
            f'fill="{AXIS_COLOUR}">{_text(_tick_label(value, step, " %"))}</text>'
        )
    parts.append("</g>")
    # Band thresholds: dashed lines, their value at the right end, band names between.
    parts.append('<g class="chart-thresholds">')
    edges = [0.0, *(t[0] for t in THRESHOLDS), y_max]
    for value, label, colour in THRESHOLDS:
        ys = _n(y_at(value))
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{ys}" y2="{ys}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4" '
            f'class="chart-threshold"/>'
        )
        parts.append(
            f'<text x="{_n(left + plot_w + 6)}" y="{ys}" dy="0.32em" fill="{colour}" '
            f'font-weight="600">{_text(label)}</text>'
        )
    for name, low, high in zip(BAND_NAMES, edges, edges[1:], strict=False):
        if high <= low or y_at(low) - y_at(high) < 14:
            continue
        parts.append(
            f'<text x="{_n(left + plot_w + 44)}" y="{_n((y_at(low) + y_at(high)) / 2)}" '
            f'dy="0.32em" fill="{AXIS_COLOUR}" font-size="11" font-style="italic">'
            f"{_text(name)}</text>"
        )
    parts.append("</g>")
    # Axes and their labels.
    parts.append(
        f'<line x1="{_n(left)}" x2="{_n(left)}" y1="{_n(top)}" y2="{_n(top + plot_h)}" '
        f'stroke="{AXIS_COLOUR}"/>'
        f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(top + plot_h)}" '
        f'y2="{_n(top + plot_h)}" stroke="{AXIS_COLOUR}"/>'
    )
    parts.append(
        f'<text x="14" y="{_n(top + plot_h / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_n(top + plot_h / 2)})" class="chart-axis-label">'
        f"{_text(y_label)}</text>"
    )
    parts.append(
        f'<text x="{_n(left + plot_w / 2)}" y="{_n(height - 8)}" text-anchor="middle" '
        f'class="chart-axis-label">{_text(x_label)}</text>'
    )
    parts.append('<g class="chart-x-labels">')
    for index, label in enumerate(labels):
        if index % every:
            continue
        x, y = x_at(index), top + plot_h + 16
        if turned:
            parts.append(
                f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="end" '
                f'transform="rotate(-35 {_n(x)} {_n(y)})">{_text(label)}</text>'
            )
        else:
            parts.append(
                f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle">{_text(label)}</text>'
            )
    parts.append("</g>")
    # The rolling average (dotted) under the per-send rate (solid, with markers).
    for segment in _segments(points, lambda p: p.rolling_average):
        coords = " ".join(f"{_n(x_at(i))},{_n(y_at(v))}" for i, v in segment)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{AVERAGE_COLOUR}" '
            f'stroke-width="2.5" stroke-dasharray="2 3" stroke-linecap="round" '
            f'class="chart-average"/>'
        )
    for segment in _segments(points, lambda p: p.rate):
        coords = " ".join(f"{_n(x_at(i))},{_n(y_at(v))}" for i, v in segment)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{RATE_COLOUR}" '
            f'stroke-width="2.5" stroke-linejoin="round" class="chart-rate"/>'
        )
    parts.append('<g class="chart-points">')
    for index, point in enumerate(points):
        if point.rate is None:
            continue
        x, y = x_at(index), y_at(point.rate)
        tip = f"{point.campaign}"
        if point.sent_at is not None:
            tip += f", sent {point.sent_at:%Y-%m-%d %H:%M}"
        tip += f": {format_rate(point.rate)}"
        if point.rolling_average is not None:
            tip += f"; rolling average {format_rate(point.rolling_average)}"
        if point.well_above_average:
            tip += "; well above average"
            parts.append(
                f'<g class="chart-flag"><title>{_text(tip)}</title>'
                f'<path d="M{_n(x)} {_n(y - 9)} L{_n(x + 8)} {_n(y + 6)} '
                f'L{_n(x - 8)} {_n(y + 6)} Z" '
                f'fill="{FLAG_COLOUR}" stroke="#fff" stroke-width="1.5"/>'
                f'<text x="{_n(x)}" y="{_n(y - 14)}" text-anchor="middle" fill="{FLAG_COLOUR}" '
                f'font-weight="700">{_text(format_rate(point.rate))}</text></g>'
            )
        else:
            parts.append(
                f'<g class="chart-point"><title>{_text(tip)}</title>'
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{RATE_COLOUR}" '
                f'stroke="#fff" stroke-width="1.5"/></g>'
            )
    parts.append("</g>")
    parts.append(_legend(left, window))
    parts.append("</svg>")
    return "\n".join(parts)


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


def _legend(left: float, window: int) -> str:
    y = _n(18.0)
    samples = [
        (
            "Rate per send",
            f'<line x1="0" x2="24" y1="{y}" y2="{y}" stroke="{RATE_COLOUR}" stroke-width="2.5"/>'
            f'<circle cx="12" cy="{y}" r="4" fill="{RATE_COLOUR}"/>',
        ),
        (
            f"Rolling average ({window} sends before)",
            f'<line x1="0" x2="24" y1="{y}" y2="{y}" stroke="{AVERAGE_COLOUR}" '
            f'stroke-width="2.5" stroke-dasharray="2 3" stroke-linecap="round"/>',
        ),
        (
            "Well above average",
            f'<path d="M12 10 L19 23 L5 23 Z" fill="{FLAG_COLOUR}"/>',
        ),
        (
            "Band edge",
            f'<line x1="0" x2="24" y1="{y}" y2="{y}" stroke="{AXIS_COLOUR}" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>',
        ),
    ]
    items = []
    x = left
    for text, sample in samples:
        items.append(
            f'<g transform="translate({_n(x)} 0)">{sample}'
            f'<text x="30" y="{y}" dy="0.32em">{_text(text)}</text></g>'
        )
        x += 30 + len(text) * 6.4 + 24
    return '<g class="chart-legend">' + "".join(items) + "</g>"


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
) -> str:
    """Return an SVG bar chart with each bar's value written on it.

    ``divider`` = (index, label) draws a dashed line before bar ``index``, e.g.
    where the first hour after a send ends.
    """
    if len(values) != len(labels):
        raise ValueError("values and labels differ in length")
    chart_id = _safe_id(chart_id)
    css = "chart chart-bars"
    pieces = [f"{label}: {_number(v)}{unit}" for label, v in zip(labels, values, strict=True)]
    desc = (
        (f"{y_label} by {x_label.lower()}: " if y_label and x_label else "")
        + "; ".join(pieces)
        + "."
    )
    if not values:
        return _empty(width, height, chart_id, title, "No data yet.", css)
    left, right, top = 64.0, 16.0, 28.0
    plot_w = width - left - right
    slot = plot_w / len(values)
    every = max(1, math.ceil(len(values) / 16))
    turned = max(len(_short(label)) for label in labels) * CHAR_WIDTH > slot * every - 8
    bottom = _label_room([_short(x) for x in labels]) if turned else 52.0
    plot_h = height - top - bottom
    highest = max(max(values), 0)
    step = max(1.0, nice_step(highest * 1.1 or 1, 5))
    y_max = max(step, math.ceil(highest * 1.1 / step - 1e-9) * step)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = _open(width, height, chart_id, title, desc, css)
    parts.append('<g class="chart-grid">')
    for i in range(int(round(y_max / step)) + 1):
        value = i * step
        ys = _n(y_at(value))
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{ys}" y2="{ys}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{_n(left - 8)}" y="{ys}" dy="0.32em" text-anchor="end" '
            f'fill="{AXIS_COLOUR}">{_text(_tick_label(value, step, ""))}</text>'
        )
    parts.append("</g>")
    parts.append('<g class="chart-bar-group">')
    bar_w = max(2.0, slot * 0.72)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * index + (slot - bar_w) / 2
        y = y_at(max(value, 0))
        tip = f"{label}: {_number(value)}{unit}"
        parts.append(
            f'<g class="chart-bar"><title>{_text(tip)}</title>'
            f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar_w)}" '
            f'height="{_n(top + plot_h - y)}" fill="{RATE_COLOUR}"/>'
        )
        if value:
            parts.append(
                f'<text x="{_n(x + bar_w / 2)}" y="{_n(y - 5)}" text-anchor="middle" '
                f'font-weight="600">{_text(_number(value))}</text>'
            )
        parts.append("</g>")
    parts.append("</g>")
    if divider is not None and 0 < divider[0] < len(values):
        xs = _n(left + slot * divider[0])
        parts.append(
            f'<g class="chart-divider"><line x1="{xs}" x2="{xs}" y1="{_n(top - 12)}" '
            f'y2="{_n(top + plot_h)}" stroke="{FLAG_COLOUR}" stroke-width="1.5" '
            f'stroke-dasharray="6 4"/>'
            f'<text x="{xs}" y="{_n(top - 16)}" dx="-4" text-anchor="end" fill="{FLAG_COLOUR}" '
            f'font-weight="600">{_text(divider[1])}</text></g>'
        )
    parts.append(
        f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(top + plot_h)}" '
        f'y2="{_n(top + plot_h)}" stroke="{AXIS_COLOUR}"/>'
    )
    parts.append('<g class="chart-x-labels">')
    for index, label in enumerate(labels):
        if index % every:
            continue
        x, y = left + slot * (index + 0.5), top + plot_h + 16
        if turned:
            parts.append(
                f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="end" '
                f'transform="rotate(-35 {_n(x)} {_n(y)})">{_text(_short(label))}</text>'
            )
        else:
            parts.append(
                f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle">{_text(_short(label))}</text>'
            )
    parts.append("</g>")
    if y_label:
        parts.append(
            f'<text x="14" y="{_n(top + plot_h / 2)}" text-anchor="middle" '
            f'transform="rotate(-90 14 {_n(top + plot_h / 2)})" class="chart-axis-label">'
            f"{_text(y_label)}</text>"
        )
    if x_label:
        parts.append(
            f'<text x="{_n(left + plot_w / 2)}" y="{_n(height - 8)}" text-anchor="middle" '
            f'class="chart-axis-label">{_text(x_label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _label_room(labels: Sequence[str]) -> float:
    """Return the bottom margin turned (-35°) x labels and the axis title need."""
    return 46 + max(len(label) for label in labels) * CHAR_WIDTH * math.sin(math.radians(35))


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
