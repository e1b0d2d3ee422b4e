"""Report rows written out: columns from the types, one formula-safe CSV writer, JSON, text."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import pytest

from unsubsvc.core import tables
from unsubsvc.core.report_rows import (
    BreakdownRow,
    CampaignRow,
    CampaignTiming,
    CommentRow,
    ListOverviewRow,
    ReasonRow,
    TimingRow,
)
from unsubsvc.core.reporting import Band, CohortRow, ComplaintLevel, Rates, TrendPoint

SENT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RATES = ("delivered", "unsubscribes", "unsubscribe_rate", "band", "complaints", "complaint_rate")


@dataclass(frozen=True)
class Sample:
    name: str
    rates: Rates
    note: str | None


def campaign(key: str = "c1", **overrides: object) -> CampaignRow:
    values: dict[str, object] = {
        "campaign": key, "list": "news", "rates": Rates(2_000, 7, 1),
        "complaint_level": ComplaintLevel.OK, "sent_at": SENT,
        "segment": None, "source": "form", "bounces": 0, "saves": 2, "resubscribes": 0,
        "excuse": None, "benchmark": None,
    }  # fmt: skip
    return CampaignRow(**{**values, **overrides})  # type: ignore[arg-type]


def test_columns_come_from_the_fields_with_nested_rates_in_place() -> None:
    assert tables.columns(Sample) == ("name", *RATES, "note")
    assert tables.columns(CampaignRow) == (
        "campaign", "list", *RATES, "complaint_level", "sent_at", "segment", "source",
        "bounces", "saves", "resubscribes", "excuse", "benchmark",
    )  # fmt: skip
    assert tables.columns(ListOverviewRow) == (
        "list", "display_name", "niche", "campaigns", *RATES, "complaint_level", "saves",
        "latest_campaign", "latest_band",
    )  # fmt: skip
    assert tables.columns(BreakdownRow) == ("group", "campaigns", *RATES)
    assert tables.columns(TrendPoint) == (
        "campaign", "sent_at", "unsubscribe_rate", "rolling_average", "well_above_average",
    )  # fmt: skip
    assert tables.columns(CohortRow) == (
        "cohort", "members", "honeymoon_unsubscribes", "honeymoon_rate",
        "later_unsubscribes", "later_rate",
    )  # fmt: skip
    assert tables.columns(ReasonRow) == ("reason", "label", "count", "share")
    assert tables.columns(CommentRow) == (
        "created_at",
        "list",
        "campaign",
        "reason",
        "comment",
    )
    assert tables.columns(TimingRow) == ("minutes_from", "minutes_to", "unsubscribes")
    assert tables.columns(Rates) == tuple(f.name for f in fields(Rates))


def test_record_is_plain_json() -> None:
    row = campaign()
    record = tables.record(row)
    assert list(record) == list(tables.columns(CampaignRow))
    assert record["sent_at"] == "2026-03-01T09:00:00+00:00"
    assert record["band"] == "acceptable" and type(record["band"]) is str
    assert record["unsubscribe_rate"] == 0.35
    assert (
        tables.record(BreakdownRow("eu", 1, Rates(10, 0, 0)), {"group": "segment"})["segment"]
        == "eu"
    )
    body = json.loads(tables.to_json("campaigns", [row]))
    assert body == {"campaigns": [record]}
    assert "\\u2013" in tables.to_json("x", [ReasonRow(None, "a–b", 0, None)])
    assert "a–b" in tables.to_json("x", [ReasonRow(None, "a–b", 0, None)], ensure_ascii=False)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1 to that", "'+1 to that"),
        ("-2", "'-2"),
        ("@someone", "'@someone"),
        ("\tindented", "'\tindented"),
        ("  =SUM(A1)", "'  =SUM(A1)"),
        ("plain <b>text</b>", "plain <b>text</b>"),
        (-0.5, "-0.5"),  # a number is not a formula
        (None, ""),
        (True, "true"),
        (False, "false"),
        (SENT, "2026-03-01T09:00:00+00:00"),
        (Band.CRITICAL, "critical"),
    ],
    ids=["formula", "plus", "minus", "at", "tab", "spaced-formula", "text", "negative", "none",
         "true", "false", "time", "enum"],
)  # fmt: skip
def test_csv_cells_are_inert(value: object, cell: str) -> None:
    assert tables.csv_cell(value) == cell


def test_csv_writer_quotes_formulas_and_keeps_numbers() -> None:
    rows = [campaign('=HYPERLINK("x")'), campaign("c2", rates=Rates(0, 1, 0))]
    text = tables.to_csv(rows, tables.columns(CampaignRow))
    assert text.endswith("\r\n") and "\r\n" in text
    header, first, second = list(csv.reader(io.StringIO(text)))
    assert header == list(tables.columns(CampaignRow))
    assert first[0] == '\'=HYPERLINK("x")' and first[header.index("delivered")] == "2000"
    assert second[header.index("unsubscribe_rate")] == "" and second[header.index("band")] == ""
    unix = tables.to_csv(rows[:1], ["campaign", "band"], line_end="\n")
    assert unix == 'campaign,band\n"\'=HYPERLINK(""x"")",acceptable\n'
    assert tables.to_csv([], ["group"], labels={"group": "topic"}) == "topic\r\n"


def test_text_table_is_aligned_and_readable() -> None:
    text = tables.to_text(
        [campaign(), campaign("longer-name", sent_at=None, rates=Rates(0, 0, 0))],
        ["campaign", "sent_at", "unsubscribe_rate", "band"],
    )
    assert text.splitlines() == [
        "campaign     sent_at           unsubscribe_rate  band",
        "c1           2026-03-01 09:00  0.35%             acceptable",
        "longer-name  -                 -                 -",
    ]
    assert tables.to_text([], ["group"], labels={"group": "segment"}) == "segment"


def test_timing_buckets() -> None:
    timing = CampaignTiming(SENT, 3, 1, 75.0, None, 10, (2, 1, 0, 1))
    assert timing.buckets() == [
        TimingRow(0, 10, 2), TimingRow(10, 20, 1), TimingRow(20, 30, 0), TimingRow(30, None, 1),
    ]  # fmt: skip
