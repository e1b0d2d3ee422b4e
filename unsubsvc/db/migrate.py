"""Bring a database's schema up to date with the migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from unsubsvc.db.engine import unlimited_statements

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Return an Alembic configuration pointing at unsubsvc's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration the database does not have yet, in one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        unlimited_statements(connection)  # an index on a large table takes its time
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
