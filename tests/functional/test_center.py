"""The preference center through HTTP: one form, each change stored once, cookie-free PRG."""

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

#: What the one form sends when nothing is changed (the stored state of a new subscriber).
UNCHANGED = {"frequency": "weekly", "topics": ["product", "events"], "pause": "none"}


class Center:
    """A recipient's browser on the preference center, with cookies off (none are needed)."""

    def __init__(self, app: Flask, email: str = "Ann@Example.com") -> None:
        self.app = app
        self.client: FlaskClient = app.test_client(use_cookies=False)
        links = links_for(app, email)
        self.path = path_of(links.preferences_url)
        self.landing = path_of(links.unsubscribe_url)

    def page(self, path: str | None = None) -> str:
        response = self.client.get(path or self.path)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def save(self, **changes: Any) -> TestResponse:
        """Post the one form: the stored choices with ``changes`` applied."""
        return self.client.post(self.path, data={**UNCHANGED, **changes})

    def post(self, action: str, data: dict[str, Any]) -> TestResponse:
        return self.client.post(f"{self.path}/{action}", data=data)

    def follow(self, response: TestResponse) -> str:
        assert response.status_code == 303, response.get_data(as_text=True)
        return self.page(response.headers["Location"])


@pytest.fixture
def center(app: Flask) -> Center:
    make_list(app)
    return Center(app)


def test_page_summarizes_and_presets_the_stored_choices(center: Center) -> None:
    page = center.page()
    assert "Your preferences for News from Example" in page
    assert "How often: Weekly" in page
    assert "Topics: Product, Events" in page
    assert "Not paused" in page
    assert "Unsubscribe from all mail from unsubsvc" in page
    assert re.search(r'<input checked[^>]*value="weekly"', page)
    assert not re.search(r'<input checked[^>]*value="monthly"', page)
    assert re.search(r'<input checked class="switch"[^>]*type="checkbox" value="events"', page)
    assert re.search(r'<input checked[^>]*value="none"', page)


def test_one_form_one_save_and_no_duplicate_ids(center: Center) -> None:
    page = center.page()
    main = page[page.index("<main") : page.index("</main>")]
    # The preferences, and the two quiet unsubscribe buttons (the footer has the language picker).
    assert main.count("<form") == 3
    assert page.count("Save preferences") == 1
    assert page.count("<h1") == 1
    assert 'name="csrf_token"' not in page
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_topic_descriptions_are_shown_with_their_switch(app: Flask, center: Center) -> None:
    with transaction(app) as session:
        news = session.scalars(sa.select(MailingList).where(MailingList.name == "news")).one()
        news.topics[0].description = "New features, once a month."
    page = center.page()
    assert 'aria-describedby="topics-0-description"' in page
    assert '<p class="description" id="topics-0-description">New features, once a month.' in page


def test_downgrade_is_one_event_and_a_repeat_is_none(app: Flask, center: Center) -> None:
    response = center.save(frequency="monthly")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{center.path}?done=saved#status"
    assert "Set-Cookie" not in response.headers
    shown = center.follow(response)
    assert 'id="status" tabindex="-1" role="status"' in shown
    assert "How often: Monthly" in shown
    assert status(app)["frequency"] == "monthly"

    center.save(frequency="monthly")

    (event,) = event_rows(app)
    assert (event.kind, event.channel) == ("frequency_change", "preference_center")
    assert event.detail == {"from": "weekly", "to": "monthly", "downgrade": True}
    assert event.campaign_id is not None


def test_one_save_stores_every_section_together(
    app: Flask, center: Center, clock: FakeClock
) -> None:
    center.save(frequency="monthly", topics=["product"], pause="2w")
    state = status(app)
    assert state["frequency"] == "monthly"
    assert state["topics"] == {"product": True, "events": False}
    assert state["paused_until"] == (clock.now + timedelta(weeks=2)).isoformat()
    assert [e.kind for e in event_rows(app)] == ["frequency_change", "unsubscribe", "pause"]


def test_saving_unchanged_choices_writes_nothing(app: Flask, center: Center) -> None:
    assert center.save().status_code == 303
    assert event_rows(app) == []
    assert status(app)["frequency"] == "weekly"


def test_topics_change_one_event_per_topic(app: Flask, center: Center) -> None:
    center.save(topics=["product"])
    assert status(app)["topics"] == {"product": True, "events": False}
    center.save(topics=["product", "events"])
    assert status(app)["topics"] == {"product": True, "events": True}
    assert [(e.kind, e.topic_id is not None) for e in event_rows(app)] == [
        ("unsubscribe", True),
        ("resubscribe", True),
    ]


def test_no_topics_ticked_opts_out_of_all_topics(app: Flask, center: Center) -> None:
    center.client.post(center.path, data={"frequency": "weekly", "pause": "none"})
    assert status(app)["topics"] == {"product": False, "events": False}
    assert status(app)["subscribed"] is True
    assert len(event_rows(app)) == 2


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("", {**UNCHANGED, "frequency": "daily"}),
        ("", {"topics": ["product"], "pause": "none"}),
        ("", {**UNCHANGED, "topics": ["sports"]}),
        ("", {**UNCHANGED, "pause": "10y"}),
        ("", {"frequency": "monthly", "topics": ["product"]}),
        ("", {**UNCHANGED, "pause": "keep"}),
        ("/unsubscribe", {"scope": "everything"}),
        ("/resubscribe", {"scope": "topic:sports"}),
        ("/resubscribe", {"scope": "galaxy"}),
    ],
    ids=[
        "unknown-frequency",
        "no-frequency",
        "unknown-topic",
        "unknown-pause",
        "no-pause",
        "keep-without-a-pause",
        "unknown-scope",
        "unknown-topic-scope",
        "bad-resubscribe-scope",
    ],
)
def test_invalid_choice_is_400_and_changes_nothing(
    app: Flask, center: Center, action: str, data: dict[str, Any]
) -> None:
    center.page()
    before = snapshot(app)
    response = center.client.post(center.path + action, data=data)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert snapshot(app) == before


def test_invalid_save_shows_the_errors_in_an_alert_div(center: Center) -> None:
    page = center.client.post(center.path, data={**UNCHANGED, "pause": ""}).get_data(as_text=True)
    assert '<div class="errors" id="pause-errors" role="alert">' in page
    assert '<ul role="alert"' not in page


def test_pause_reads_as_paused_until_the_date_then_subscribed(
    app: Flask, center: Center, clock: FakeClock
) -> None:
    center.save(pause="1m")
    until = clock.now + timedelta(days=30)
    assert status(app)["paused_until"] == until.isoformat()
    page = center.page()
    assert "Paused until" in page
    assert re.search(r'<input checked[^>]*value="keep"', page)

    clock.now = until - timedelta(seconds=1)
    assert status(app)["paused_until"] == until.isoformat()

    clock.now = until
    state = status(app)
    assert state["paused_until"] is None
    assert state["subscribed"] is True
    assert "Paused until" not in center.page()
    assert [e.kind for e in event_rows(app)] == ["pause"]


def test_keeping_a_pause_changes_nothing_and_resume_ends_it(app: Flask, center: Center) -> None:
    center.save(pause="3m")
    center.save(pause="keep")
    assert status(app)["paused_until"] is not None
    response = center.save(pause="none")
    assert response.status_code == 303
    assert status(app)["paused_until"] is None
    assert [e.kind for e in event_rows(app)] == ["pause", "resume"]


def test_unsubscribe_from_the_list_redirects_to_the_confirmation(
    app: Flask, center: Center
) -> None:
    response = center.post("unsubscribe", {"scope": "list"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"{center.path}/unsubscribed?scope=list&done=unsubscribed&undo=")
    page = center.follow(response)
    assert "You are unsubscribed" in page
    assert "Undo: resubscribe me" in page
    assert status(app)["subscribed"] is False
    assert [(e.kind, e.channel) for e in event_rows(app)] == [("unsubscribe", "preference_center")]


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


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("", {**UNCHANGED, "frequency": "monthly"}),
        ("", {**UNCHANGED, "pause": "2w"}),
        ("/unsubscribe", {"scope": "list"}),
        ("/unsubscribe", {"scope": "all"}),
    ],
    ids=["frequency", "pause", "unsubscribe", "unsubscribe-all"],
)
def test_forms_need_no_cookie_or_csrf_token(
    app: Flask, center: Center, action: str, data: dict[str, Any]
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True  # as in production
    before = snapshot(app)
    response = center.client.post(center.path + action, data=data)
    assert response.status_code == 303
    assert "Set-Cookie" not in response.headers
    assert snapshot(app) != before


def test_one_click_post_still_needs_no_csrf_token(app: Flask, center: Center) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    fresh = app.test_client(use_cookies=False)
    assert fresh.post(center.landing, data="List-Unsubscribe=One-Click").status_code == 200
    assert status(app)["subscribed"] is False


def survey_page_after_unsubscribe(center: Center) -> str:
    return center.follow(center.post("unsubscribe", {"scope": "list"}))


def test_survey_states_its_limit_and_has_a_counter(center: Center) -> None:
    page = survey_page_after_unsubscribe(center)
    assert "up to 500 characters" in page
    assert "maxlength" not in page  # no silent truncation by the browser
    assert 'aria-describedby="comment-count"' in page
    assert '<script src="/static/survey.js" defer></script>' in page


def test_survey_text_is_stored_as_text_and_shown_escaped(app: Flask, center: Center) -> None:
    survey_page_after_unsubscribe(center)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = center.post("survey", {"reason": "other", "comment": hostile, "scope": "list"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("done=survey#status")
    shown = center.follow(response)
    assert "Thank you. Your answer helps us send better mail." in shown
    assert 'action="' + center.path + '/survey"' not in shown  # the thanks replaces the form
    assert hostile not in shown
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
    assert (answer.reason, answer.comment) == ("other", hostile)
    (event,) = [e for e in event_rows(app) if e.kind == "unsubscribe"]
    assert answer.event_id == event.id


def test_a_rejected_comment_is_shown_escaped_and_kept(app: Flask, center: Center) -> None:
    survey_page_after_unsubscribe(center)
    hostile = "<script>x</script>" + "y" * 500
    response = center.post("survey", {"comment": hostile})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page


@pytest.mark.parametrize("length", [500, 501])
def test_survey_limit_is_500_inclusive_with_a_message_above(
    app: Flask, center: Center, length: int
) -> None:
    survey_page_after_unsubscribe(center)
    text = "x" * length
    response = center.post("survey", {"reason": "other", "comment": text})
    with transaction(app) as session:
        stored = session.scalars(sa.select(SurveyResponse)).all()
    if length == 500:
        assert response.status_code == 303
        assert [a.comment for a in stored] == [text]
        return
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "longer than 500 characters" in page
    assert text in page  # the text is kept, to shorten
    assert stored == []
    assert status(app)["subscribed"] is False  # the unsubscribe never waits on the survey


def test_empty_survey_simply_thanks(app: Flask, center: Center) -> None:
    survey_page_after_unsubscribe(center)
    response = center.post("survey", {"comment": "   "})
    assert response.status_code == 303
    assert "Thank you" in center.follow(response)
    with transaction(app) as session:
        assert session.scalars(sa.select(SurveyResponse)).all() == []


def test_answering_again_replaces_the_answer(app: Flask, center: Center) -> None:
    survey_page_after_unsubscribe(center)
    for reason in ("too_many", "not_relevant"):
        center.post("survey", {"reason": reason})
    with transaction(app) as session:
        assert [a.reason for a in session.scalars(sa.select(SurveyResponse))] == ["not_relevant"]


def test_survey_after_one_click_attaches_to_that_unsubscribe(app: Flask, center: Center) -> None:
    center.client.post(center.landing, data="List-Unsubscribe=One-Click")
    page = center.client.get(center.landing).get_data(as_text=True)
    assert "Would you tell us why?" in page
    response = center.post("survey", {"reason": "not_relevant"})
    assert response.status_code == 303
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
    (event,) = event_rows(app)
    assert (event.channel, answer.event_id) == ("one_click", event.id)


def test_survey_without_an_unsubscribe_is_404(center: Center) -> None:
    response = center.post("survey", {"reason": "other"})
    assert response.status_code == 404


def test_landing_page_for_a_topic_link_unsubscribes_that_topic(app: Flask) -> None:
    make_list(app)
    client = app.test_client(use_cookies=False)
    landing = path_of(links_for(app, topic="events").unsubscribe_url)
    confirm = client.post(landing + "/confirm")
    assert "scope=topic:events" in confirm.headers["Location"]
    shown = client.get(confirm.headers["Location"]).get_data(as_text=True)
    assert "Events mail from News from Example" in shown
    assert 'value="topic:events"' in shown
    assert status(app)["topics"]["events"] is False


@pytest.mark.parametrize("loader_found_row", [True, False], ids=["row-given", "row-read"])
def test_page_state_is_the_stored_state(app: Flask, center: Center, loader_found_row: bool) -> None:
    center.save(topics=["product"], frequency="monthly", pause="2w")
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
