"""Mail unsubsvc sends itself: ``outbox deliver``, ``list`` and ``purge``."""

from __future__ import annotations

import json
import subprocess

import click

from unsubsvc.cli import background
from unsubsvc.cli.background import poll_until_stopped, stop_signals
from unsubsvc.cli.common import now, runtime, session, unit_of_work
from unsubsvc.runtime import Runtime
from unsubsvc.services import outbox as svc

#: Seconds between delivery runs when ``deliver`` loops (and under ``serve --deliver-mail``).
DEFAULT_INTERVAL = 5.0


@click.group("outbox")
def outbox_group() -> None:
    """Mail unsubsvc sends itself (sign-in links, resubscribe confirmations) over SMTP."""


@outbox_group.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between runs when looping.",
)
def outbox_deliver(once: bool, interval: float) -> None:
    """Send due mail over UNSUBSVC_SMTP_URL, with retries; loop until stopped unless --once.

    Several deliverers may run at once: each leases the rows it sends.
    """
    built = runtime()
    if once:
        report = _deliver_all(built.session_factory, built)
        click.echo(f"Mail: {report}.", err=True)
        return

    def step() -> None:
        report = _deliver_all(built.session_factory, built)
        if report.sent or report.retrying or report.failed:
            click.echo(f"Mail: {report}.", err=True)

    def purge() -> None:
        with built.unit_of_work() as work:
            retention = built.settings.mail_retention_days
            svc.purge(work, now=built.now(), retention_days=retention)

    with stop_signals() as stopped:
        click.echo(f"Delivering mail every {interval:g} s until stopped.", err=True)
        poll_until_stopped("Mail", interval, stopped, step, purge)
    click.echo("Stopped delivering mail.", err=True)


def _deliver_all(factory: svc.Transactions, built: Runtime) -> svc.DeliveryReport:
    """Run ``deliver_due`` until nothing due is left; return the summed report."""
    sent = retrying = failed = 0
    while True:
        report = svc.deliver_due(factory, built.settings, now=built.now(), clock=built.now)
        if report.not_configured:
            return report
        sent, retrying, failed = (
            sent + report.sent,
            retrying + report.retrying,
            failed + report.failed,
        )
        if report.sent + report.retrying + report.failed < svc.DEFAULT_BATCH:
            return svc.DeliveryReport(sent=sent, retrying=retrying, failed=failed)


@outbox_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@unit_of_work
def outbox_list(limit: int) -> None:
    """Print the newest outgoing mail as JSON lines (no bodies): status, attempts, last error."""
    if runtime().settings.smtp_url is None:
        click.echo("UNSUBSVC_SMTP_URL is not set: queued mail is not being sent.", err=True)
    for row in svc.list_mail(session(), limit=limit):
        line = {
            "id": row.id,
            "kind": row.kind,
            "recipient": row.recipient,
            "status": row.status,
            "attempts": row.attempts,
            "created_at": row.created_at.isoformat(),
            "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "failed_at": row.failed_at.isoformat() if row.failed_at else None,
            "last_error": row.last_error,
        }
        click.echo(json.dumps(line))


@outbox_group.command("purge")
@unit_of_work
def outbox_purge() -> None:
    """Delete sent and failed mail older than UNSUBSVC_MAIL_RETENTION_DAYS."""
    days = runtime().settings.mail_retention_days
    count = svc.purge(session(), now=now(), retention_days=days)
    click.echo(f"Mail: purged {count} (older than {days} days).", err=True)


def spawn_deliverer(interval: float) -> subprocess.Popen[bytes]:
    """Start ``unsubsvc outbox deliver --interval N`` as a child that dies with this process."""
    return background.spawn_deliverer("outbox", interval)


COMMANDS: tuple[click.Command, ...] = (outbox_group,)
