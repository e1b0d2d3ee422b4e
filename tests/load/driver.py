"""A bounded load client for one-click POSTs, and a schedule of faults to run under it.

Each token is posted until it gets a 200, by one of 16 client threads at a
time, alternating between the servers (as a load balancer would move a retry
to a healthy backend). Connection refused or reset and 503 are what a killed
server or a restarting database may answer, and are retried; every answer and
every transport error of every attempt is recorded for the test to judge.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

ONE_CLICK = b"List-Unsubscribe=One-Click"
CONCURRENCY = 16
#: Seconds one attempt may take before it counts as a hang.
REQUEST_TIMEOUT = 10.0
#: Transport errors a killed server causes: worth a retry, and not a server fault.
#: Answers a server under these faults may give: done, or "database unavailable, retry".
EXPECTED_STATUSES = (200, 503)
#: Unexpected answers (a 500, a timeout) after which the run stops early.
MAX_UNEXPECTED = 50
RETRIED_ERRORS = (
    "ConnectionRefusedError",
    "ConnectionResetError",
    "RemoteDisconnected",
    "BrokenPipeError",
)


@dataclass
class Fault:
    """Something done to the system once ``after`` of the tokens are finished."""

    name: str
    after: float
    action: Callable[[], None]
    #: Tokens finished when the fault began and when it was over.
    began_at: int | None = None
    ended_at: int | None = None


@dataclass
class Run:
    """What happened: every attempt's outcome (an HTTP status or an exception name) per token."""

    attempts: dict[str, list[int | str]]
    faults: list[Fault]
    seconds: float
    fault_errors: list[BaseException] = field(default_factory=list)
    #: Why the client stopped early, if it did.
    aborted: str | None = None

    def statuses(self) -> Counter[int | str]:
        return Counter(outcome for outcomes in self.attempts.values() for outcome in outcomes)

    def succeeded(self) -> set[str]:
        return {token for token, outcomes in self.attempts.items() if 200 in outcomes}


def post_once(base_url: str, token: str) -> int | str:
    """POST the one-click body for ``token``; return the status, or the transport error's name."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
    try:
        conn.request(
            "POST",
            f"/u/{token}",
            body=ONE_CLICK,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def run_load(
    servers: Sequence[str],
    tokens: Sequence[str],
    faults: Sequence[Fault],
    *,
    rate: float,
    deadline: float,
) -> Run:
    """Post every token (at most ``rate`` new tokens a second), running ``faults`` on the way.

    Nothing waits past ``deadline`` seconds from the start: a token still failing
    then is left with the outcomes it had, and the test reports it.
    """
    attempts: dict[str, list[int | str]] = {token: [] for token in tokens}
    finished = 0
    unexpected = 0
    abort = threading.Event()
    progress = threading.Condition()
    started = time.monotonic()
    stop_at = started + deadline
    fault_errors: list[BaseException] = []

    def note(outcome: int | str) -> None:
        """Count an answer that should never come; give up once there are many."""
        nonlocal unexpected
        if outcome in EXPECTED_STATUSES or outcome in RETRIED_ERRORS:
            return
        with progress:
            unexpected += 1
            if unexpected >= MAX_UNEXPECTED:
                abort.set()  # a broken build fails in seconds, not at the deadline
                progress.notify_all()

    def send(index: int) -> None:
        nonlocal finished
        token = tokens[index]
        # Paced, so the run lasts long enough for the faults to land in its middle.
        abort.wait(max(0.0, started + index / rate - time.monotonic()))
        attempt = 0
        while time.monotonic() < stop_at and not abort.is_set():
            outcome = post_once(servers[(index + attempt) % len(servers)], token)
            attempts[token].append(outcome)
            if outcome == 200:
                break
            note(outcome)
            attempt += 1
            abort.wait(min(0.05 * 2**attempt, 1.0))
        with progress:
            finished += 1
            progress.notify_all()

    def due(share: float) -> bool:
        return abort.is_set() or finished >= share * len(tokens)

    def inject() -> None:
        for fault in faults:
            with progress:
                progress.wait_for(
                    partial(due, fault.after), timeout=max(0.0, stop_at - time.monotonic())
                )
                if abort.is_set() or finished < fault.after * len(tokens):
                    return  # the run is over or broken: the test reports the fault as not run
                fault.began_at = finished
            try:
                fault.action()
            except BaseException as exc:  # reported by the test, after the load is drained
                fault_errors.append(exc)
                return
            with progress:
                fault.ended_at = finished

    injector = threading.Thread(target=inject, name="faults", daemon=True)
    injector.start()
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="client") as pool:
        for future in [pool.submit(send, i) for i in range(len(tokens))]:
            future.result()
    with progress:
        abort_reason = f"gave up after {unexpected} unexpected answers" if abort.is_set() else None
        progress.notify_all()
    injector.join(timeout=max(1.0, stop_at - time.monotonic()))
    return Run(attempts, list(faults), time.monotonic() - started, fault_errors, abort_reason)
