"""``unsubsvc delivered`` and ``unsubsvc report``: what was sent, and how it went."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import with_appcontext

from unsubsvc.cli.common import domain_errors, now, session
from unsubsvc.core.errors import InvalidInput
from unsubsvc.services import lists as list_service
from unsubsvc.services import reports, senders


def parse_time(value: str | None, option: str) -> datetime | None:
    """Read an ISO-8601 time; one without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option}: not an ISO-8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("delivered")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--campaign", required=True, help="The sender's campaign id.")
@click.option("--count", required=True, type=click.IntRange(min=0), help="Messages delivered.")
@click.option("--sent-at", help="When the send went out (ISO-8601; UTC if no zone).")
@click.option("--segment", help="The audience segment this part went to.")
@click.option("--source", help="The acquisition source of this part's recipients.")
@with_appcontext
@domain_errors
def delivered_command(
    list_name: str,
    campaign: str,
    count: int,
    sent_at: str | None,
    segment: str | None,
    source: str | None,
) -> None:
    """Record that COUNT messages of a campaign were delivered (repeatable: counts add up)."""
    total = senders.record_delivery(
        session(),
        list_service.get_list(session(), list_name),
        campaign,
        count,
        now=now(),
        sent_at=parse_time(sent_at, "--sent-at"),
        segment=segment,
        source=source,
    )
    click.echo(f"Campaign {total.campaign!r}: {total.delivered} delivered.", err=True)


def render(rows: list[dict[str, Any]], fields: Sequence[str], fmt: str, key: str) -> str:
    """Render rows as JSON (``{key: rows}``), CSV or an aligned table."""
    if fmt == "json":
        return json.dumps({key: rows}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({f: "" if row.get(f) is None else row.get(f) for f in fields})
        return out.getvalue().rstrip("\n")
    cells = [[_cell(row.get(f), f) for f in fields] for row in rows]
    widths = [max([len(f), *(len(c[i]) for c in cells)]) for i, f in enumerate(fields)]
    lines = ["  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any, field: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}%"
    if field.endswith("_at") and isinstance(value, str):
        return value[:16].replace("T", " ")  # to the minute is enough to read
    return str(value)


TABLE_FIELDS = (
    "campaign",
    "list",
    "sent_at",
    "delivered",
    "unsubscribes",
    "unsubscribe_rate",
    "band",
    "complaints",
    "complaint_rate",
    "complaint_level",
    "saves",
)
FORMAT = click.Choice(["table", "json", "csv"])


@click.group("report", invoke_without_command=True)
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--since", help="Only sends at or after this time (ISO-8601).")
@click.option("--until", help="Only sends before this time (ISO-8601).")
@click.pass_context
@with_appcontext
@domain_errors
def report_group(
    ctx: click.Context, fmt: str, list_name: str | None, since: str | None, until: str | None
) -> None:
    """Unsubscribe rate per campaign (unsubscribes ÷ delivered × 100), with bands."""
    if ctx.invoked_subcommand is not None:
        return
    if list_name is not None:
        list_service.get_list(session(), list_name)
    rows = reports.campaign_report(
        session(),
        list_name=list_name,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    fields = reports.CAMPAIGN_FIELDS if fmt != "table" else TABLE_FIELDS
    click.echo(render(rows, fields, fmt, "campaigns"))
    if fmt == "table":
        click.echo(
            "\nRates are per send: unsubscribes ÷ delivered × 100. Bands: good < 0.2 %, "
            "acceptable ≤ 0.5 %, investigate ≤ 1 %, critical > 1 %. Complaints: "
            "warning at 0.1 %, critical at 0.3 %.",
            err=True,
        )


@report_group.command("by")
@click.argument("dimension", type=click.Choice(reports.BREAKDOWNS))
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--since", help="Only sends at or after this time (ISO-8601).")
@click.option("--until", help="Only sends before this time (ISO-8601).")
@with_appcontext
@domain_errors
def by_command(
    dimension: str, fmt: str, list_name: str | None, since: str | None, until: str | None
) -> None:
    """Rates grouped by list, segment, source or topic."""
    rows = reports.breakdown(
        session(),
        dimension,
        list_name=list_name,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    fields = (dimension, "campaigns", "delivered", "unsubscribes", "unsubscribe_rate", "band",
              "complaints", "complaint_rate")  # fmt: skip
    click.echo(render(rows, fields, fmt, "groups"))


@report_group.command("trend")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@with_appcontext
@domain_errors
def trend_command(list_name: str, fmt: str) -> None:
    """Per-send rate beside the rolling average of the four sends before it."""
    list_service.get_list(session(), list_name)
    rows = reports.trend_rows(session(), list_name)
    click.echo(render(rows, reports.TREND_FIELDS, fmt, "trend"))


@report_group.command("cohorts")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@with_appcontext
@domain_errors
def cohorts_command(list_name: str, fmt: str) -> None:
    """Unsubscribe rate by signup month: first three sends against later ones."""
    rows = reports.cohort_rows(session(), list_name)
    click.echo(render(rows, reports.COHORT_FIELDS, fmt, "cohorts"))


@report_group.command("timing")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--campaign", required=True, help="The campaign.")
@with_appcontext
@domain_errors
def timing_command(list_name: str, campaign: str) -> None:
    """When a campaign's unsubscribes came: first hour against later, with a hint (JSON)."""
    click.echo(json.dumps(reports.campaign_timing(session(), list_name, campaign), indent=2))


@report_group.command("reasons")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--campaign", help="Only this campaign.")
@click.option("--since", help="Only answers at or after this time (ISO-8601).")
@click.option("--until", help="Only answers before this time (ISO-8601).")
@with_appcontext
@domain_errors
def reasons_command(
    fmt: str,
    list_name: str | None,
    campaign: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Exit-survey reasons, counted."""
    rows = reports.survey_reasons(
        session(),
        list_name=list_name,
        campaign=campaign,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    click.echo(render(rows, reports.REASON_FIELDS, fmt, "reasons"))


COMMANDS: tuple[click.Command, ...] = (delivered_command, report_group)
