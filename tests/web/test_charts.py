"""Inline SVG charts: laid out by ``web.charts``, written by ``templates/admin/_charts.html``.

Valid XML, accessible, escaped by Jinja's autoescape, deterministic.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string

from unsubsvc.core.reporting import TrendPoint, trend
from unsubsvc.web import charts
from unsubsvc.web.app import template_folder
from unsubsvc.web.charts import format_rate, nice_step

NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = '<script>alert("x")</script>&amp; \' " ]]> <!--'
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


#: A bare app on the service's templates: the charts need nothing else.
PAGES = Flask("charts", template_folder=str(template_folder()))


def render(macro: str, chart: Any) -> str:
    """Return a laid-out chart written by its template macro."""
    with PAGES.app_context():
        return render_template_string(
            f'{{% from "admin/_charts.html" import {macro} %}}{{{{ {macro}(chart) }}}}',
            chart=chart,
        )


def line_chart(points: list[TrendPoint], **options: Any) -> str:
    return render("line_chart", charts.line_chart(points, **options))


def bar_chart(values: list[int], labels: list[str], **options: Any) -> str:
    return render("bar_chart", charts.bar_chart(values, labels, **options))


def weekly(counts: list[int], delivered: int = 2_000) -> list[TrendPoint]:
    return trend(
        [(f"c{i + 1}", START + timedelta(weeks=i), n, delivered) for i, n in enumerate(counts)]
    )


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text")]


def test_line_chart_is_accessible_xml_with_the_numbers_in_desc() -> None:
    points = weekly([3, 4, 3, 5, 30, 4])
    root = parse(line_chart(points, title="Trend of news", chart_id="trend"))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "trend-title trend-desc"
    assert root.find("svg:title", NS).text == "Trend of news"  # type: ignore[union-attr]
    desc = root.find("svg:desc", NS).text or ""  # type: ignore[union-attr]
    assert "unsubscribes ÷ delivered × 100" in desc
    for value in ("0.15 %", "0.20 %", "0.25 %", "1.50 %"):
        assert value in desc
    assert "Well above average: c5" in desc
    # The pages' CSP allows no inline style or script: presentation is by attributes.
    assert not [node for node in root.iter() if "style" in node.attrib]
    assert not [node for node in root.iter() if node.tag.endswith(("}style", "}script"))]


def test_line_chart_draws_thresholds_dashed_and_labelled() -> None:
    root = parse(line_chart(weekly([3, 4]), title="t"))
    dashed = [
        line
        for line in root.iter("{http://www.w3.org/2000/svg}line")
        if line.get("class") == "chart-threshold"
    ]
    assert len(dashed) == 3
    assert all(line.get("stroke-dasharray") for line in dashed)
    labels = texts(root)
    assert {"0.2 %", "0.5 %", "1.0 %"} <= set(labels)
    assert {"good", "acceptable", "investigate", "critical"} <= set(labels)
    assert "Unsubscribe rate (% of delivered)" in labels


def test_flagged_send_is_marked_with_shape_and_text() -> None:
    points = weekly([3, 4, 3, 5, 30, 4])
    assert [p.campaign for p in points if p.well_above_average] == ["c5"]
    root = parse(line_chart(points, title="t"))
    flags = [
        g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "chart-flag"
    ]
    assert len(flags) == 1
    assert "well above average" in (flags[0].find("svg:title", NS).text or "")  # type: ignore[union-attr]
    assert "1.50 %" in texts(flags[0])


def test_hostile_labels_are_escaped() -> None:
    points = [TrendPoint(HOSTILE, None, 0.3, None, False), TrendPoint("b", None, 0.4, 0.3, False)]
    line = line_chart(points, title=HOSTILE, chart_id='x" onload="alert(1)')
    bars = bar_chart([1, 2], [HOSTILE, "ok"], title=HOSTILE, x_label=HOSTILE, y_label=HOSTILE)
    for svg in (line, bars):
        assert "<script>" not in svg and "<!--" not in svg
        root = parse(svg)
        assert root.find("svg:title", NS).text == HOSTILE  # type: ignore[union-attr]
        assert "onload" not in {k for node in root.iter() for k in node.attrib}
    assert 'id="x--onload--alert-1' in line


def test_empty_series_render_a_readable_placeholder() -> None:
    root = parse(line_chart([], title="Nothing yet"))
    assert root.get("role") == "img"
    assert root.find("svg:desc", NS).text == "No sends with deliveries yet."  # type: ignore[union-attr]
    assert "No sends with deliveries yet." in texts(root)
    root = parse(bar_chart([], [], title="No bars"))
    assert "No data yet." in texts(root)


def test_missing_rates_break_the_line() -> None:
    points = [
        TrendPoint("a", None, 0.3, None, False),
        TrendPoint("b", None, None, 0.3, False),
        TrendPoint("c", None, 0.5, 0.3, False),
    ]
    root = parse(line_chart(points, title="gap"))
    rate_lines = [
        p
        for p in root.iter("{http://www.w3.org/2000/svg}polyline")
        if p.get("class") == "chart-rate"
    ]
    assert len(rate_lines) == 2


def test_output_is_deterministic() -> None:
    points = weekly([3, 4, 3, 5, 30, 4, 12])
    assert line_chart(points, title="t") == line_chart(points, title="t")
    values, labels = [14, 9, 5, 0, 2], ["0–10", "10–20", "20–30", "30–40", "40+"]
    assert bar_chart(values, labels, title="b") == bar_chart(values, labels, title="b")


def test_many_long_labels_are_turned_and_thinned() -> None:
    points = trend([(f"2026-spring-campaign-{i:03d}", None, i % 7, 1_000) for i in range(40)])
    root = parse(line_chart(points, title="many"))
    x_labels = [
        t
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "chart-x-labels"
        for t in g
    ]
    assert 0 < len(x_labels) <= 20
    assert all("rotate(-35" in (t.get("transform") or "") for t in x_labels)
    assert all(t.text and t.text.endswith("…") for t in x_labels)


def test_bar_chart_writes_values_and_divider() -> None:
    svg = bar_chart(
        [14, 9, 0, 3],
        ["0–10", "10–20", "20–30", "30+"],
        title="When",
        x_label="Minutes after the send",
        y_label="Unsubscribes",
        divider=(2, "First hour"),
    )
    root = parse(svg)
    desc = root.find("svg:desc", NS).text or ""  # type: ignore[union-attr]
    assert desc == "Unsubscribes by minutes after the send: 0–10: 14; 10–20: 9; 20–30: 0; 30+: 3."
    labels = texts(root)
    assert "14" in labels and "First hour" in labels
    assert len([r for r in root.iter("{http://www.w3.org/2000/svg}rect")]) == 4
    with pytest.raises(ValueError, match="differ in length"):
        charts.bar_chart([1], [], title="bad")


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0.0, "0.00 %"), (0.004, "<0.01 %"), (0.5, "0.50 %"), (1.2345, "1.23 %")],
    ids=["none", "zero", "tiny", "half", "rounded"],
)
def test_format_rate(value: float | None, text: str) -> None:
    assert format_rate(value) == text


@pytest.mark.parametrize(
    ("span", "step"), [(1.2, 0.2), (1.3, 0.25), (1.7, 0.5), (30, 5), (0, 1.0), (7, 2)], ids=str
)
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == step
