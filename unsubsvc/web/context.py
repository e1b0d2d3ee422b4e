"""Per-app runtime and per-request unit of work: the views' session, minter and clock.

A request opens at most one session, on first use. After the view has made
its answer, the session is committed if the answer is a success (below 400)
and rolled back otherwise, before the answer is sent: an acknowledged
unsubscribe is on disk, and a request that failed half-way leaves nothing
behind. A failed commit turns into an error answer, never a false 200.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from unsubsvc.db.engine import SQLITE_READ_ONLY, is_unavailable
from unsubsvc.db.writer_gate import WriterGate
from unsubsvc.runtime import Runtime
from unsubsvc.services.links import LinkMinter
from unsubsvc.settings import Settings

_RUNTIME = "unsubsvc.runtime"
_SESSION = "unsubsvc_session"
_WRITING = "unsubsvc_sqlite_writer"


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


def now() -> datetime:
    """Return the current app's notion of now (tests inject a fixed clock)."""
    return runtime().now()


def _finish_unit_of_work(response: Response) -> Response:
    """Commit a successful request's changes, roll back anything else, before answering."""
    current: Session | None = g.get(_SESSION)
    if current is not None:
        if response.status_code < 400:
            current.commit()  # raising here answers 503 (or 500): never a 200 for a lost change
        else:
            try:
                current.rollback()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # The database went away: nothing of this request was committed; the pool
                # drops the connection and the answer (already an error) stands.
    return response


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
