"""Band edges and complaint lines are written once, in ``unsubsvc/core/reporting.py``.

Everything else (services, CLI, admin console, charts, templates) takes them
from there. The check reads the package's Python and the templates and looks
for the thresholds in the forms they were written again before: a percentage
in text (``"good < 0.2 %"``), ``Fraction``/``Decimal`` constants, a float
compared with (``rate >= 0.5``), or a literal table of several of them
(``(0.2, 0.5, 1.0)``). Floats used for geometry (``index + 0.5``) or timing
(``sleep(0.1)``), and integers, are not thresholds; the check's own tests
below show what it catches and what it lets pass.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from unsubsvc.core.reporting import BAND_EDGES, COMPLAINT_CRITICAL, COMPLAINT_WARNING

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "unsubsvc" / "core" / "reporting.py"
#: Percent values of the band edges and the complaint lines.
THRESHOLDS = frozenset({*(edge for edge, _ in BAND_EDGES), COMPLAINT_WARNING, COMPLAINT_CRITICAL})
#: A number followed by a percent sign, not part of a longer number, a ``%%`` or a ``%}`` tag.
PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[ \u00a0]?%(?![%}])")
EXACT = (Fraction, Decimal)


def _value(node: ast.expr) -> Fraction | None:
    """Return the threshold a float constant or a constant Fraction/Decimal call stands for."""
    if isinstance(node, ast.Constant) and type(node.value) is float:
        number = Fraction(str(node.value))
    elif (
        isinstance(node, ast.Call)
        and (node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", ""))
        in {kind.__name__ for kind in EXACT}
        and node.args
        and all(isinstance(arg, ast.Constant) for arg in node.args)
        and not node.keywords
    ):
        args = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
        # Fraction(numerator, denominator) takes integers only; anything else is no threshold.
        integers = [arg for arg in args if isinstance(arg, int)]
        if len(args) > 1 and len(integers) != len(args):
            return None
        try:
            number = Fraction(*integers) if len(args) > 1 else Fraction(str(args[0]))
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    else:
        return None
    return number if number in THRESHOLDS else None


def thresholds_in(source: str, *, python: bool) -> list[str]:
    """Return where ``source`` writes a band edge or complaint line (empty when nowhere)."""
    found = [
        f"text {m.group(0)!r}"
        for m in PERCENT.finditer(source)
        if Fraction(m.group(1)) in THRESHOLDS
    ]
    if not python:
        return found
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call) and node.args and _value(node) is not None:
            found.append(f"line {line}: exact constant {ast.unparse(node)}")
        elif isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                if isinstance(operand, ast.Constant) and _value(operand) is not None:
                    found.append(f"line {line}: comparison {ast.unparse(node)}")
        elif isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            inside = [
                n for n in ast.walk(node) if isinstance(n, ast.Constant) and _value(n) is not None
            ]
            if len(inside) >= 2:
                found.append(f"line {line}: table {ast.unparse(node)[:60]}")
    return found


def sources() -> list[Path]:
    """Return every Python file of the package and every template, but reporting.py."""
    files = [*(ROOT / "unsubsvc").rglob("*.py"), *(ROOT / "templates").rglob("*.html")]
    return sorted(path for path in files if path != HOME)


def test_the_thresholds_are_the_rate_facts() -> None:
    assert sorted(THRESHOLDS) == [Fraction(1, 10), Fraction(2, 10), Fraction(3, 10),
                                  Fraction(5, 10), Fraction(1)]  # fmt: skip


def test_thresholds_are_written_in_reporting_only() -> None:
    checked = sources()
    assert len(checked) > 40 and any(p.suffix == ".html" for p in checked)
    found = {
        str(path.relative_to(ROOT)): hits
        for path in checked
        if (hits := thresholds_in(path.read_text(encoding="utf-8"), python=path.suffix == ".py"))
    }
    assert found == {}


def test_reporting_itself_holds_them() -> None:
    """The check finds the thresholds where they do live: it is not blind."""
    hits = thresholds_in(HOME.read_text(encoding="utf-8"), python=True)
    assert any("Fraction(2, 10)" in hit for hit in hits)
    assert any("0.5 %" in hit for hit in hits)


@pytest.mark.parametrize(
    "source",
    [
        'NOTE = "Bands: good < 0.2 %, acceptable ≤ 0.5 %"',
        'LABEL = "above 1.0 %"',
        'LINE = "complaints at 0.3%"',
        "EDGE = Fraction(1, 5)",
        "EDGE = fractions.Fraction(1)",
        'EDGE = Decimal("0.5")',
        "bad = rate >= 0.5",
        "bad = 0.1 <= complaint_rate",
        "EDGES = (0.2, 0.5, 1.0)",
        'LINES = ((0.2, "x", "#137333"), (0.5, "y", "#8a4b00"))',
    ],
    ids=["text", "text-one-decimal", "text-no-space", "fraction", "fraction-attr", "decimal",
         "compare", "compare-reversed", "tuple", "nested-table"],
)  # fmt: skip
def test_the_check_catches_rewritten_thresholds(source: str) -> None:
    assert thresholds_in(source, python=True)


@pytest.mark.parametrize(
    "source",
    [
        "x = left + slot * (index + 0.5)",
        "time.sleep(min(left, 0.1))",
        "if distinct_values > 1: pass",
        "STEPS = (1.0, 2.0, 2.5, 5.0)",
        'TEXT = "%.1f %%" % share',
        'TEXT = f"{value:.2f} %"',
        'TEXT = "100 % of them"',
        "EDGE = Fraction(3, 2)",
        "ok = rate > 0.05",
    ],
    ids=["geometry", "sleep", "int-compare", "one-in-a-table", "format", "f-string",
         "other-percent", "other-fraction", "other-float"],
)  # fmt: skip
def test_the_check_lets_other_numbers_pass(source: str) -> None:
    assert thresholds_in(source, python=True) == []


def test_the_check_reads_templates_as_text() -> None:
    assert thresholds_in("<td>below 0.2 %</td>", python=False)
    assert thresholds_in("{% if page > 1 %}<td>{{ band_ranges[band] }}</td>", python=False) == []
