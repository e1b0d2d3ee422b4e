"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL.

Concurrent requests for the same new address or the same unsubscribe must not
fail on a unique constraint nor create a second row: the database decides who
inserted, and the row count says whether it was us.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
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
    dialect = session.get_bind().dialect.name
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {dialect}")  # pragma: no cover


def insert_ignore(
    session: Session, model: type[Base], values: dict[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert one row unless it would clash on ``conflict_on``; return whether it was inserted."""
    table = cast(Table, model.__table__)
    stmt = _insert(session, model).values(**values)
    # RETURNING says reliably whether a row went in; rowcount is not reported by every driver.
    stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_on))
    result = session.execute(stmt.returning(*table.primary_key.columns))
    return result.first() is not None


def increment(
    session: Session, model: type[Base], key: dict[str, Any], amounts: dict[str, int]
) -> None:
    """Add ``amounts`` to a counter row, creating it (from zero) if it is not there yet."""
    table = cast(Table, model.__table__)
    stmt = _insert(session, model).values(**key, **amounts)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={column: table.c[column] + stmt.excluded[column] for column in amounts},
    )
    session.execute(stmt)
