"""Set up and run: ``init``, ``serve`` and ``demo``."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import with_appcontext

from unsubsvc.cli.common import minter, now, session
from unsubsvc.services import lists as list_service
from unsubsvc.services.demo_data import generate_history
from unsubsvc.services.links import recipient_links


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


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option(
    "--deliver-webhooks/--no-deliver-webhooks",
    default=False,
    show_default=True,
    help="Also run 'webhooks deliver' in a child process while serving.",
)
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int, deliver_webhooks: bool) -> None:
    """Serve HTTP with gunicorn (waitress on Windows)."""
    from unsubsvc.cli import webhooks
    from unsubsvc.serving import serve

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    deliverer = webhooks.spawn_deliverer(webhooks.DEFAULT_INTERVAL) if deliver_webhooks else None
    parent = os.getpid()
    try:
        serve(app, host, port, workers=workers, threads=threads)
    finally:
        # gunicorn's forked workers leave through this frame too: only the parent stops it.
        if deliverer is not None and os.getpid() == parent:
            webhooks.stop_deliverer(deliverer)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--serve/--no-serve", "then_serve", default=True, help="Start the server afterwards.")
@click.option(
    "--campaigns", default=12, show_default=True, type=click.IntRange(min=0),
    help="Weekly sends of made-up history for the reports (written once, with the list).",
)  # fmt: skip
@click.option(
    "--recipients", default=2000, show_default=True, type=click.IntRange(min=1),
    help="Subscribers in the made-up history.",
)  # fmt: skip
@with_appcontext
def demo_command(host: str, port: int, then_serve: bool, campaigns: int, recipients: int) -> None:
    """Set up the database with a demo list and history, print a header to try, and serve."""
    from unsubsvc.core.errors import Conflict
    from unsubsvc.web import context

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not os.environ.get("UNSUBSVC_BASE_URL"):
        # Links must point at the server this command starts.
        app.config["UNSUBSVC_BASE_URL"] = f"http://{host}:{port}"
        context.install(app)
    upgrade_database()
    try:
        created = list_service.create_list(
            session(),
            "newsletter",
            now=now(),
            display_name="The Example Newsletter",
            topics=("product", "events"),
            frequencies=("weekly", "monthly"),
        )
    except Conflict:
        session().rollback()
    else:
        if campaigns:
            size = generate_history(
                session(), created, campaigns=campaigns, recipients=recipients, now=now()
            )
            click.echo(
                f"Wrote {size.campaigns} sends to {size.subscribers} subscribers "
                f"({size.events} events) for the reports.",
                err=True,
            )
    links = recipient_links(
        session(), minter(), "newsletter", "ann@example.com", now=now(), campaign="demo-1"
    )
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
