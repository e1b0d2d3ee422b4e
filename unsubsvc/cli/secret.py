"""unsubsvc secret: make keys strong enough for production."""

from __future__ import annotations

import click

from unsubsvc.core.key_strength import GENERATED_BYTES, generate_key


@click.group("secret")
def secret_group() -> None:
    """Make keys for UNSUBSVC_SECRET_KEY."""


@secret_group.command("generate")
def generate_command() -> None:
    """Print a new random key for UNSUBSVC_SECRET_KEY.

    Only the key goes to stdout, and the hint to stderr, so that
    KEY=$(unsubsvc secret generate) captures the key alone. It reads no
    configuration: it works before there is one.
    """
    click.echo(generate_key())
    click.echo(
        f"A new key of {GENERATED_BYTES} random bytes. To rotate, put it first, "
        "comma-separated, newest first: UNSUBSVC_SECRET_KEY=<new key>,<current key>. "
        "Links signed with an older key keep working while it is listed.",
        err=True,
    )


COMMANDS: tuple[click.Command, ...] = (secret_group,)
