"""``unsubsvc import`` and ``unsubsvc export-list`` on both databases, at 100,000 rows."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.helpers import CommandRunner, make_list, transaction
from unsubsvc.core.addresses import address_key
from unsubsvc.db.base import Base
from unsubsvc.db.models import AuditEvent, ErasedAddress, Event, Subscriber, Subscription
from unsubsvc.web.context import runtime_of

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
ROWS = 100_000
#: Lines of the big file that are bad, and why.
BAD = {5_001: "not-an-address", 50_001: "maybe", 99_001: "nosuchtopic"}


def counts(app: Flask) -> dict[str, int]:
    """Return the number of rows of every table."""
    with transaction(app) as session:
        return {
            table.name: session.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def subscribed(app: Flask, email: str) -> bool:
    """Return whether the address is subscribed to the list (it must have a row there)."""
    with transaction(app) as session:
        value = session.scalar(
            sa.select(Subscription.subscribed)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email_key == email)
        )
    assert value is not None, f"{email} has no subscription"
    return value


def import_audits(app: Flask) -> list[AuditEvent]:
    with transaction(app) as session:
        return list(
            session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "list.import"))
        )


def big_file(path: Path, *, bad: bool) -> Path:
    """Write 100,000 plain rows: a tenth unsubscribed, a hundredth cleaned, some topics."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "status", "unsubscribed_at", "topics"])
        for n in range(ROWS):
            line = n + 2
            status = "cleaned" if n % 100 == 0 else "unsubscribed" if n % 10 == 0 else "subscribed"
            left = "2024-01-02 03:04:05" if status != "subscribed" else ""
            topics = "product;events" if n % 7 == 0 else ""
            email = f"user{n}@example.com"
            if bad and BAD.get(line) == "not-an-address":
                email = "not-an-address"
            elif bad and BAD.get(line) == "maybe":
                status = "maybe"
            elif bad and BAD.get(line) == "nosuchtopic":
                topics = "nosuchtopic"
            writer.writerow([email, status, left, topics])
    return path


def import_(runner: CommandRunner, path: Path, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(args=["import", str(path), "--list", "news", *extra])
    return result.exit_code, result.stdout, result.stderr


def summary(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def test_a_hundred_thousand_rows(app: Flask, runner: CommandRunner, tmp_path: Path) -> None:
    make_list(app)
    dirty = big_file(tmp_path / "dirty.csv", bad=True)
    before = counts(app)

    code, out, err = import_(runner, dirty, "--dry-run", "--errors", str(tmp_path / "e.csv"))
    assert code == 1
    assert "nothing was imported" in err
    for line, _why in BAD.items():
        assert f"line {line}: " in err
    with (tmp_path / "e.csv").open() as errors:
        assert [int(row["line"]) for row in csv.DictReader(errors)] == sorted(BAD)
    assert counts(app) == before

    code, out, err = import_(runner, dirty)
    assert code == 1 and "--skip-invalid" in err
    assert summary(out)["errors"] == "3"
    assert counts(app) == before

    clean = big_file(tmp_path / "clean.csv", bad=False)
    started = time.perf_counter()
    code, out, err = import_(runner, clean)
    elapsed = time.perf_counter() - started
    assert code == 0, err
    assert "Reading clean.csv" in err and f"{ROWS} rows read" in err and "25000 rows read" in err
    report = summary(out)
    assert report["layout"] == "plain (imported)"
    assert (report["rows"], report["new"], report["errors"]) == (str(ROWS), str(ROWS), "0")
    assert (report["unsubscribed"], report["bounced"]) == ("10000", "1000")
    after = counts(app)
    assert after["subscriber"] == after["subscription"] == ROWS
    assert after["topic_opt_out"] == 2 * len(range(0, ROWS, 7))
    assert after["event"] == 10_000 + 1_000 + after["topic_opt_out"]
    assert after["campaign_stats"] == before["campaign_stats"]
    (audit,) = import_audits(app)
    assert audit.target == "news" and audit.detail is not None
    assert audit.detail["new"] == ROWS and audit.actor_kind == "cli"
    print(f"\n100,000-row import: {elapsed:.1f} s")  # noqa: T201 - the measurement

    code, out, err = import_(runner, clean)
    assert code == 0, err
    assert summary(out)["unchanged"] == str(ROWS)
    assert {k: v for k, v in counts(app).items() if k != "audit_event"} == {
        k: v for k, v in after.items() if k != "audit_event"
    }


def test_imported_states_are_what_the_service_records(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    for name in ("plain.csv", "mailchimp_cleaned.csv", "mailchimp_subscribed.csv"):
        code, _out, err = import_(runner, DATA / name)
        assert code == 0, err
    assert subscribed(app, "lee@example.com") is True
    assert subscribed(app, "may@example.com") is False
    assert subscribed(app, "eve@invalid.example") is False
    with transaction(app) as session:
        kinds = session.execute(
            sa.select(Event.kind, Event.channel, Event.campaign_id, Event.detail).where(
                Event.topic_id.is_(None)
            )
        ).all()
    assert {(k, c, campaign) for k, c, campaign, _d in kinds} == {
        ("unsubscribe", "import", None),
        ("bounce", "import", None),
    }
    audits = import_audits(app)
    assert len(audits) == 3
    assert all("@" not in json.dumps(a.detail) + (a.target or "") for a in audits)


def test_an_import_never_resubscribes(app: Flask, runner: CommandRunner, tmp_path: Path) -> None:
    make_list(app)
    assert import_(runner, DATA / "mailchimp_unsubscribed.csv")[0] == 0
    again = tmp_path / "again.csv"
    again.write_text("email,status\ncat@example.com,subscribed\n")
    code, out, _err = import_(runner, again)
    assert code == 0 and summary(out)["unchanged"] == "1"
    assert subscribed(app, "cat@example.com") is False


def test_an_erased_address_is_not_stored_and_stays_suppressed(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyring = runtime_of(app).keyring
    with transaction(app) as session:
        session.add(
            ErasedAddress(
                address_hash=keyring.address_hash(address_key("Gone@Example.com")),
                erased_at=runtime_of(app).now(),
            )
        )
    path = tmp_path / "back.csv"
    path.write_text("email,status\ngone@example.com,subscribed\nkept@example.com,subscribed\n")
    code, out, err = import_(runner, path)
    assert code == 0, err
    assert summary(out)["erased_skipped"] == "1" and summary(out)["new"] == "1"
    with transaction(app) as session:
        stored = session.scalars(sa.select(Subscriber.email_key)).all()
        audit_text = json.dumps(
            [(a.target, a.detail) for a in session.scalars(sa.select(AuditEvent))]
        )
    assert stored == ["kept@example.com"]
    assert "gone" not in audit_text


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_list_round_trip(
    app: Flask, runner: CommandRunner, tmp_path: Path, fmt: str
) -> None:
    make_list(app)
    assert import_(runner, DATA / "plain.csv")[0] == 0
    assert import_(runner, DATA / "listmonk_subscribers.csv")[0] == 0
    exported = runner.invoke(args=["export-list", "news", "--format", fmt])
    assert exported.exit_code == 0, exported.stderr
    if fmt == "json":
        body = json.loads(exported.stdout)
        assert {s["email"]: s["status"] for s in body["subscribers"]} == {
            "lee@example.com": "subscribed",
            "may@example.com": "unsubscribed",
            "ned@example.com": "cleaned",
            "jay@example.com": "subscribed",
            "kim@example.com": "unsubscribed",
        }
        return
    rows = list(csv.DictReader(exported.stdout.splitlines()))
    assert [r["email"] for r in rows[:3]] == [
        "lee@example.com",
        "may@example.com",
        "ned@example.com",
    ]
    assert rows[1]["topics_opted_out"] == "events;product"
    assert rows[1]["unsubscribed_at"] == "2022-05-06T07:08:09+00:00"
    path = tmp_path / "export.csv"
    path.write_text(exported.stdout)

    # Into a fresh list: the same states come back.
    with transaction(app) as session:
        from unsubsvc.services.lists import create_list

        create_list(session, "copy", now=runtime_of(app).now(), topics=("product", "events"))
    result = runner.invoke(args=["import", str(path), "--list", "copy"])
    assert result.exit_code == 0, result.stderr
    copied = runner.invoke(args=["export-list", "copy"])

    def states(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(
            ({k: v for k, v in r.items() if k != "created_at"} for r in rows),
            key=lambda r: r["email"],
        )

    assert states(list(csv.DictReader(copied.stdout.splitlines()))) == states(rows)


def test_export_list_events(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    assert import_(runner, DATA / "mailchimp_cleaned.csv")[0] == 0
    result = runner.invoke(args=["export-list", "news", "--events"])
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [(r["kind"], r["email"], r["channel"]) for r in rows] == [
        ("unsubscribe", "eve@invalid.example", "import"),
        ("bounce", "eve@invalid.example", "import"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
        (b"name,city\nann,paris\n", "no e-mail column"),
    ],
    ids=["binary", "no-email"],
)
def test_unusable_files_are_refused(
    app: Flask, runner: CommandRunner, tmp_path: Path, content: bytes, message: str
) -> None:
    make_list(app)
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    before = counts(app)
    code, _out, err = import_(runner, path)
    assert code == 1 and message in err
    assert counts(app) == before


def test_skip_invalid_imports_the_good_rows(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    code, out, _err = import_(runner, DATA / "bad_rows.csv", "--skip-invalid")
    assert code == 0
    assert (summary(out)["new"], summary(out)["errors"]) == ("1", "5")
    with transaction(app) as session:
        assert session.scalars(sa.select(Subscriber.email_key)).all() == ["ok@example.com"]
