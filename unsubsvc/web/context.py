"""Per-app runtime and per-request unit of work: the views' session, minter and clock.

A request opens at most one session, on first use. After the view has made
its answer, the session is committed if the answer is a success (below 400)
and rolled back otherwise, before the answer is sent: an acknowledged
unsubscribe is on disk, and a request that failed half-way leaves nothing
behind. A failed commit turns into an error answer, never a false 200.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from unsubsvc.core.action_links import ActionLinks
from unsubsvc.db.engine import SQLITE_READ_ONLY, is_unavailable
from unsubsvc.db.writer_gate import WriterGate
from unsubsvc.runtime import Runtime
from unsubsvc.services import outbox
from unsubsvc.services.links import LinkMinter
from unsubsvc.settings import Settings

_RUNTIME = "unsubsvc.runtime"
_SESSION = "unsubsvc_session"
_WRITING = "unsubsvc_sqlite_writer"
_ACTION_LINKS = "unsubsvc.action_links"

log = logging.getLogger(__name__)

#: Threads sending the mail of requests that have ended (``wait_for_mail`` joins them).
_MAIL_THREADS: set[threading.Thread] = set()
_MAIL_LOCK = threading.Lock()


def install(app: Flask, runtime: Runtime) -> None:
    """Attach ``runtime`` to ``app`` and commit or roll back each request's session."""
    app.extensions[_RUNTIME] = runtime
    app.after_request(_finish_unit_of_work)
    app.teardown_appcontext(_close_session)


def runtime_of(app: Flask) -> Runtime:
    """Return the runtime an app was built with."""
    value: Runtime = app.extensions[_RUNTIME]
    return value


def runtime() -> Runtime:
    """Return the current app's runtime."""
    return runtime_of(current_app)


def settings() -> Settings:
    """Return the current app's settings."""
    return runtime().settings


def session() -> Session:
    """Return this request's session, opening it on first use."""
    current: Session | None = g.get(_SESSION)
    if current is None:
        built = runtime()
        current = built.session_factory()
        setattr(g, _SESSION, current)
        if current.get_bind().dialect.name == "sqlite":
            if _reads_only():
                # Pages that only read need not queue for SQLite's write lock (see db.engine).
                current.connection(execution_options={SQLITE_READ_ONLY: True})
            elif built.sqlite_writers.acquire(timeout=built.settings.database_timeout):
                setattr(g, _WRITING, built.sqlite_writers)
            else:
                raise PoolTimeout("other writers held the SQLite database too long")
    return current


#: Methods that never change anything (RFC 9110 §9.2.1).
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _reads_only() -> bool:
    """Say whether this request's transaction only reads.

    Safe methods outside the API only read. The API notes a key's last use
    (at most once a minute) even on GET, so its transactions may write.
    """
    return request.method in _SAFE_METHODS and not request.path.startswith("/api/")


def minter() -> LinkMinter:
    """Return the current app's link minter."""
    return runtime().minter


def action_links() -> ActionLinks:
    """Return the current app's signer of short-lived links (undo, confirm, sign-in), built once."""
    links: ActionLinks | None = current_app.extensions.get(_ACTION_LINKS)
    if links is None:
        links = ActionLinks(runtime().keyring)
        current_app.extensions[_ACTION_LINKS] = links
    return links


def now() -> datetime:
    """Return the current app's notion of now (tests inject a fixed clock)."""
    return runtime().now()


def _finish_unit_of_work(response: Response) -> Response:
    """Commit a successful request's changes, roll back anything else, before answering."""
    current: Session | None = g.get(_SESSION)
    if current is not None:
        if response.status_code < 400:
            current.commit()  # raising here answers 503 (or 500): never a 200 for a lost change
            queued = outbox.take_queued(current)
            if queued:
                _send_soon(runtime(), queued)
        else:
            try:
                current.rollback()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # The database went away: nothing of this request was committed; the pool
                # drops the connection and the answer (already an error) stands.
    return response


def _send_soon(built: Runtime, mail_ids: list[int]) -> None:
    """Send the mail this request queued from a short-lived thread, after the commit.

    Best effort: the answer does not wait for it, and whatever is not sent
    (no SMTP server configured, a failure) stays in the outbox for the
    deliverer (``unsubsvc outbox deliver``, ``serve --deliver-mail``) to retry.
    """
    if built.settings.smtp_url is None:
        outbox.warn_not_configured()
        return

    @contextmanager
    def turn() -> Iterator[Session]:
        # Requests of this process write to SQLite in turns (db.writer_gate): so does this thread.
        gated = built.engine.dialect.name == "sqlite"
        if gated and not built.sqlite_writers.acquire(timeout=built.settings.database_timeout):
            raise PoolTimeout("other writers held the SQLite database too long")
        try:
            with built.session_factory() as work:
                yield work
        finally:
            if gated:
                built.sqlite_writers.release()

    def send() -> None:
        try:
            outbox.deliver_due(turn, built.settings, now=built.now(), ids=mail_ids)
        except Exception:
            log.exception("sending queued mail failed; the outbox deliverer retries it")
        finally:
            with _MAIL_LOCK:
                _MAIL_THREADS.discard(threading.current_thread())

    thread = threading.Thread(target=send, name="unsubsvc-mail", daemon=True)
    with _MAIL_LOCK:
        _MAIL_THREADS.add(thread)
    thread.start()


def wait_for_mail(timeout: float = 30.0) -> None:
    """Wait for the threads sending requests' mail to end (tests, and before a process exits)."""
    with _MAIL_LOCK:
        running = list(_MAIL_THREADS)
    for thread in running:
        thread.join(timeout)


def _close_session(_exc: BaseException | None) -> None:
    current: Session | None = g.pop(_SESSION, None)
    try:
        if current is not None:
            try:
                current.close()  # rolls back whatever was not committed
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
    finally:
        writers: WriterGate | None = g.pop(_WRITING, None)
        if writers is not None:
            writers.release()
