"""Flask extensions, created unbound here and bound in ``create_app``."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from unsubsvc.db.base import Base

# Models subclass the plain declarative Base (no Flask import); Flask-SQLAlchemy
# manages sessions and engines over the same metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
csrf = CSRFProtect()


def session() -> Session:
    """Return this request's (or CLI command's) SQLAlchemy session, for the services."""
    return db.session()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Make SQLite enforce foreign keys and let readers and one writer work at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
