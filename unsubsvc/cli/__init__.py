"""The ``unsubsvc`` command line: thin click commands over the services.

``unsubsvc`` is a click group of its own: it builds the runtime (from
``UNSUBSVC_*`` variables and an optional ``.env``) only when a command needs
it, so ``--help`` and ``--version`` work whatever the configuration.
``flask --app unsubsvc`` reaches the same commands (see ``unsubsvc.create_app``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import click

from unsubsvc.cli import (
    admin,
    apikeys,
    audit,
    bounces,
    data_rights,
    importing,
    inbound,
    lists,
    mail,
    outbox,
    reports,
    secret,
    setup,
    webhooks,
)


def package_version() -> str:
    """Return the installed unsubsvc's version."""
    try:
        return version("unsubsvc")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0+unknown"


@click.group(
    "unsubsvc",
    help="unsubsvc: one-click unsubscribe, preferences and unsubscribe-rate reports.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(
    package_version(), "--version", prog_name="unsubsvc", message="%(prog)s %(version)s"
)
def cli() -> None:
    """The unsubsvc command group."""


for _command in (
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
    *outbox.COMMANDS,
    *admin.COMMANDS,
    *secret.COMMANDS,
    *data_rights.COMMANDS,
    *importing.COMMANDS,
    *audit.COMMANDS,
    *bounces.COMMANDS,
):
    cli.add_command(_command)


def main() -> None:
    """Run the ``unsubsvc`` console script."""
    cli.main(prog_name="unsubsvc", args=sys.argv[1:])
