"""Set up and run: ``init``, ``serve`` and ``demo``."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import click

from unsubsvc.cli.common import runtime, session, unit_of_work
from unsubsvc.core.errors import Conflict
from unsubsvc.db.migrate import upgrade
from unsubsvc.services import lists as list_service
from unsubsvc.services import webhooks as webhook_service
from unsubsvc.services.demo_data import generate_history
from unsubsvc.services.links import recipient_links


@click.command("init")
@unit_of_work
def init_command() -> None:
    """Create the database schema, or upgrade it to the newest version (safe to repeat).

    Then encrypt any webhook secret stored in plaintext or under an older key.
    """
    upgrade(runtime().engine)
    sealed = webhook_service.encrypt_stored_secrets(session(), runtime().keyring)
    if sealed.resealed or sealed.unreadable:
        click.echo(f"Webhooks: {sealed}.", err=True)
    click.echo("Database is ready.", err=True)


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
@click.option(
    "--deliver-mail/--no-deliver-mail",
    default=False,
    show_default=True,
    help="Also run 'outbox deliver' (retries of unsubsvc's own mail) in a child process.",
)
def serve_command(
    host: str, port: int, workers: int, threads: int, deliver_webhooks: bool, deliver_mail: bool
) -> None:
    """Serve HTTP with gunicorn (waitress on Windows)."""
    from unsubsvc.cli import outbox, webhooks
    from unsubsvc.serving import serve
    from unsubsvc.web.app import create_app

    app = create_app(runtime())
    children = []
    if deliver_webhooks:
        children.append(webhooks.spawn_deliverer(webhooks.DEFAULT_INTERVAL))
    if deliver_mail:
        children.append(outbox.spawn_deliverer(outbox.DEFAULT_INTERVAL))
    parent = os.getpid()
    try:
        serve(app, host, port, workers=workers, threads=threads)
    finally:
        # gunicorn's forked workers leave through this frame too: only the parent stops them.
        if os.getpid() == parent:
            for child in children:
                webhooks.stop_deliverer(child)


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
@unit_of_work  # for its one-line errors; the demo commits through its own runtime
def demo_command(host: str, port: int, then_serve: bool, campaigns: int, recipients: int) -> None:
    """Set up the database with a demo list and history, print a header to try, and serve."""
    if then_serve:
        check_port_free(host, port)  # before anything is written
    demo = runtime()
    if not demo.settings.base_url_configured:
        # Links must point at the server this command starts.
        demo = demo.with_base_url(f"http://{host}:{port}")
    upgrade(demo.engine)
    with demo.unit_of_work() as db:
        try:
            created = list_service.create_list(
                db,
                "newsletter",
                now=demo.now(),
                display_name="The Example Newsletter",
                topics=("product", "events"),
                frequencies=("weekly", "monthly"),
            )
        except Conflict:  # raised before any write: the list is there from an earlier run
            pass
        else:
            if campaigns:
                size = generate_history(
                    db, created, campaigns=campaigns, recipients=recipients, now=demo.now()
                )
                click.echo(
                    f"Wrote {size.campaigns} sends to {size.subscribers} subscribers "
                    f"({size.events} events) for the reports.",
                    err=True,
                )
        links = recipient_links(
            db,
            demo.minter,
            "newsletter",
            "ann@example.com",
            now=demo.now(),
            campaign="demo-1",
            keyring=demo.keyring,
        )
    command = command_path()
    click.echo(
        "\nDemo list 'newsletter' is ready. A message to ann@example.com would carry:\n\n"
        f"{links.header_lines(linesep=chr(10))}\n\n"
        "Open the landing page (changes nothing):\n"
        f"  {links.unsubscribe_url}\n"
        "Unsubscribe the way a mail client does (RFC 8058 one-click):\n"
        f"  curl -i -X POST -d 'List-Unsubscribe=One-Click' '{links.unsubscribe_url}'\n"
        "Then check the state:\n"
        f"  {command} status --list newsletter --email ann@example.com\n"
        "Preference center:\n"
        f"  {links.preferences_url}\n"
        "In real mail, one-click needs an https base URL: set UNSUBSVC_BASE_URL=https://…\n"
    )
    if then_serve:
        from unsubsvc.serving import serve
        from unsubsvc.web.app import create_app

        serve(create_app(demo), host, port, workers=1, threads=4)


def check_port_free(host: str, port: int) -> None:
    """Fail with a one-line hint when ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use; choose another with --port"
                ) from None
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror}); "
                "choose another with --host or --port"
            ) from None


def command_path() -> str:
    """Return how to call ``unsubsvc`` from here: this environment's script, not a bare name."""
    script = Path(sys.executable).with_name("unsubsvc")
    if not script.exists():
        return "unsubsvc"
    try:
        return os.path.join(".", str(script.relative_to(Path.cwd())))
    except ValueError:
        return str(script)
