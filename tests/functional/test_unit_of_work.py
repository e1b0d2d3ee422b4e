"""One unit of work per request: committed before the answer, or rolled back as a whole.

Each test lets a service do its writes, then makes something fail after it in
the same request: the database must look as if the request never came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from tests.conftest import ApiClient
from tests.helpers import (
    count_events,
    links_for,
    make_list,
    path_of,
    snapshot,
    status,
)
from unsubsvc.services import preferences, senders, unsubscribe
from unsubsvc.services.events import Outcome

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


class AfterTheService(Exception):
    """Raised after a service has written its changes, before the request ends."""


def failing_after(real: Callable[..., Outcome]) -> tuple[Callable[..., Outcome], list[Outcome]]:
    """Wrap a service: run it (its writes are flushed), then raise."""
    seen: list[Outcome] = []

    def wrapper(*args: Any, **kwargs: Any) -> Outcome:
        outcome = real(*args, **kwargs)
        seen.append(outcome)
        raise AfterTheService

    return wrapper, seen


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app that answers errors as in production (tests otherwise re-raise them)."""
    return make_app({"PROPAGATE_EXCEPTIONS": False})


@pytest.fixture
def ann(app: Flask) -> str:
    """Ann's one-click URI on the list ``news``."""
    make_list(app)
    return path_of(links_for(app).unsubscribe_url)


def test_one_click_post_failing_after_the_change_keeps_nothing(
    app: Flask, ann: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(app)
    wrapper, seen = failing_after(unsubscribe.unsubscribe)
    monkeypatch.setattr(unsubscribe, "unsubscribe", wrapper)

    response = app.test_client().post(ann, data=ONE_CLICK)

    assert response.status_code == 500
    assert [o.changed for o in seen] == [True]  # the service did write
    assert snapshot(app) == before
    assert status(app)["subscribed"] is True


def test_preference_save_failing_after_the_change_keeps_nothing(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_list(app)
    client = app.test_client()
    path = path_of(links_for(app).preferences_url)
    before = snapshot(app)
    wrapper, seen = failing_after(preferences.set_frequency)
    monkeypatch.setattr(preferences, "set_frequency", wrapper)

    response = client.post(
        path, data={"frequency": "monthly", "topics": ["product", "events"], "pause": "none"}
    )

    assert response.status_code == 500
    assert [o.changed for o in seen] == [True]
    assert snapshot(app) == before
    assert status(app)["frequency"] == "weekly"


def test_api_call_failing_after_the_change_keeps_nothing(
    app: Flask, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_list(app)
    links_for(app)  # Ann is known, so the call's only write is her unsubscribe
    before = snapshot(app)
    wrapper, seen = failing_after(senders.unsubscribe_address)
    monkeypatch.setattr(senders, "unsubscribe_address", wrapper)

    response = api.post("/lists/news/recipients/ann@example.com/unsubscribe", {})

    assert response.status_code == 500
    assert response.get_json() == {
        "error": "Something went wrong on our side. Nothing was changed."
    }
    assert [o.changed for o in seen] == [True]
    assert snapshot(app) == before


@contextmanager
def failing_commits() -> Iterator[None]:
    """Make every commit fail, as a database that goes away at that moment would."""

    def fail(session: Session) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    sa.event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        sa.event.remove(Session, "before_commit", fail)


def test_a_commit_that_fails_is_never_answered_200(app: Flask, ann: str) -> None:
    """The one-click answer comes after the commit: a lost change is an error, not a 200."""
    with failing_commits():
        response = app.test_client().post(ann, data=ONE_CLICK)
    assert response.status_code >= 500
    assert count_events(app) == 0
    assert status(app)["subscribed"] is True
