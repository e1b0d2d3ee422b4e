"""SQLite writers take turns at the gate: one at a time across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from unsubsvc.db.writer_gate import WriterGate


def _hold(path: str, held: threading.Event | None, seconds: float, ready: object) -> None:
    gate = WriterGate(Path(path))
    assert gate.acquire(timeout=1)
    ready.set()  # type: ignore[attr-defined]
    time.sleep(seconds)
    gate.release()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_writer_in_another_process_holds_the_gate(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    # Held for 3 s: long enough that a slow, busy machine still finds it taken.
    other = context.Process(target=_hold, args=(str(database), None, 3.0, ready))
    other.start()
    try:
        assert ready.wait(timeout=5)
        gate = WriterGate(database)
        started = time.monotonic()
        assert gate.acquire(timeout=0.2) is False  # the other process writes
        assert 0.15 < time.monotonic() - started < 2.0  # the timeout is honoured
        assert gate.acquire(timeout=5) is True  # granted once it lets go
        gate.release()
    finally:
        other.join(timeout=5)


def test_threads_write_one_at_a_time(tmp_path: Path) -> None:
    gate = WriterGate(tmp_path / "db.sqlite")
    inside = 0
    most = 0
    lock = threading.Lock()

    def writer() -> None:
        nonlocal inside, most
        for _ in range(50):
            assert gate.acquire(timeout=5)
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.0005)
            with lock:
                inside -= 1
            gate.release()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_a_gate_without_a_file_still_orders_threads() -> None:
    gate = WriterGate(None)
    assert gate.acquire(timeout=0.1)
    assert gate.acquire(timeout=0.1) is False
    gate.release()
    assert gate.acquire(timeout=0.1)
    gate.release()
