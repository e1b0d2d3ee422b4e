"""``unsubsvc init`` builds the schema from the migrations, and the models match it."""

from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from tests.helpers import runner_for
from unsubsvc.db.base import Base
from unsubsvc.web.context import runtime_of


def test_init_creates_the_schema_and_is_safe_to_repeat(make_app: Callable[..., Flask]) -> None:
    app = make_app(tables=False)
    runner = runner_for(app)

    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0, second.output

    created = runner.invoke(args=["list", "create", "news", "--topic", "product"])
    assert created.exit_code == 0, created.output

    with runtime_of(app).engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
