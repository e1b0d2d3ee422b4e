"""Background children of the CLI (mail and webhook deliverers): their loop, stop signals, exits."""

from __future__ import annotations

import ctypes
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

#: Seconds between purges of old rows while a deliverer loops.
PURGE_INTERVAL = 3600.0


@contextmanager
def stop_signals() -> Iterator[Callable[[], bool]]:
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


def sleep_unless_stopped(seconds: float, stopped: Callable[[], bool]) -> None:
    """Sleep up to ``seconds``, in short steps so a stop request is seen promptly."""
    deadline = time.monotonic() + seconds
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def poll_until_stopped(
    label: str,
    interval: float,
    stopped: Callable[[], bool],
    step: Callable[[], None],
    purge: Callable[[], None],
) -> None:
    """Run ``step`` every ``interval`` seconds, and ``purge`` every PURGE_INTERVAL, until stopped.

    A database error in either is reported on stderr and tried again next time:
    the database may be restarting, and a deliverer outlives that.
    """
    next_purge = time.monotonic()
    while not stopped():
        _reporting_database_errors(label, step)
        if time.monotonic() >= next_purge:
            next_purge = time.monotonic() + PURGE_INTERVAL
            _reporting_database_errors(label, purge)
        sleep_unless_stopped(interval, stopped)


def _reporting_database_errors(label: str, action: Callable[[], None]) -> None:
    try:
        action()
    except SQLAlchemyError as exc:
        click.echo(f"{label}: database error, will retry: {first_line(exc)}", err=True)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message: drivers add SQL and parameters after it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def die_with_parent() -> None:
    """In a child before exec: have the kernel send SIGTERM when the parent dies (Linux).

    A server killed with SIGKILL runs no cleanup; without this its deliverer
    would go on alone (prctl(2) PR_SET_PDEATHSIG). Elsewhere, nothing.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def spawn_deliverer(group: str, interval: float) -> subprocess.Popen[bytes]:
    """Start ``unsubsvc <group> deliver --interval N`` as a child that dies with this process."""
    command = [sys.executable, "-m", "unsubsvc.cli", group, "deliver", "--interval"]
    return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [*command, repr(float(interval))],
        env=dict(os.environ),
        preexec_fn=die_with_parent,  # noqa: PLW1509 - async-signal-safe enough: one prctl call
    )


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Stop a child with SIGTERM, or kill it after ``timeout`` seconds; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
