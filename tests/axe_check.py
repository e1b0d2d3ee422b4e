"""Accessibility checks in a real browser: axe-core's rules and sideways scrolling.

axe-core (tests/axe/node_modules, from ``npm ci --prefix tests/axe``) is injected with
``page.evaluate``: that runs in the page's main world through the DevTools protocol, which
the pages' Content Security Policy does not govern, whereas an added ``<script>`` tag
would be refused by ``script-src``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


@cache
def axe_source() -> str:
    """Return axe-core's script, or say how to install it."""
    if not AXE.is_file():
        raise FileNotFoundError(f"{AXE} is missing: run `npm ci --prefix tests/axe`")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core's default rules (WCAG 2 A/AA and best practices) on the page."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    """Return one line per violation and element, for an assertion message."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {' '.join(node['target'])}: {node['html'][:160]}"
        for v in violations
        for node in v["nodes"]
    )


def overflow(page: Any) -> int:
    """Return how far the page scrolls sideways, in CSS pixels (0: it does not)."""
    width: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def widest(page: Any) -> list[str]:
    """Name the elements that reach past the viewport's right edge, to say what overflows."""
    found: list[str] = page.evaluate(
        """() => {
             const edge = document.documentElement.clientWidth + 0.5;
             const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
               + (typeof e.className === 'string' && e.className
                  ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
             return [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > edge)
               .slice(0, 8)
               .map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
           }"""
    )
    return found


def smallest_chart_text(page: Any) -> float | None:
    """Return the smallest rendered size, in CSS px, of the text in the page's SVG charts."""
    size: float | None = page.evaluate(
        """() => {
             const sizes = [...document.querySelectorAll('svg.chart text')]
               .filter(t => t.getClientRects().length)
               .map(t => {  // the scale of a turned text too: |(a, b)| of its matrix
                 const m = t.getScreenCTM();
                 return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
               });
             return sizes.length ? Math.min(...sizes) : null;
           }"""
    )
    return size
