"""Engines: one per process, configured the same for the server, the CLI and the tests."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from unsubsvc.core.errors import UnsubsvcError

#: libpq's connect_timeout counts whole seconds and treats anything under 2 as 2.
MIN_CONNECT_TIMEOUT = 2

#: Errors that mean "the database cannot serve us now" (down, unreachable, too slow,
#: locked), as opposed to a bug: they answer 503 with Retry-After, not 500.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
)

#: Execution option telling SQLite a transaction only reads: BEGIN DEFERRED (``_sqlite_begin``).
SQLITE_READ_ONLY = "unsubsvc_sqlite_read_only"


class DatabaseUrlError(UnsubsvcError):
    """UNSUBSVC_DATABASE_URL is not a URL this build can use."""


def is_unavailable(exc: BaseException) -> bool:
    """Return whether ``exc`` means the database is down, unreachable, locked or too slow."""
    return isinstance(exc, UNAVAILABLE)


def engine_options(url: str, timeout: float) -> dict[str, Any]:
    """Return engine options: check pooled connections, and wait at most ``timeout`` seconds.

    A server that is down, drops packets or accepts connections and never
    answers must cost a request seconds, not minutes: libpq's connect_timeout
    bounds connecting, the pool's timeout bounds waiting for a connection, and
    PostgreSQL's statement_timeout (and lock_timeout) bound each statement.
    """
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": timeout}
    if url.startswith("postgresql"):
        milliseconds = int(timeout * 1000)
        limits = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
        given = make_url(url).query.get("options")  # the URL's own, e.g. a search_path
        if isinstance(given, tuple):
            given = " ".join(given)
        options["connect_args"] = {
            "connect_timeout": max(MIN_CONNECT_TIMEOUT, math.ceil(timeout)),
            # Ours first: a statement_timeout in the URL's options wins over the default.
            "options": f"{limits} {given}" if given else limits,
        }
    return options


def make_engine(url: str, *, timeout: float = 2.0) -> Engine:
    """Create the engine for ``url``, or raise DatabaseUrlError saying what is wrong with it.

    ``timeout`` is how many seconds a statement, lock or connection may take.
    """
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise DatabaseUrlError(
            f"UNSUBSVC_DATABASE_URL must be a sqlite:/// or postgresql:// URL, not {_scheme(url)!r}"
        )
    try:
        engine = create_engine(url, **engine_options(url, timeout))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseUrlError(f"UNSUBSVC_DATABASE_URL cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        busy = int(timeout * 1000)
        event.listen(engine, "connect", lambda conn, _record: _sqlite_pragmas(conn, busy))
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def unlimited_statements(connection: Connection) -> None:
    """Lift the statement timeout for a long job (a migration, a bulk load) on this transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")


def _scheme(url: str) -> str:
    return url.split(":", 1)[0] if ":" in url else url


def _sqlite_pragmas(dbapi_connection: Any, busy_ms: int) -> None:
    """Make SQLite enforce foreign keys and let readers and one writer work at once.

    WAL with synchronous=NORMAL: a commit is in the WAL file before it returns,
    so an acknowledged unsubscribe survives a crash of the process; after a
    power loss or OS crash the last commits may be rolled back, never corrupted
    (https://www.sqlite.org/pragma.html#pragma_synchronous, "WAL mode is
    always consistent with synchronous=NORMAL, but WAL mode does lose
    durability"). PostgreSQL, the production store, keeps synchronous_commit on.
    The driver's own transaction handling is switched off (isolation_level None)
    so that ``_sqlite_begin`` decides how each transaction begins.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Begin a transaction: BEGIN IMMEDIATE, unless the caller said it only reads.

    A deferred transaction that reads and then writes cannot wait for the write
    lock: if another connection committed since its read, SQLite answers
    SQLITE_BUSY at once without calling the busy handler
    (https://www.sqlite.org/isolation.html, https://www.sqlite.org/lang_transaction.html).
    Taking the write lock up front makes writers queue for busy_timeout instead;
    readers (WAL) never wait, so pages that only read say so and begin deferred.
    """
    read_only = connection.get_execution_options().get(SQLITE_READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
