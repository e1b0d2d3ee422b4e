"""``unsubsvc delivered`` and ``unsubsvc report``: what was sent, and how it went."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from unsubsvc.cli.common import now, session, unit_of_work
from unsubsvc.core import tables
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.report_rows import (
    BreakdownRow,
    CampaignRow,
    CampaignTiming,
    ReasonRow,
    TimingRow,
)
from unsubsvc.core.reporting import CohortRow, Rates, TrendPoint, rules_in_brief
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
@unit_of_work
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


def render(
    rows: Sequence[object],
    row_type: type,
    fmt: str,
    key: str,
    *,
    shown: Sequence[str] | None = None,
    labels: tables.Labels | None = None,
) -> str:
    """Render rows as JSON (``{key: rows}``), CSV or an aligned table, columns from ``row_type``.

    ``shown`` picks the table's columns (CSV and JSON have them all); ``labels``
    writes some columns under other names.
    """
    if fmt == "json":
        return tables.to_json(key, rows, labels=labels)
    names = tables.columns(row_type)
    if fmt == "csv":
        return tables.to_csv(rows, names, labels=labels, line_end="\n").rstrip("\n")
    return tables.to_text(rows, shown or names, labels=labels)


#: The campaign columns the readable table shows (CSV and JSON have every one).
TABLE_COLUMNS = ("campaign", "list", "sent_at", *tables.columns(Rates), "complaint_level", "saves")
#: What ``report timing`` prints as JSON for a campaign without a send time (as it always has).
NO_SEND_KEYS = ("sent_at", "first_hour", "later", "hint", "histogram")
FORMAT = click.Choice(["table", "json", "csv"])
Command = TypeVar("Command", bound=Callable[..., Any])


def time_window(what: str) -> Callable[[Command], Command]:
    """Add ``--since`` and ``--until`` (ISO-8601, read with ``parse_time``) selecting ``what``."""

    def add(command: Command) -> Command:
        command = click.option("--until", help=f"Only {what} before this time (ISO-8601).")(command)
        return click.option("--since", help=f"Only {what} at or after this time (ISO-8601).")(
            command
        )

    return add


@click.group("report", invoke_without_command=True)
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@time_window("sends")
@click.pass_context
@unit_of_work
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
    click.echo(render(rows, CampaignRow, fmt, "campaigns", shown=TABLE_COLUMNS))
    if fmt == "table":
        click.echo(
            f"\nRates are per send: unsubscribes ÷ delivered × 100. {rules_in_brief()}", err=True
        )


@report_group.command("by")
@click.argument("dimension", type=click.Choice(reports.BREAKDOWNS))
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@time_window("sends")
@unit_of_work
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
    click.echo(render(rows, BreakdownRow, fmt, "groups", labels={"group": dimension}))


@report_group.command("trend")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@unit_of_work
def trend_command(list_name: str, fmt: str) -> None:
    """Per-send rate beside the rolling average of the four sends before it."""
    list_service.get_list(session(), list_name)
    rows = reports.list_trend(session(), list_name)
    click.echo(render(rows, TrendPoint, fmt, "trend"))


@report_group.command("cohorts")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@unit_of_work
def cohorts_command(list_name: str, fmt: str) -> None:
    """Unsubscribe rate by signup month: first three sends against later ones."""
    rows = reports.cohort_table(session(), list_name)
    click.echo(render(rows, CohortRow, fmt, "cohorts"))


@report_group.command("timing")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--campaign", required=True, help="The campaign.")
@click.option("--format", "fmt", type=FORMAT, default="json", show_default=True)
@unit_of_work
def timing_command(list_name: str, campaign: str, fmt: str) -> None:
    """When a campaign's unsubscribes came: first hour against later, with a hint.

    JSON has the split, the hint and the histogram; CSV has the histogram by
    minutes after the send, and the table adds the split and the hint below it.
    """
    timing = reports.campaign_timing(session(), list_name, campaign)
    if fmt == "json":
        found = tables.record(timing)
        if timing.sent_at is None:
            found = {key: found[key] for key in NO_SEND_KEYS}
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(render(timing.buckets(), TimingRow, fmt, "timing"))
    if fmt == "table":
        click.echo(f"\n{_timing_summary(timing)}")


def _timing_summary(timing: CampaignTiming) -> str:
    """Say how a campaign's unsubscribes split around the first hour, and what that hints at."""
    if timing.sent_at is None:
        return "No send time was recorded for this campaign (delivered --sent-at): no timing."
    share = "" if timing.first_hour_share is None else f" ({timing.first_hour_share:.1f} %)"
    lines = [f"First hour after the send: {timing.first_hour}{share}; later: {timing.later}."]
    if timing.hint:
        lines.append(timing.hint)
    return "\n".join(lines)


@report_group.command("reasons")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--campaign", help="Only this campaign.")
@time_window("answers")
@unit_of_work
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
    click.echo(render(rows, ReasonRow, fmt, "reasons"))


COMMANDS: tuple[click.Command, ...] = (delivered_command, report_group)
