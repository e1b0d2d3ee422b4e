"""Report rows written out: CSV (formula-safe), JSON and aligned text, columns from the row type.

A report row is a frozen dataclass; its fields, in order, are the columns, so
a column is named once. A field whose type is itself a dataclass (the
``Rates`` of a send, say) stands for that dataclass's columns, in its place.
The CLI and the admin console's downloads both write through this module:
there is one CSV writer, and it quotes any text a spreadsheet would run as a
formula (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, get_type_hints

#: Spreadsheets run cells that start with these as formulas (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_LAYOUTS: dict[type, dict[str, type | None]] = {}


def _nested(row_type: type) -> dict[str, type | None]:
    """Return each field of a row type with the dataclass it nests, or None for a plain cell."""
    layout = _LAYOUTS.get(row_type)
    if layout is None:
        hints = get_type_hints(row_type)
        layout = {
            f.name: hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None
            for f in dataclasses.fields(row_type)
            for hint in (hints[f.name],)
        }
        _LAYOUTS[row_type] = layout
    return layout


def columns(row_type: type) -> tuple[str, ...]:
    """Return a row type's column names, in order."""
    out: list[str] = []
    for name, nested in _nested(row_type).items():
        out.extend(columns(nested) if nested is not None else (name,))
    return tuple(out)


def cells(row: Any) -> dict[str, Any]:
    """Return a row's values by column name, as they are (datetimes, enums, numbers)."""
    out: dict[str, Any] = {}
    for name, nested in _nested(type(row)).items():
        value = getattr(row, name)
        if nested is not None:
            out.update(cells(value))
        else:
            out[name] = value
    return out


def plain(value: Any) -> Any:
    """Return a cell as JSON has it: ISO-8601 for a time, the value of an enum."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


Labels = Mapping[str, str]
"""Names to write some columns under instead of their field's (``group`` → ``segment``)."""


def record(row: Any, labels: Labels | None = None) -> dict[str, Any]:
    """Return a row as a JSON object: its columns in order, with plain values."""
    labels = labels or {}
    return {labels.get(name, name): plain(value) for name, value in cells(row).items()}


def to_json(
    key: str, rows: Iterable[Any], *, labels: Labels | None = None, ensure_ascii: bool = True
) -> str:
    """Return ``{key: [row, …]}`` as indented JSON."""
    body = {key: [record(row, labels) for row in rows]}
    return json.dumps(body, indent=2, ensure_ascii=ensure_ascii)


def csv_cell(value: Any) -> str:
    """Return the CSV cell of a value; text a spreadsheet would run as a formula gets a quote."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and (
        text.startswith(FORMULA_START) or text.lstrip().startswith(FORMULA_START)
    ):
        return "'" + text
    return text


def to_csv(
    rows: Iterable[Any],
    names: Sequence[str],
    *,
    labels: Labels | None = None,
    line_end: str = "\r\n",
) -> str:
    """Return the ``names`` columns of rows as CSV with a header, formula-safe.

    Lines end as RFC 4180 has it unless ``line_end`` says otherwise.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(_header(names, labels))
    for row in rows:
        values = cells(row)
        writer.writerow([csv_cell(values[name]) for name in names])
    return out.getvalue()


def text_cell(value: Any) -> str:
    """Return a cell for people: ``-`` for nothing, rates as ``0.35%``, times to the minute."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}%"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"  # to the minute is enough to read
    return str(value)


def to_text(rows: Iterable[Any], names: Sequence[str], *, labels: Labels | None = None) -> str:
    """Return the ``names`` columns of rows aligned under a header, without a final newline."""
    header = _header(names, labels)
    table = [[text_cell(values[name]) for name in names] for values in map(cells, rows)]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    lines = [header, *table]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _header(names: Sequence[str], labels: Labels | None) -> list[str]:
    return [(labels or {}).get(name, name) for name in names]
