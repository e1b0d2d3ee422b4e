"""One result row of the benchmark table, and the table itself (markdown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DASH = "—"


@dataclass
class Result:
    """A row: baseline and subject as shown, their ratio, the target and whether it is met."""

    row: str
    database: str
    baseline: str
    subject: str
    ratio: float | None = None
    target: str = DASH
    met: bool | None = None
    p99_baseline: str = DASH
    p99_subject: str = DASH
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def met_text(self) -> str:
        if self.failures:
            return "**CHECK FAILED**"
        if self.met is None:
            return DASH
        return "yes" if self.met else "**no**"


def rate(value: float, unit: str = "/s") -> str:
    """Format a throughput."""
    return f"{value:,.0f}{unit}"


def ms(microseconds: float) -> str:
    """Format a latency given in microseconds as milliseconds."""
    return f"{microseconds / 1000:.1f} ms"


COLUMNS = (
    "row",
    "db",
    "baseline",
    "subject",
    "ratio",
    "target",
    "met?",
    "p99 baseline",
    "p99 subject",
)


def render(results: Sequence[Result]) -> str:
    """Return the results as one markdown table, then each row's notes and failed checks."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else DASH
        cells = (
            r.row,
            r.database,
            r.baseline,
            r.subject,
            ratio,
            r.target,
            r.met_text(),
            r.p99_baseline,
            r.p99_subject,
        )
        lines.append("| " + " | ".join(cells) + " |")
    details = [
        f"- {r.row} ({r.database}): {text}" for r in results for text in (*r.notes, *r.failures)
    ]
    if details:
        lines += ["", *details]
    return "\n".join(lines)
