"""Engines: one per process, configured the same for the server, the CLI and the tests."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from unsubsvc.core.errors import UnsubsvcError

#: Seconds to wait for a PostgreSQL connection before giving up.
CONNECT_TIMEOUT = 10


class DatabaseUrlError(UnsubsvcError):
    """UNSUBSVC_DATABASE_URL is not a URL this build can use."""


def engine_options(url: str) -> dict[str, Any]:
    """Return engine options: check pooled connections, and never wait forever to connect."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # A server that drops packets must not hang a request (or an MTA pipe) for minutes.
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return options


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``, or raise DatabaseUrlError saying what is wrong with it."""
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise DatabaseUrlError(
            f"UNSUBSVC_DATABASE_URL must be a sqlite:/// or postgresql:// URL, not {_scheme(url)!r}"
        )
    try:
        engine = create_engine(url, **engine_options(url))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseUrlError(f"UNSUBSVC_DATABASE_URL cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _scheme(url: str) -> str:
    return url.split(":", 1)[0] if ":" in url else url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Make SQLite enforce foreign keys and let readers and one writer work at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
