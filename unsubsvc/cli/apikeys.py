"""``unsubsvc apikey``: make, list and revoke the keys senders use for ``/api/v1``."""

from __future__ import annotations

import json

import click

from unsubsvc.cli.common import now, session, unit_of_work
from unsubsvc.services import apikeys


@click.group("apikey")
def apikey_group() -> None:
    """Manage API keys."""


@apikey_group.command("create")
@click.argument("name")
@unit_of_work
def create(name: str) -> None:
    """Make a key called NAME and print it (once: only a hash is kept)."""
    made = apikeys.create_key(session(), name, now=now())
    click.echo(made.secret)
    click.echo(f"Created API key {name!r}; store it now, it is not shown again.", err=True)


@apikey_group.command("list")
@unit_of_work
def list_keys() -> None:
    """Print every key as a JSON line (name, prefix, dates; never the secret)."""
    for key in apikeys.list_keys(session()):
        click.echo(
            json.dumps(
                {
                    "name": key.name,
                    "prefix": f"usk_{key.prefix}_",
                    "created_at": key.created_at.isoformat(),
                    "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
                    "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
                }
            )
        )


@apikey_group.command("revoke")
@click.argument("name")
@unit_of_work
def revoke(name: str) -> None:
    """Revoke the key called NAME; requests with it get 401 at once."""
    apikeys.revoke_key(session(), name, now=now())
    click.echo(f"Revoked API key {name!r}.", err=True)


COMMANDS: tuple[click.Command, ...] = (apikey_group,)
