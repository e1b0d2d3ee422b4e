"""The ``unsubsvc`` command line: thin click commands over the services.

``unsubsvc`` is a FlaskGroup, so ``flask --app unsubsvc`` reaches the same
commands, and both read ``UNSUBSVC_*`` settings from the environment or a
``.env`` file.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from unsubsvc.settings import ConfigError


def register_commands(app: Flask) -> None:
    """Attach every unsubsvc command to ``app.cli``."""
    from unsubsvc.cli import admin, apikeys, inbound, lists, mail, reports, setup, webhooks

    for command in (
        setup.init_command,
        setup.serve_command,
        setup.demo_command,
        lists.list_group,
        lists.headers_command,
        lists.link_command,
        lists.status_command,
        *apikeys.COMMANDS,
        *reports.COMMANDS,
        *mail.COMMANDS,
        *inbound.COMMANDS,
        *webhooks.COMMANDS,
        *admin.COMMANDS,
    ):
        app.cli.add_command(command)


#: sysexits.h EX_TEMPFAIL: an MTA keeps the message and retries later.
EX_TEMPFAIL = 75


def _create_app() -> Flask:
    from unsubsvc.web.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        if sys.argv[1:2] == ["inbound"]:
            # An MTA bounces mail on exit 1; a configuration fault should defer it instead.
            click.echo(f"unsubsvc inbound: configuration: {exc}", err=True)
            sys.exit(EX_TEMPFAIL)
        raise click.ClickException(f"configuration: {exc}") from exc


def main() -> None:
    """Run the ``unsubsvc`` console script."""
    group = FlaskGroup(
        name="unsubsvc",
        create_app=_create_app,
        help="unsubsvc: one-click unsubscribe, preferences and unsubscribe-rate reports.",
    )
    group.main(prog_name="unsubsvc", args=sys.argv[1:])
