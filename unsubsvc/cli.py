"""The ``unsubsvc`` command line: thin click commands over the services.

``unsubsvc`` is a FlaskGroup, so ``flask --app unsubsvc`` reaches the same
commands, and both read ``UNSUBSVC_*`` settings from the environment or a
``.env`` file.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.services import lists as list_service
from unsubsvc.services.links import LinkMinter, RecipientLinks, recipient_links
from unsubsvc.services.status import status_document
from unsubsvc.settings import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(func: F) -> F:
    """Report domain errors as ``Error: message`` with exit code 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UnsubsvcError as exc:
            raise click.ClickException(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(
                f"the database is not ready ({exc.orig}); run 'unsubsvc init' first"
            ) from exc

    return wrapper  # type: ignore[return-value]


def _session() -> Session:
    from unsubsvc.web.extensions import session

    return session()


def _minter() -> LinkMinter:
    from unsubsvc.web import context

    return context.minter()


def _now() -> datetime:
    from unsubsvc.web import context

    return context.now()


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the database schema, or upgrade it to the newest version (safe to repeat)."""
    upgrade_database()
    click.echo("Database is ready.", err=True)


def upgrade_database() -> None:
    """Apply every migration the database does not have yet."""
    from flask_migrate import upgrade

    upgrade()


@click.group("list")
def list_group() -> None:
    """Manage lists (audiences)."""


@list_group.command("create")
@click.argument("name")
@click.option("--topic", "topics", multiple=True, help="A topic slug; repeat for several.")
@click.option(
    "--frequency",
    "frequencies",
    multiple=True,
    help="A frequency slug, most frequent first; the first is the default. Repeatable.",
)
@click.option("--display-name", help="The name recipients see; defaults to NAME.")
@with_appcontext
@domain_errors
def list_create(
    name: str, topics: tuple[str, ...], frequencies: tuple[str, ...], display_name: str | None
) -> None:
    """Create the list NAME with its topics and frequencies."""
    created = list_service.create_list(
        _session(),
        name,
        now=_now(),
        display_name=display_name,
        topics=topics,
        frequencies=frequencies,
    )
    click.echo(f"Created list {created.name!r}.", err=True)


@list_group.command("show")
@click.argument("name")
@with_appcontext
@domain_errors
def list_show(name: str) -> None:
    """Print a list's topics and frequencies as JSON."""
    found = list_service.get_list(_session(), name)
    click.echo(
        json.dumps(
            {
                "name": found.name,
                "display_name": found.display_name,
                "topics": [t.slug for t in found.topics],
                "frequencies": [f.slug for f in found.frequencies],
            }
        )
    )


def _links(list_name: str, email: str, campaign: str | None, topic: str | None) -> RecipientLinks:
    return recipient_links(
        _session(), _minter(), list_name, email, now=_now(), campaign=campaign, topic=topic
    )


@click.command("headers")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@click.option("--campaign", help="The sender's campaign id, for reports.")
@click.option("--topic", help="Unsubscribe from this topic only, not the whole list.")
@click.option(
    "--preferences-url",
    "with_preferences",
    is_flag=True,
    help="Also print the preference-center URI, on a third line, as 'Preferences-URL: …'.",
)
@with_appcontext
@domain_errors
def headers_command(
    list_name: str, email: str, campaign: str | None, topic: str | None, with_preferences: bool
) -> None:
    """Print the List-Unsubscribe and List-Unsubscribe-Post lines for one recipient."""
    links = _links(list_name, email, campaign, topic)
    click.echo(links.header_lines(linesep="\n"))
    if with_preferences:
        click.echo(f"Preferences-URL: {links.preferences_url}")


@click.command("link")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@click.option("--campaign", help="The sender's campaign id, for reports.")
@with_appcontext
@domain_errors
def link_command(list_name: str, email: str, campaign: str | None) -> None:
    """Print the recipient's preference-center URI (for a 'manage preferences' footer link)."""
    click.echo(_links(list_name, email, campaign, None).preferences_url)


@click.command("status")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@with_appcontext
@domain_errors
def status_command(list_name: str, email: str) -> None:
    """Print a recipient's state on a list as JSON."""
    click.echo(json.dumps(status_document(_session(), list_name, email, now=_now())))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Serve HTTP with gunicorn (waitress on Windows)."""
    from unsubsvc.serving import serve

    serve(current_app._get_current_object(), host, port, workers=workers, threads=threads)  # type: ignore[attr-defined]


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--serve/--no-serve", "then_serve", default=True, help="Start the server afterwards.")
@with_appcontext
def demo_command(host: str, port: int, then_serve: bool) -> None:
    """Set up the database with a demo list, print a header to try, and serve."""
    from unsubsvc.core.errors import Conflict
    from unsubsvc.web import context

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not os.environ.get("UNSUBSVC_BASE_URL"):
        # Links must point at the server this command starts.
        app.config["UNSUBSVC_BASE_URL"] = f"http://{host}:{port}"
        context.install(app)
    upgrade_database()
    try:
        list_service.create_list(
            _session(),
            "newsletter",
            now=_now(),
            display_name="The Example Newsletter",
            topics=("product", "events"),
            frequencies=("weekly", "monthly"),
        )
    except Conflict:
        _session().rollback()
    links = _links("newsletter", "ann@example.com", "demo-1", None)
    click.echo(
        "\nDemo list 'newsletter' is ready. A message to ann@example.com would carry:\n\n"
        f"{links.header_lines(linesep=chr(10))}\n\n"
        "Open the landing page (changes nothing):\n"
        f"  {links.unsubscribe_url}\n"
        "Unsubscribe the way a mail client does (RFC 8058 one-click):\n"
        f"  curl -i -X POST -d 'List-Unsubscribe=One-Click' '{links.unsubscribe_url}'\n"
        "Then check the state:\n"
        "  unsubsvc status --list newsletter --email ann@example.com\n"
        "Preference center:\n"
        f"  {links.preferences_url}\n"
    )
    if then_serve:
        from unsubsvc.serving import serve

        serve(app, host, port, workers=1, threads=4)


def register_commands(app: Flask) -> None:
    """Attach every unsubsvc command to ``app.cli``."""
    for command in (
        init_command,
        list_group,
        headers_command,
        link_command,
        status_command,
        serve_command,
        demo_command,
    ):
        app.cli.add_command(command)


def _create_app() -> Flask:
    from unsubsvc.web.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def main() -> None:
    """Run the ``unsubsvc`` console script."""
    group = FlaskGroup(
        name="unsubsvc",
        create_app=_create_app,
        help="unsubsvc: one-click unsubscribe, preferences and unsubscribe-rate reports.",
    )
    group.main(prog_name="unsubsvc", args=sys.argv[1:])
