"""Reading ESP exports: layouts from the header, typed rows, per-line errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from unsubsvc.core import csv_import
from unsubsvc.core.csv_import import FileRefused, ImportRow, Layout, RowError, Status

DATA = Path(__file__).resolve().parents[1] / "data" / "import"


def read(name: str, layout: Layout | None = None) -> tuple[str, list[ImportRow | RowError]]:
    with (DATA / name).open(encoding="utf-8-sig", newline="") as text:
        reader = csv_import.Reader(text, layout)
        return reader.detected.description, list(reader)


def text_rows(body: str, layout: Layout | None = None) -> list[ImportRow | RowError]:
    return list(csv_import.Reader(io.StringIO(body, newline=""), layout))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "description", "expected"),
    [
        (
            "mailchimp_subscribed.csv",
            "mailchimp (subscribed export)",
            [(2, "ann@example.com", Status.SUBSCRIBED, None), (3, "bob@example.com", 0, None)],
        ),
        (
            "mailchimp_unsubscribed.csv",
            "mailchimp (unsubscribed export)",
            [
                (2, "cat@example.com", Status.UNSUBSCRIBED, utc(2019, 3, 21, 14, 5, 12)),
                (3, "dan@example.org", Status.UNSUBSCRIBED, utc(2020, 1, 2, 3, 4, 5)),
            ],
        ),
        (
            "mailchimp_cleaned.csv",
            "mailchimp (cleaned export)",
            [(2, "eve@invalid.example", Status.CLEANED, utc(2021, 4, 5, 6, 7, 8))],
        ),
        (
            "sendgrid_unsubscribes.csv",
            "sendgrid (suppressions export)",
            [
                (2, "fay@example.com", Status.UNSUBSCRIBED, utc(2021, 3, 1)),
                (3, "gus@example.com", Status.UNSUBSCRIBED, utc(2021, 3, 2, 10)),
            ],
        ),
        (
            "sendgrid_bounces.csv",
            "sendgrid (bounces export)",
            [(2, "hal@example.com", Status.CLEANED, utc(2021, 3, 1))],
        ),
        (
            "sendgrid_contacts.csv",
            "sendgrid (contacts export)",
            [(2, "ivy@example.com", Status.SUBSCRIBED, None)],
        ),
        (
            "listmonk_subscribers.csv",
            "listmonk (subscribers export)",
            [
                (2, "jay@example.com", Status.SUBSCRIBED, None),
                (3, "kim@example.com", Status.UNSUBSCRIBED, utc(2022, 2, 3, 4, 5, 6)),
            ],
        ),
        (
            "plain.csv",
            "plain",
            [
                (2, "lee@example.com", Status.SUBSCRIBED, None),
                (4, "may@example.com", Status.UNSUBSCRIBED, utc(2022, 5, 6, 7, 8, 9)),
                (5, "ned@example.com", Status.CLEANED, utc(2022, 5, 7)),
            ],
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith(".csv") else "",
)
def test_each_layout_is_recognised_and_read(
    name: str, description: str, expected: list[tuple[int, str, Status, datetime | None]]
) -> None:
    found, rows = read(name)
    assert found == description
    assert all(isinstance(row, ImportRow) for row in rows)
    assert [(r.line, r.key, r.status, r.unsubscribed_at) for r in rows] == [  # type: ignore[union-attr]
        (line, key, Status(status), when) for line, key, status, when in expected
    ]


def test_plain_topics_split_on_either_separator() -> None:
    _, rows = read("plain.csv")
    assert [r.topics for r in rows] == [  # type: ignore[union-attr]
        {"product"},
        {"product", "events"},
        frozenset(),
    ]


def test_bad_rows_each_get_their_line() -> None:
    _, rows = read("bad_rows.csv")
    errors = [(r.line, r.message) for r in rows if isinstance(r, RowError)]
    assert [line for line, _ in errors] == [3, 4, 5, 7]
    assert "not an e-mail address" in errors[0][1]
    assert "unknown status" in errors[1][1]
    assert "not a time" in errors[2][1]
    assert "2 fields" in errors[3][1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("name,city\nann,x\n", "no e-mail column"),
        ('email,status\n"ann@example.com,subscribed\n', "not CSV"),
    ],
    ids=["empty", "blank-lines", "no-email-column", "unclosed-quote"],
)
def test_unusable_files_are_refused(body: str, message: str) -> None:
    with pytest.raises(FileRefused, match=message):
        text_rows(body)


@pytest.mark.parametrize(
    ("sample", "size", "message"),
    [
        (b"email\n", csv_import.MAX_BYTES + 1, "at most"),
        (b"PK\x03\x04\x00\x00binary", 12, "NUL"),
        (b"email\n\xff\xfe\xfa oops", 16, "not UTF-8"),
    ],
    ids=["oversized", "binary", "not-utf8"],
)
def test_oversized_or_binary_files_are_refused(sample: bytes, size: int, message: str) -> None:
    with pytest.raises(FileRefused, match=message):
        csv_import.check_sample(sample, size)


def test_a_sample_cut_inside_a_character_is_text() -> None:
    csv_import.check_sample("email\nzoë".encode()[:-1], 100)


def test_crlf_quotes_bom_and_empty_lines() -> None:
    body = '\ufeffemail,status\r\n\r\n"ann@example.com","unsubscribed"\r\n"a ""b"",c",x\r\n'
    rows = text_rows(body)
    assert isinstance(rows[0], ImportRow) and rows[0].line == 3
    assert isinstance(rows[1], RowError) and rows[1].line == 4


def test_a_formula_quote_written_by_export_is_removed() -> None:
    (row,) = text_rows("email\n'-dash@example.com\n")
    assert isinstance(row, ImportRow) and row.email == "-dash@example.com"


def test_a_plain_row_with_a_time_of_leaving_and_no_status_has_left() -> None:
    (row,) = text_rows("email,status,unsubscribed_at\nann@example.com,,2024-01-02\n")
    assert isinstance(row, ImportRow) and row.status is Status.UNSUBSCRIBED


def test_a_forced_layout_needs_its_columns() -> None:
    with pytest.raises(FileRefused, match="'status' column"):
        text_rows("email\nann@example.com\n", Layout.LISTMONK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1614556800", utc(2021, 3, 1)),
        ("1614556800000", utc(2021, 3, 1)),
        ("2021-03-01 00:00:00", utc(2021, 3, 1)),
        ("2021-03-01T01:00:00+01:00", utc(2021, 3, 1)),
        ("2021-03-01T00:00:00Z", utc(2021, 3, 1)),
        ("03/01/2021 00:00", utc(2021, 3, 1)),
    ],
    ids=["epoch", "epoch-ms", "mailchimp", "iso-offset", "iso-z", "us-date"],
)
def test_times_in_the_formats_exports_use(text: str, expected: datetime) -> None:
    assert csv_import.parse_time(text) == expected


def test_duplicates_merge_towards_suppression() -> None:
    body = (
        "email,status,unsubscribed_at,topics\n"
        "ann@example.com,subscribed,,product\n"
        "bob@example.com,subscribed,,\n"
        "ANN@example.com,unsubscribed,2024-02-01,events\n"
        "ann@example.com,subscribed,,\n"
    )
    collected = csv_import.collect(text_rows(body))
    assert collected.read == 4 and collected.duplicates == 2
    ann = collected.rows[0]
    assert (ann.line, ann.status, ann.topics) == (
        2,
        Status.UNSUBSCRIBED,
        frozenset({"product", "events"}),
    )
    assert ann.unsubscribed_at == utc(2024, 2, 1)


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "MAX_ROWS", 2)
    with pytest.raises(FileRefused, match="more than 2 rows"):
        text_rows("email\na@example.com\nb@example.com\nc@example.com\n")
