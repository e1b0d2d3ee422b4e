"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL.

Concurrent requests for the same new address or the same unsubscribe must not
fail on a unique constraint nor create a second row: the database decides who
inserted, and the row count says whether it was us.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from unsubsvc.db.base import Base


def insert_ignore_many(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_on: Sequence[str]
) -> None:
    """Insert many rows in one statement, skipping those that clash on ``conflict_on``."""
    if not rows:
        return
    session.execute(
        _insert(session, model)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=list(conflict_on))
    )


def _insert(session: Session, model: type[Base]) -> Any:
    return _insert_for(session.get_bind().dialect.name, cast(Table, model.__table__))


def insert_ignore(
    session: Session, model: type[Base], values: dict[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert one row unless it would clash on ``conflict_on``; return whether it was inserted."""
    dialect = session.get_bind().dialect.name
    stmt = _insert_ignore_statement(dialect, model, tuple(sorted(values)), tuple(conflict_on))
    # RETURNING says reliably whether a row went in; rowcount is not reported by every driver.
    return _core(session).execute(stmt, values).first() is not None


def increment(
    session: Session, model: type[Base], key: dict[str, Any], amounts: dict[str, int]
) -> None:
    """Add ``amounts`` to a counter row, creating it (from zero) if it is not there yet."""
    dialect = session.get_bind().dialect.name
    stmt = _increment_statement(dialect, model, tuple(key), tuple(sorted(amounts)))
    _core(session).execute(stmt, {**key, **amounts})


def _core(session: Session) -> Connection:
    """Return the session's connection, pending ORM changes flushed first.

    These statements run on every unsubscribe: executing them on the connection
    skips the ORM's per-statement work (they load no objects), and the flush
    keeps the order of writes (and so of row locks) what the caller wrote.
    """
    session.flush()
    return session.connection()


# These run on every unsubscribe: build each statement once per shape, so a call
# pays only for its parameters (SQLAlchemy then reuses the compiled SQL as well).


@lru_cache(maxsize=128)
def _insert_ignore_statement(
    dialect: str, model: type[Base], columns: tuple[str, ...], conflict_on: tuple[str, ...]
) -> Any:
    table = cast(Table, model.__table__)
    stmt = _insert_for(dialect, table).values({c: bindparam(c) for c in columns})
    stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_on))
    return stmt.returning(*table.primary_key.columns)


@lru_cache(maxsize=128)
def _increment_statement(
    dialect: str, model: type[Base], key: tuple[str, ...], amounts: tuple[str, ...]
) -> Any:
    table = cast(Table, model.__table__)
    stmt = _insert_for(dialect, table).values({c: bindparam(c) for c in (*key, *amounts)})
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={column: table.c[column] + stmt.excluded[column] for column in amounts},
    )


def _insert_for(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {dialect}")  # pragma: no cover
