"""``erase`` and ``export``: one address's data rights (GDPR art. 15, 17 and 20).

Both are audited (actor kind ``cli``, the operating-system user), naming the
address by keyed hash only.
"""

from __future__ import annotations

import getpass
import json

import click

from unsubsvc.cli.common import now, runtime, session, unit_of_work
from unsubsvc.core.addresses import normalize_address
from unsubsvc.services import audit
from unsubsvc.services.erasure import ErasureSummary, erase
from unsubsvc.services.recipient_export import export_document, export_recipient


@click.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@unit_of_work
def erase_command(email: str, yes: bool) -> None:
    """Erase everything held about EMAIL and keep it suppressed (it is never mailed again).

    Reports keep their totals: events stay as anonymous rows.
    """
    address = normalize_address(email)
    if not yes:
        click.confirm(
            f"Erase everything held about {address}? This cannot be undone", abort=True, err=True
        )
    keyring = runtime().keyring
    summary = erase(session(), keyring, address, now=now())
    _audit("recipient.erase", address, detail=_counts(summary))
    click.echo(describe(summary), err=True)


@click.command("export")
@click.argument("email")
@unit_of_work
def export_command(email: str) -> None:
    """Print everything held about EMAIL as JSON (nothing held: says so)."""
    keyring = runtime().keyring
    exported = export_recipient(session(), keyring, email, now=now())
    _audit("recipient.export", exported.address, detail={"held": exported.held})
    click.echo(json.dumps(export_document(exported), indent=2, ensure_ascii=False))


def describe(summary: ErasureSummary) -> str:
    """Return one line saying what an erasure did."""
    if not summary.subscriber_found:
        held = "Nothing was held about this address"
    else:
        held = (
            f"Erased: {summary.subscriptions} subscription(s), "
            f"{summary.topic_opt_outs} topic opt-out(s), "
            f"{summary.webhook_deliveries_deleted} webhook delivery(ies), "
            f"{summary.survey_comments_removed} survey comment(s); "
            f"{summary.events_anonymized} event(s) kept without the address for reports"
        )
    state = "It was already erased" if summary.already_erased else "It is now suppressed"
    return f"{held}. {state} (hash {summary.address_hash[:12]}…) and will not be stored again."


def _counts(summary: ErasureSummary) -> dict[str, object]:
    return {
        "already_erased": summary.already_erased,
        "subscriber_found": summary.subscriber_found,
        "events_anonymized": summary.events_anonymized,
        "webhook_deliveries_deleted": summary.webhook_deliveries_deleted,
    }


def _audit(action: str, address: str, *, detail: dict[str, object]) -> None:
    audit.record(
        session(),
        now=now(),
        actor_kind=audit.CLI,
        actor=_operator(),
        action=action,
        target=audit.describe_target({"email": address}, runtime().keyring.address_hash),
        client="cli",
        detail=detail,
    )


def _operator() -> str | None:
    """Return the operating-system user running the command, for the audit log."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


COMMANDS: tuple[click.Command, ...] = (erase_command, export_command)
