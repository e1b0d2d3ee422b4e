"""unsubsvc audit: read and export the audit log (reading it is not itself recorded)."""

from __future__ import annotations

import click

from unsubsvc.cli.common import session, unit_of_work
from unsubsvc.cli.reports import FORMAT, parse_time, render
from unsubsvc.core.audit_rows import ACTOR_KINDS, AuditFilter, AuditRow
from unsubsvc.services import audit

#: The columns of the readable table (CSV and JSON have every one).
TABLE_COLUMNS = ("occurred_at", "actor_kind", "actor", "action", "target", "client")


@click.group("audit")
def audit_group() -> None:
    """The audit log: admin, API and command-line actions, and refused sign-ins."""


@audit_group.command("list")
@click.option("--since", help="Only events at or after this time (ISO-8601; UTC if no zone).")
@click.option("--until", help="Only events before this time (ISO-8601; UTC if no zone).")
@click.option("--kind", type=click.Choice(ACTOR_KINDS), help="Only events of this kind of actor.")
@click.option("--action", "action_prefix", help="Only actions starting with this (api., cli.).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many events, newest first (0: all of them).",
)
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@unit_of_work
def list_command(
    since: str | None,
    until: str | None,
    kind: str | None,
    action_prefix: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Print audit events, newest first, as a table, CSV or JSON."""
    filters = AuditFilter(
        actor_kind=kind,
        action_prefix=action_prefix,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    if limit:
        rows = audit.events(session(), filters, limit=limit)
    else:
        rows = list(audit.iter_events(session(), filters))
    click.echo(render(rows, AuditRow, fmt, "events", shown=TABLE_COLUMNS))


COMMANDS: tuple[click.Command, ...] = (audit_group,)
