"""``unsubsvc admin``: the accounts that may sign in to the admin console at ``/admin``."""

from __future__ import annotations

import getpass
import json
import sys

import click

from unsubsvc.cli.common import now, session, unit_of_work
from unsubsvc.services import admin_users, audit


@click.group("admin")
def admin_group() -> None:
    """Manage admin console accounts."""


@admin_group.command("create")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@unit_of_work
def create(email: str, password_stdin: bool) -> None:
    """Create an account for EMAIL; the password is prompted for (hidden, twice)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"Password (at least {admin_users.MIN_PASSWORD_LENGTH} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    admin = admin_users.create_admin(session(), email, password, now=now())
    click.echo(f"Created admin {admin.email}; sign in at /admin/login.", err=True)


@admin_group.command("list")
@unit_of_work
def list_command() -> None:
    """Print every account as a JSON line (never the password hash)."""
    for admin in admin_users.list_admins(session()):
        click.echo(
            json.dumps(
                {
                    "email": admin.email,
                    "created_at": admin.created_at.isoformat(),
                    "last_login_at": admin.last_login_at.isoformat()
                    if admin.last_login_at
                    else None,
                    "disabled_at": admin.disabled_at.isoformat() if admin.disabled_at else None,
                    "failed_logins": admin.failed_logins,
                    "locked_until": admin.locked_until.isoformat()
                    if admin.locked_until and admin.locked_until > now()
                    else None,
                }
            )
        )


@admin_group.command("disable")
@click.argument("email")
@unit_of_work
def disable(email: str) -> None:
    """Disable the account for EMAIL: it can no longer sign in, and open sessions end."""
    admin = admin_users.disable_admin(session(), email, now=now())
    click.echo(f"Disabled admin {admin.email}.", err=True)


@admin_group.command("revoke-sessions")
@click.argument("email")
@unit_of_work
def revoke_sessions(email: str) -> None:
    """End every open console session of EMAIL at once (a lost laptop, a leaked cookie)."""
    ended = admin_users.revoke_sessions(
        session(), email, now=now(), actor_kind=audit.CLI, actor=_operator(), client="cli"
    )
    click.echo(f"Ended {ended} session{'' if ended == 1 else 's'} of {email}.", err=True)


def _operator() -> str | None:
    """Return the operating-system user running the command, for the audit log."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


COMMANDS: tuple[click.Command, ...] = (admin_group,)
