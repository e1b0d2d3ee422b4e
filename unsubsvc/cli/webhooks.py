"""Webhooks: ``webhooks add``, ``list``, ``rotate``, ``disable``, ``deliver``, ``purge``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta

import click
from sqlalchemy.exc import SQLAlchemyError

from unsubsvc.cli import background
from unsubsvc.cli.background import first_line, poll_until_stopped, stop_child, stop_signals
from unsubsvc.cli.common import now, runtime, session, unit_of_work
from unsubsvc.core.webhooks import DEFAULT_OVERLAP, MAX_OVERLAP
from unsubsvc.services import webhooks as svc

#: Seconds between delivery runs when ``deliver`` loops (and under ``serve --deliver-webhooks``).
DEFAULT_INTERVAL = 5.0
#: Seconds a stopped deliverer gets to finish its current row before it is killed
#: (more than the HTTP timeout, which bounds that row).
STOP_TIMEOUT = 15.0


@click.group("webhooks")
def webhooks_group() -> None:
    """Tell HTTP endpoints of every change, signed (outgoing webhooks)."""


@webhooks_group.command("add")
@click.argument("url")
@unit_of_work
def webhooks_add(url: str) -> None:
    """Send every future change to URL; print its id and signing secret (shown only once).

    URL must reach a public address (https in production); at most
    UNSUBSVC_WEBHOOK_MAX_ENDPOINTS endpoints may be active.
    """
    settings = runtime().settings
    webhook, secret = svc.add_endpoint(
        session(),
        url,
        now=now(),
        keyring=runtime().keyring,
        policy=svc.url_policy(settings),
        max_endpoints=settings.webhook_max_endpoints,
    )
    click.echo(json.dumps({"id": webhook.id, "url": webhook.url, "secret": secret}))
    click.echo(
        "Store the secret now: it is not shown again. Receivers check the "
        "webhook-signature header (Standard Webhooks) with it.",
        err=True,
    )


@webhooks_group.command("rotate")
@click.argument("webhook_id", metavar="ID", type=int)
@click.option(
    "--overlap",
    type=click.FloatRange(min=0, max=MAX_OVERLAP.total_seconds() / 3600),
    default=DEFAULT_OVERLAP.total_seconds() / 3600,
    show_default=True,
    help="Hours the old secret keeps signing too (0: drop it now).",
)
@unit_of_work
def webhooks_rotate(webhook_id: int, overlap: float) -> None:
    """Give the endpoint ID a new signing secret; print it (shown only once).

    For --overlap hours every delivery carries two signatures, one with the
    new secret and one with the old, so the receiver can switch to the new
    secret whenever it likes in between.
    """
    webhook, secret = svc.rotate_secret(
        session(),
        webhook_id,
        now=now(),
        keyring=runtime().keyring,
        overlap=timedelta(hours=overlap),
    )
    line: dict[str, object] = {"id": webhook.id, "url": webhook.url, "secret": secret}
    until = webhook.previous_secret_until
    line["previous_secret_until"] = None if until is None else until.isoformat()
    click.echo(json.dumps(line))
    old = (
        "the old one stops signing now"
        if until is None
        else f"the old one signs too until {until.isoformat()}"
    )
    click.echo(f"Store the secret now: it is not shown again; {old}.", err=True)


@webhooks_group.command("list")
@unit_of_work
def webhooks_list() -> None:
    """Print every endpoint as a JSON line: id, url, active, pending, and why it is not active."""
    for endpoint in svc.list_endpoints(session(), now=now()):
        line: dict[str, object] = {
            "id": endpoint.id,
            "url": endpoint.url,
            "active": endpoint.active,
            "pending": endpoint.pending,
        }
        if endpoint.failing_since is not None:
            line["failing_since"] = endpoint.failing_since.isoformat()
        if endpoint.previous_secret_until is not None:
            line["previous_secret_until"] = endpoint.previous_secret_until.isoformat()
        if endpoint.disabled_at is not None:
            line["disabled_at"] = endpoint.disabled_at.isoformat()
            line["disabled_reason"] = endpoint.disabled_reason
        click.echo(json.dumps(line))


@webhooks_group.command("disable")
@click.argument("webhook_id", metavar="ID", type=int)
@unit_of_work
def webhooks_disable(webhook_id: int) -> None:
    """Stop sending to the endpoint ID; what it is still owed stays queued, unsent."""
    svc.disable_endpoint(session(), webhook_id, now=now())
    click.echo(f"Disabled webhook {webhook_id}.", err=True)


@webhooks_group.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between runs when looping.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=svc.DEFAULT_BATCH,
    show_default=True,
    help="Outbox rows of one endpoint claimed at a time.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=svc.DEFAULT_WORKERS,
    show_default=True,
    help="Endpoints sent to at once (a hanging one holds only its own).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=svc.DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for a receiver's answer.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=svc.DEFAULT_LEASE.total_seconds(),
    show_default=True,
    help="Seconds a claimed row is kept from other deliverers (more than --timeout).",
)
@unit_of_work
def webhooks_deliver(
    once: bool, interval: float, batch: int, workers: int, timeout: float, lease: float
) -> None:
    """Send due webhook deliveries, with retries; loop until SIGTERM or SIGINT unless --once.

    Several deliverers may run at once, on one host or many: each claims rows
    for a lease, so each row is sent by one of them.
    """
    if lease <= timeout:
        raise click.BadParameter("must be longer than --timeout", param_hint="--lease")
    # Claims and results are short transactions of their own; none is open during a POST.
    transactions, clock = runtime().unit_of_work, runtime().clock
    keyring, policy = runtime().keyring, svc.url_policy(runtime().settings)

    def deliverer(stop: Callable[[], bool] | None = None) -> svc.Deliverer:
        return svc.Deliverer(
            transactions,
            clock=clock,
            keyring=keyring,
            policy=policy,
            stop=stop,
            batch=batch,
            workers=workers,
            timeout=timeout,
            lease=timedelta(seconds=lease),
        )

    if once:
        with deliverer() as run:
            stats = run.drain()
        click.echo(f"Webhooks: {stats}.", err=True)
        return
    total = svc.DeliveryStats()
    with stop_signals() as stopped:
        click.echo(f"Delivering webhooks every {interval:g} s until stopped.", err=True)
        with deliverer(stopped) as loop:

            def step() -> None:
                nonlocal total
                stats = loop.poll()
                total += stats
                if stats.attempted:
                    click.echo(f"Webhooks: {stats}.", err=True)

            poll_until_stopped("Webhooks", interval, stopped, step, _purge)
            total += _finish(loop)
    click.echo(f"Stopped delivering webhooks ({total}).", err=True)


@webhooks_group.command("purge")
@unit_of_work
def webhooks_purge() -> None:
    """Delete delivered rows and their attempts older than UNSUBSVC_WEBHOOK_RETENTION_DAYS."""
    days = runtime().settings.webhook_retention_days
    stats = svc.PurgeStats(0, 0)
    while True:  # in chunks, each statement short; one transaction, committed at the end
        chunk = svc.purge_delivered(session(), now=now(), retention_days=days)
        stats += chunk
        if chunk.deliveries < svc.PURGE_CHUNK:
            break
    click.echo(f"Webhooks: {stats} (older than {days} days).", err=True)


def _purge() -> None:
    """Purge old delivered rows, a unit of work per chunk: no long transaction beside deliveries."""
    days = runtime().settings.webhook_retention_days
    stats = svc.PurgeStats(0, 0)
    try:
        while True:
            with runtime().unit_of_work() as work:
                chunk = svc.purge_delivered(work, now=runtime().now(), retention_days=days)
            stats += chunk
            if chunk.deliveries < svc.PURGE_CHUNK:
                break
    finally:
        if stats.deliveries:
            click.echo(f"Webhooks: {stats}.", err=True)


def _finish(deliverer: svc.Deliverer) -> svc.DeliveryStats:
    """Wait for the rows being sent; a database error then is reported, not raised."""
    try:
        return deliverer.close()
    except SQLAlchemyError as exc:
        click.echo(f"Webhooks: database error while stopping: {first_line(exc)}", err=True)
        return svc.DeliveryStats()


def spawn_deliverer(interval: float) -> subprocess.Popen[bytes]:
    """Start ``unsubsvc webhooks deliver --interval N`` as a child that dies with this process."""
    return background.spawn_deliverer("webhooks", interval)


def stop_deliverer(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """Stop a deliverer with SIGTERM, or kill it after ``timeout`` seconds; return its exit code."""
    return stop_child(process, timeout)


COMMANDS: tuple[click.Command, ...] = (webhooks_group,)
