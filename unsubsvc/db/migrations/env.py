"""Alembic environment: migrate the connection ``unsubsvc.db.migrate`` hands in.

Run through ``unsubsvc init`` (or ``unsubsvc.db.migrate.upgrade``), which puts an
open connection into ``config.attributes["connection"]``; no Flask app is needed.
"""

from alembic import context

from unsubsvc.db.base import Base, UTCDateTime

config = context.config


def render_item(type_, obj, autogen_context):
    """Render unsubsvc's UTC datetime as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online():
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_item=render_item,
        # SQLite alters tables by copying them; batch mode does that for it.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("unsubsvc migrations run online only: use 'unsubsvc init'")
run_migrations_online()
