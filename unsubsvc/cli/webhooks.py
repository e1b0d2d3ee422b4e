"""Outgoing webhooks: ``webhooks add``, ``list``, ``disable`` and ``deliver``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click
from sqlalchemy.exc import SQLAlchemyError

from unsubsvc.cli.common import now, runtime, session, unit_of_work
from unsubsvc.services import webhooks as svc

#: Seconds between delivery runs when ``deliver`` loops (and under ``serve --deliver-webhooks``).
DEFAULT_INTERVAL = 5.0
#: Seconds a stopped deliverer gets to finish its current row before it is killed.
STOP_TIMEOUT = 15.0


@click.group("webhooks")
def webhooks_group() -> None:
    """Tell HTTP endpoints of every change, signed (outgoing webhooks)."""


@webhooks_group.command("add")
@click.argument("url")
@unit_of_work
def webhooks_add(url: str) -> None:
    """Send every future change to URL; print its id and signing secret (shown only once)."""
    webhook, secret = svc.add_endpoint(session(), url, now=now())
    click.echo(json.dumps({"id": webhook.id, "url": webhook.url, "secret": secret}))
    click.echo(
        "Store the secret now: it is not shown again. Receivers check the "
        "Unsubsvc-Signature header with it.",
        err=True,
    )


@webhooks_group.command("list")
@unit_of_work
def webhooks_list() -> None:
    """Print every endpoint as a JSON line: id, url, active and pending deliveries."""
    for endpoint in svc.list_endpoints(session()):
        click.echo(
            json.dumps(
                {
                    "id": endpoint.id,
                    "url": endpoint.url,
                    "active": endpoint.active,
                    "pending": endpoint.pending,
                }
            )
        )


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
    default=100,
    show_default=True,
    help="Outbox rows read per query.",
)
@unit_of_work
def webhooks_deliver(once: bool, interval: float, batch: int) -> None:
    """Send due webhook deliveries, with retries; loop until SIGTERM or SIGINT unless --once."""
    # Each row is its own transaction (a crash loses at most the row being sent).
    transactions, clock = runtime().unit_of_work, runtime().clock
    if once:
        stats = svc.deliver_due(transactions, now=clock, batch=batch)
        click.echo(f"Webhooks: {stats}.", err=True)
        return
    total = svc.DeliveryStats()
    with _stop_signals() as stopped:
        click.echo(f"Delivering webhooks every {interval:g} s until stopped.", err=True)
        while not stopped():
            try:
                stats = svc.deliver_due(transactions, now=clock, batch=batch, stop=stopped)
            except SQLAlchemyError as exc:
                # The database may be restarting: report it and try again next time.
                click.echo(f"Webhooks: database error, will retry: {_first_line(exc)}", err=True)
            else:
                total += stats
                if stats.attempted:
                    click.echo(f"Webhooks: {stats}.", err=True)
            _sleep(interval, stopped)
    click.echo(f"Stopped delivering webhooks ({total}).", err=True)


@contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """Turn SIGTERM and SIGINT into a flag, so a row being sent is finished and recorded."""
    # Only set() runs in the handler and only is_set() (lock-free) elsewhere: never wait().
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():  # signals need the main thread
        yield stop.is_set
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sleep(seconds: float, stopped: Callable[[], bool]) -> None:
    """Sleep up to ``seconds``, in short steps so a stop request is seen promptly."""
    deadline = time.monotonic() + seconds
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def spawn_deliverer(interval: float) -> subprocess.Popen[bytes]:
    """Start ``unsubsvc webhooks deliver --interval N`` as a child process with this environment."""
    command = [
        sys.executable,
        "-m",
        "unsubsvc.cli",
        "webhooks",
        "deliver",
        "--interval",
        repr(float(interval)),
    ]
    return subprocess.Popen(command, env=dict(os.environ))  # noqa: S603 - fixed argv, no shell


def stop_deliverer(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """Stop a deliverer with SIGTERM, or kill it after ``timeout`` seconds; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


COMMANDS: tuple[click.Command, ...] = (webhooks_group,)
