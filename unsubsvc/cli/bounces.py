"""Bounce suppressions: ``bounce clear``."""

from __future__ import annotations

import json

import click

from unsubsvc.cli.common import now, session, unit_of_work
from unsubsvc.core.addresses import normalize_address
from unsubsvc.services import senders
from unsubsvc.services.lists import get_list


@click.group("bounce")
def bounce_group() -> None:
    """Bounce suppressions (hard bounces, or too many soft ones)."""


@bounce_group.command("clear")
@click.option("--email", required=True, help="The address that takes mail again.")
@click.option("--list", "list_name", default=None, help="Only this list (default: every list).")
@unit_of_work
def bounce_clear(email: str, list_name: str | None) -> None:
    """Let an address suppressed by its bounces be mailed again; print the lists cleared.

    For when the mailbox is known to work again: earlier soft bounces no longer count.
    """
    mailing_list = get_list(session(), list_name) if list_name else None
    cleared = senders.clear_bounces(session(), email, now=now(), mailing_list=mailing_list)
    click.echo(json.dumps({"email": normalize_address(email), "cleared": cleared}))


COMMANDS: tuple[click.Command, ...] = (bounce_group,)
