"""Writers of one SQLite database take turns at a gate, across threads and processes.

SQLite lets one writer in at a time; the others wait in its busy handler,
which sleeps 1, 2, 5 … up to 100 ms between tries
(https://www.sqlite.org/c3ref/busy_timeout.html, sqliteDefaultBusyCallback),
so under a burst a waiter keeps sleeping long after the lock is free and one
can starve. Here a waiter queues on a thread lock inside its process (woken at
once by the kernel) and on an advisory ``flock`` of a file beside the database
across processes, polled every 0.2–2 ms. The database's own lock then finds no
one waiting; busy_timeout stays as the backstop for other programs.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the thread lock alone
    fcntl = None  # type: ignore[assignment]

_FIRST_PAUSE = 0.0002
_LONGEST_PAUSE = 0.002


class WriterGate:
    """A turn to write to one SQLite file: ``acquire(timeout)`` then ``release()``."""

    def __init__(self, database: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = None if database is None else database.with_name(database.name + ".writers")
        self._fd: int | None = None
        self._pid = 0

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the turn; say whether it was granted."""
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        if self._path is None or fcntl is None:
            return True
        fd = self._file(self._path)
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._threads.release()
                    return False
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)

    def release(self) -> None:
        """Give the turn to the next writer."""
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _file(self, path: Path) -> int:
        # One descriptor per process, opened after any fork: a descriptor inherited from
        # the parent shares its lock with the parent and every sibling.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd
