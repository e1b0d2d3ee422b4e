"""Background children of the CLI (mail and webhook deliverers): stop signals, sleeps, exits."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


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


def die_with_parent() -> None:
    """In a child before exec: have the kernel send SIGTERM when the parent dies (Linux).

    A server killed with SIGKILL runs no cleanup; without this its deliverer
    would go on alone (prctl(2) PR_SET_PDEATHSIG). Elsewhere, nothing.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Stop a child with SIGTERM, or kill it after ``timeout`` seconds; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
