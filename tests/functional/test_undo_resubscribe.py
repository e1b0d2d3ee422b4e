"""Undo and resubscribe: a short-lived undo link, else a link mailed to the address."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.helpers import event_rows, links_for, make_list, path_of, snapshot, status
from tests.smtp_sink import SmtpSink


@pytest.fixture
def landing(mail_app: Flask) -> str:
    make_list(mail_app)
    return path_of(links_for(mail_app).unsubscribe_url)


@pytest.fixture
def client(mail_app: Flask) -> FlaskClient:
    return mail_app.test_client(use_cookies=False)


def unsubscribe_from_landing(client: FlaskClient, landing: str) -> str:
    """Press the landing page's button; return the confirmation page's URL."""
    response = client.post(landing + "/confirm")
    assert response.status_code == 303
    return str(response.headers["Location"])


def undo_form(client: FlaskClient, page_url: str) -> tuple[str, dict[str, str]]:
    page = client.get(page_url).get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+/undo)"', page)
    assert action is not None, "the page offers no undo"
    fields = dict(re.findall(r'<input type="hidden" name="(undo|scope)" value="([^"]+)"', page))
    return action.group(1), fields


def test_undo_inside_the_window_resubscribes(
    mail_app: Flask, client: FlaskClient, landing: str
) -> None:
    page_url = unsubscribe_from_landing(client, landing)
    action, fields = undo_form(client, page_url)

    response = client.post(action, data=fields)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("?done=resubscribed#status")
    assert status(mail_app)["subscribed"] is True
    unsubscribe, resubscribe = event_rows(mail_app)
    assert (resubscribe.kind, resubscribe.detail) == ("resubscribe", {"confirmed_by": "undo-link"})
    # Back, then Undo again: the unsubscribe is no longer the newest change: refused.
    again = client.post(action, data=fields)
    assert "done=undo-refused" in again.headers["Location"]
    assert len(event_rows(mail_app)) == 2


def test_undo_after_the_window_is_refused(
    mail_app: Flask, client: FlaskClient, landing: str, clock: FakeClock
) -> None:
    page_url = unsubscribe_from_landing(client, landing)
    action, fields = undo_form(client, page_url)
    clock.advance(seconds=1801)  # the default undo window is 30 minutes
    before = snapshot(mail_app)

    response = client.post(action, data=fields)

    assert response.status_code == 303
    assert "done=undo-refused" in response.headers["Location"]
    assert snapshot(mail_app) == before
    # The page no longer offers the expired undo; it offers resubscribing by mail.
    shown = client.get(page_url).get_data(as_text=True)
    assert "/undo" not in shown
    assert "Resubscribe by e-mail" in shown


def test_an_undo_link_for_another_list_or_a_forged_one_does_nothing(
    mail_app: Flask, client: FlaskClient, landing: str
) -> None:
    page_url = unsubscribe_from_landing(client, landing)
    action, fields = undo_form(client, page_url)
    before = snapshot(mail_app)
    for forged in (fields["undo"][:-2] + "xx", "", "x" * 700):
        response = client.post(action, data={**fields, "undo": forged})
        assert "done=undo-refused" in response.headers["Location"]
    assert snapshot(mail_app) == before


def test_the_undo_token_in_the_url_is_ignored_when_it_names_another_event(
    mail_app: Flask, client: FlaskClient, landing: str
) -> None:
    first = unsubscribe_from_landing(client, landing)
    action, fields = undo_form(client, first)
    client.post(action, data=fields)  # undone
    second = unsubscribe_from_landing(client, landing)  # unsubscribed again: a new event
    assert "/undo" not in client.get(first).get_data(as_text=True)
    assert parse_qs(urlsplit(second).query)["undo"] != parse_qs(urlsplit(first).query)["undo"]


def confirm_link_from(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/p/confirm/\S+", body.get_content())
    assert match is not None
    return path_of(match.group(0))


def test_resubscribe_from_the_center_mails_a_link_and_changes_nothing_until_followed(
    mail_app: Flask, client: FlaskClient, landing: str, smtp_server: SmtpSink
) -> None:
    unsubscribe_from_landing(client, landing)
    prefs_path = path_of(links_for(mail_app).preferences_url)
    before = snapshot(mail_app)

    response = client.post(prefs_path + "/resubscribe", data={"scope": "list"})

    assert response.status_code == 303
    assert "done=mailed" in response.headers["Location"]
    assert "We sent a confirmation link" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert status(mail_app)["subscribed"] is False
    assert [e.kind for e in event_rows(mail_app)] == ["unsubscribe"]
    (message,) = smtp_server.wait_for(count=1, timeout=10)
    assert message["To"].lower() == "ann@example.com"
    link = confirm_link_from(message)

    # A link scanner's GET changes nothing; it shows a button.
    page = client.get(link)
    assert page.status_code == 200
    assert "Yes, resubscribe me" in page.get_data(as_text=True)
    assert status(mail_app)["subscribed"] is False

    done = client.post(link)
    assert done.status_code == 303
    assert done.headers["Location"].endswith("?done=resubscribed#status")
    assert status(mail_app)["subscribed"] is True
    resubscribe = event_rows(mail_app)[-1]
    assert (resubscribe.kind, resubscribe.detail) == ("resubscribe", {"confirmed_by": "email-link"})
    assert snapshot(mail_app) != before
    # Following it again changes nothing more.
    client.post(link)
    assert len(event_rows(mail_app)) == 2


def test_resubscribe_all_records_the_scope_and_how_it_was_confirmed(
    mail_app: Flask, client: FlaskClient, landing: str, smtp_server: SmtpSink
) -> None:
    prefs_path = path_of(links_for(mail_app).preferences_url)
    client.post(prefs_path + "/unsubscribe", data={"scope": "all"})
    client.post(prefs_path + "/resubscribe", data={"scope": "all"})
    (message,) = smtp_server.wait_for(count=1, timeout=10)
    client.post(confirm_link_from(message))
    last = event_rows(mail_app)[-1]
    assert last.detail == {"scope": "all", "confirmed_by": "email-link"}
    assert status(mail_app)["subscribed"] is True


def test_the_confirmation_mail_is_in_the_subscribers_language(
    mail_app: Flask, client: FlaskClient, landing: str, smtp_server: SmtpSink
) -> None:
    import sqlalchemy as sa

    from tests.helpers import transaction
    from unsubsvc.db.models import Subscriber

    with transaction(mail_app) as session:
        session.scalars(sa.select(Subscriber)).one().locale = "de"
    prefs_path = path_of(links_for(mail_app).preferences_url)
    client.post(landing + "/confirm")
    client.post(prefs_path + "/resubscribe", data={"scope": "list"})
    (message,) = smtp_server.wait_for(count=1, timeout=10)
    assert message["Content-Language"] == "de"


def test_an_expired_confirmation_link_is_refused(
    mail_app: Flask, client: FlaskClient, landing: str, smtp_server: SmtpSink, clock: FakeClock
) -> None:
    unsubscribe_from_landing(client, landing)
    prefs_path = path_of(links_for(mail_app).preferences_url)
    client.post(prefs_path + "/resubscribe", data={"scope": "list"})
    (message,) = smtp_server.wait_for(count=1, timeout=10)
    clock.advance(days=7, seconds=1)
    response = client.post(confirm_link_from(message))
    assert response.status_code == 400
    assert status(mail_app)["subscribed"] is False
