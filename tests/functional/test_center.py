"""The preference center through HTTP: each change stored once, in one transaction, with CSRF."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import FakeClock
from tests.helpers import (
    csrf_token,
    event_rows,
    links_for,
    make_list,
    path_of,
    snapshot,
    status,
    transaction,
)
from unsubsvc.db.models import MailingList, Subscriber, Subscription, SurveyResponse
from unsubsvc.services import preferences as prefs
from unsubsvc.services.events import Target
from unsubsvc.services.status import recipient_state


class Center:
    """A recipient's browser on the preference center (cookies kept, CSRF token read)."""

    def __init__(self, app: Flask, email: str = "Ann@Example.com") -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        links = links_for(app, email)
        self.path = path_of(links.preferences_url)
        self.landing = path_of(links.unsubscribe_url)

    def page(self) -> str:
        response = self.client.get(self.path)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def post(self, action: str, data: dict[str, Any], *, csrf: bool = True) -> TestResponse:
        if csrf:
            data = {**data, "csrf_token": csrf_token(self.page())}
        return self.client.post(f"{self.path}/{action}", data=data)


@pytest.fixture
def center(app: Flask) -> Center:
    make_list(app)
    return Center(app)


def test_page_names_the_list_and_the_sender(center: Center) -> None:
    page = center.page()
    assert "Your preferences for News from Example" in page
    assert "Unsubscribe from all mail from unsubsvc" in page
    # The stored choices are pre-selected: the default frequency, every topic.
    assert re.search(r'<input checked[^>]*value="weekly"', page)
    assert not re.search(r'<input checked[^>]*value="monthly"', page)
    assert re.search(r'<input checked[^>]*value="events"', page)


def test_downgrade_is_one_event_and_a_repeat_is_none(app: Flask, center: Center) -> None:
    response = center.post("frequency", {"frequency": "monthly"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(center.path)
    assert "you will get monthly mail" in center.page()
    assert status(app)["frequency"] == "monthly"

    center.post("frequency", {"frequency": "monthly"})

    (event,) = event_rows(app)
    assert (event.kind, event.channel) == ("frequency_change", "preference_center")
    assert event.detail == {"from": "weekly", "to": "monthly", "downgrade": True}
    assert event.campaign_id is not None


def test_topics_change_one_event_per_topic(app: Flask, center: Center) -> None:
    center.post("topics", {"topics": ["product"]})
    assert status(app)["topics"] == {"product": True, "events": False}
    center.post("topics", {"topics": ["product", "events"]})
    assert status(app)["topics"] == {"product": True, "events": True}
    assert [(e.kind, e.topic_id is not None) for e in event_rows(app)] == [
        ("unsubscribe", True),
        ("resubscribe", True),
    ]


def test_no_topics_ticked_opts_out_of_all_topics(app: Flask, center: Center) -> None:
    center.post("topics", {})
    assert status(app)["topics"] == {"product": False, "events": False}
    assert status(app)["subscribed"] is True
    assert len(event_rows(app)) == 2


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("frequency", {"frequency": "daily"}),
        ("frequency", {}),
        ("topics", {"topics": ["sports"]}),
        ("pause", {"duration": "10y"}),
        ("pause", {}),
        ("unsubscribe", {"scope": "everything"}),
        ("resubscribe", {"scope": "topic:sports"}),
        ("resubscribe", {"scope": "galaxy"}),
    ],
    ids=[
        "unknown-frequency",
        "no-frequency",
        "unknown-topic",
        "unknown-pause",
        "no-pause",
        "unknown-scope",
        "unknown-topic-scope",
        "bad-undo-scope",
    ],
)
def test_invalid_choice_is_400_and_changes_nothing(
    app: Flask, center: Center, action: str, data: dict[str, Any]
) -> None:
    center.page()
    before = snapshot(app)
    response = center.post(action, data)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert snapshot(app) == before


def test_pause_reads_as_paused_until_the_date_then_subscribed(
    app: Flask, center: Center, clock: FakeClock
) -> None:
    center.post("pause", {"duration": "1m"})
    until = clock.now + timedelta(days=30)
    assert status(app)["paused_until"] == until.isoformat()
    assert "Mail is paused until" in center.page()

    clock.now = until - timedelta(seconds=1)
    assert status(app)["paused_until"] == until.isoformat()

    clock.now = until
    state = status(app)
    assert state["paused_until"] is None
    assert state["subscribed"] is True
    assert "Mail is paused" not in center.page()
    assert [e.kind for e in event_rows(app)] == ["pause"]


def test_resume_ends_a_pause_now(app: Flask, center: Center) -> None:
    center.post("pause", {"duration": "3m"})
    response = center.post("resume", {})
    assert response.status_code == 303
    assert status(app)["paused_until"] is None
    assert [e.kind for e in event_rows(app)] == ["pause", "resume"]


def test_unsubscribe_from_the_list_then_undo(app: Flask, center: Center) -> None:
    response = center.post("unsubscribe", {"scope": "list"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You are unsubscribed" in page
    assert "Undo: resubscribe me" in page
    assert status(app)["subscribed"] is False

    undo = center.client.post(
        f"{center.path}/resubscribe", data={"scope": "list", "csrf_token": csrf_token(page)}
    )
    assert undo.status_code == 303
    assert status(app)["subscribed"] is True
    assert [(e.kind, e.channel) for e in event_rows(app)] == [
        ("unsubscribe", "preference_center"),
        ("resubscribe", "preference_center"),
    ]


def test_unsubscribe_from_everything_covers_every_list(app: Flask, center: Center) -> None:
    make_list(app, "offers", topics=(), frequencies=())
    links_for(app, "ann@example.com", list_name="offers")

    center.post("unsubscribe", {"scope": "all"})

    assert status(app, list_name="news")["subscribed"] is False
    assert status(app, list_name="offers")["subscribed"] is False
    (event,) = event_rows(app)
    assert (event.kind, event.detail) == ("unsubscribe", {"scope": "all"})
    # The other list's link shows the state, not a button.
    other = path_of(links_for(app, "ann@example.com", list_name="offers").unsubscribe_url)
    assert "any mail from unsubsvc" in center.client.get(other).get_data(as_text=True)

    center.post("resubscribe", {"scope": "all"})
    assert status(app, list_name="offers")["subscribed"] is True
    assert status(app, list_name="news")["subscribed"] is True


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("frequency", {"frequency": "monthly"}),
        ("topics", {"topics": ["product"]}),
        ("pause", {"duration": "2w"}),
        ("resume", {}),
        ("unsubscribe", {"scope": "list"}),
        ("unsubscribe", {"scope": "all"}),
        ("resubscribe", {"scope": "list"}),
        ("survey", {"reason": "too_many"}),
    ],
    ids=[
        "frequency",
        "topics",
        "pause",
        "resume",
        "unsubscribe",
        "unsubscribe-all",
        "resubscribe",
        "survey",
    ],
)
def test_form_without_csrf_token_is_400_and_changes_nothing(
    app: Flask, center: Center, action: str, data: dict[str, Any]
) -> None:
    center.page()  # the browser has a session, but the form lost its token
    before = snapshot(app)
    response = center.post(action, data, csrf=False)
    assert response.status_code == 400
    assert "nothing was changed" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_one_click_post_still_needs_no_csrf_token(app: Flask, center: Center) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    fresh = app.test_client(use_cookies=False)
    assert fresh.post(center.landing, data="List-Unsubscribe=One-Click").status_code == 200
    assert status(app)["subscribed"] is False


def survey_page_after_unsubscribe(center: Center) -> str:
    return center.post("unsubscribe", {"scope": "list"}).get_data(as_text=True)


def test_survey_text_is_stored_as_text_and_shown_escaped(app: Flask, center: Center) -> None:
    page = survey_page_after_unsubscribe(center)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = center.client.post(
        f"{center.path}/survey",
        data={"reason": "other", "comment": hostile, "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 200
    shown = response.get_data(as_text=True)
    assert "your answer was saved" in shown
    assert hostile not in shown
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
    assert (answer.reason, answer.comment) == ("other", hostile)
    (event,) = [e for e in event_rows(app) if e.kind == "unsubscribe"]
    assert answer.event_id == event.id


def test_overlong_survey_text_is_refused_with_a_message(app: Flask, center: Center) -> None:
    page = survey_page_after_unsubscribe(center)
    response = center.client.post(
        f"{center.path}/survey",
        data={"reason": "other", "comment": "x" * 501, "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 400
    assert "Please keep it under 500 characters." in response.get_data(as_text=True)
    with transaction(app) as session:
        assert session.scalars(sa.select(SurveyResponse)).all() == []
    assert status(app)["subscribed"] is False  # the unsubscribe never waits on the survey


def test_empty_survey_is_refused_gently(app: Flask, center: Center) -> None:
    page = survey_page_after_unsubscribe(center)
    response = center.client.post(
        f"{center.path}/survey", data={"comment": "   ", "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 400
    assert "Choose a reason or write a comment" in response.get_data(as_text=True)


def test_answering_again_replaces_the_answer(app: Flask, center: Center) -> None:
    page = survey_page_after_unsubscribe(center)
    for reason in ("too_many", "not_relevant"):
        center.client.post(
            f"{center.path}/survey", data={"reason": reason, "csrf_token": csrf_token(page)}
        )
    with transaction(app) as session:
        assert [a.reason for a in session.scalars(sa.select(SurveyResponse))] == ["not_relevant"]


def test_survey_after_one_click_attaches_to_that_unsubscribe(app: Flask, center: Center) -> None:
    center.client.post(center.landing, data="List-Unsubscribe=One-Click")
    page = center.client.get(center.landing).get_data(as_text=True)
    assert "Would you tell us why?" in page
    response = center.client.post(
        f"{center.path}/survey",
        data={"reason": "not_relevant", "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 200
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
    (event,) = event_rows(app)
    assert (event.channel, answer.event_id) == ("one_click", event.id)


def test_survey_without_an_unsubscribe_is_404(center: Center) -> None:
    response = center.post("survey", {"reason": "other"})
    assert response.status_code == 404


def test_preferences_token_for_a_topic_link_undoes_that_topic(app: Flask) -> None:
    make_list(app)
    client = app.test_client()
    landing = path_of(links_for(app, topic="events").unsubscribe_url)
    page = client.get(landing).get_data(as_text=True)
    confirm = client.post(landing + "/confirm", data={"csrf_token": csrf_token(page)})
    shown = confirm.get_data(as_text=True)
    assert "Events mail from News from Example" in shown
    assert 'value="topic:events"' in shown
    assert status(app)["topics"]["events"] is False
    undo_path = path_of(links_for(app).preferences_url) + "/resubscribe"
    client.post(undo_path, data={"scope": "topic:events", "csrf_token": csrf_token(shown)})
    assert status(app)["topics"]["events"] is True


@pytest.mark.parametrize("loader_found_row", [True, False], ids=["row-given", "row-read"])
def test_page_state_is_the_stored_state(app: Flask, center: Center, loader_found_row: bool) -> None:
    center.post("topics", {"topics": ["product"]})
    center.post("frequency", {"frequency": "monthly"})
    center.post("pause", {"duration": "2w"})
    with transaction(app) as session:
        list_id = session.scalar(sa.select(MailingList.id).where(MailingList.name == "news"))
        mailing_list = session.get(MailingList, list_id)
        subscriber = session.scalars(sa.select(Subscriber)).one()
        assert mailing_list is not None
        subscription = session.scalars(sa.select(Subscription)).one() if loader_found_row else None
        target = Target(mailing_list, subscriber, None, None, subscription=subscription)
        state = prefs.stored_state(session, target)
        assert state == recipient_state(session, mailing_list, subscriber)
    assert state.opted_out_topics == {"events"}
    assert (state.frequency, state.subscribed) == ("monthly", True)
    assert state.paused_until is not None
