"""Self-service by e-mail: /manage mails a single-use link over real SMTP (aiosmtpd), and the
page behind it manages every list of the address.

Links are taken from the message the SMTP server received, never minted by the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import FakeClock
from tests.helpers import links_for, make_list, runner_for, status, transaction
from tests.smtp_sink import SmtpSink
from unsubsvc.db.models import Event, OutgoingMail
from unsubsvc.services.erasure import erase
from unsubsvc.web.context import runtime_of, wait_for_mail

SENT_TEXT = "If that address is on our lists, we sent it a link."


@pytest.fixture
def app(mail_app: Flask) -> Iterator[Flask]:
    """Every test here mails through the aiosmtpd server."""
    make_list(mail_app)
    make_list(mail_app, "offers", topics=(), frequencies=(), display_name="Offers")
    links_for(mail_app, "Ann@Example.com", list_name="news")
    links_for(mail_app, "Ann@Example.com", list_name="offers")
    yield mail_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def ask(client: FlaskClient, email: str, **kwargs: Any) -> TestResponse:
    return client.post("/manage", data={"email": email}, **kwargs)


def link_in(message: EmailMessage) -> str:
    """Return the path of the link in the text part of a received message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    found = re.search(r"https://unsub\.example\.com(/manage/\S+)", text)
    assert found is not None, text
    return found.group(1)


def received_link(
    client: FlaskClient, smtp_server: SmtpSink, email: str = "ann@example.com"
) -> str:
    response = ask(client, email)
    assert response.status_code == 303
    wait_for_mail()
    (message,) = smtp_server.wait_for(1)
    return link_in(message)


def open_subscriptions(client: FlaskClient, link: str) -> TestResponse:
    follow = client.get(link)
    assert follow.status_code == 200
    assert "Open my subscriptions" in follow.get_data(as_text=True)
    spent = client.post(link)
    assert spent.status_code == 303
    return client.get(spent.headers["Location"])


def no_cookies(*responses: TestResponse) -> None:
    for response in responses:
        assert "Set-Cookie" not in response.headers, response.request.path


def test_link_from_the_received_mail_manages_every_list(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    form = client.get("/manage")
    asked = ask(client, "ANN@example.com")
    wait_for_mail()
    (message,) = smtp_server.wait_for(1)
    assert message["To"] == "Ann@Example.com"
    assert message["Subject"] == "Your link to manage your subscriptions"
    link = link_in(message)
    assert link.startswith("/manage/")

    follow = client.get(link)
    spent = client.post(link)
    assert spent.status_code == 303
    page = client.get(spent.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "News from Example" in html and "Offers" in html
    assert "Ann@Example.com" not in html  # masked: the page may be forwarded
    no_cookies(form, asked, follow, spent, page)

    # Change one list: unsubscribe from "offers"; on "news" keep only one topic, monthly.
    base = urlsplit(spent.headers["Location"]).path
    offers_id, news_id = list_ids(app)
    left = client.post(f"{base}/list/{offers_id}", data={"subscribed": "no"})
    assert left.status_code == 303
    assert left.headers["Location"].endswith(f"?done=saved&list={offers_id}#status")
    saved = client.post(
        f"{base}/list/{news_id}",
        data={
            "subscribed": "yes",
            "topics-shown": "1",
            "topics": "product",
            "frequency": "monthly",
        },
    )
    assert saved.status_code == 303
    shown = client.get(saved.headers["Location"])
    assert 'id="status"' in shown.get_data(as_text=True)
    assert "Saved. Your changes apply now." in shown.get_data(as_text=True)
    no_cookies(left, saved, shown)

    assert status(app, list_name="offers")["subscribed"] is False
    news = status(app, list_name="news")
    assert news["subscribed"] is True
    assert news["topics"] == {"product": True, "events": False}
    assert news["frequency"] == "monthly"

    # Resubscribing here is confirmed by the followed link, and the event says so.
    back = client.post(f"{base}/list/{offers_id}", data={"subscribed": "yes"})
    assert back.status_code == 303
    assert status(app, list_name="offers")["subscribed"] is True
    with transaction(app) as session:
        detail = session.scalars(
            sa.select(Event.detail).where(Event.kind == "resubscribe").order_by(Event.id)
        ).all()
    assert detail[-1] == {"confirmed_by": "manage-link"}


def list_ids(app: Flask) -> tuple[int, int]:
    with transaction(app) as session:
        rows: dict[str, int] = dict(
            session.execute(sa.text("SELECT name, id FROM mailing_list")).all()
        )
    return rows["offers"], rows["news"]


def test_the_cli_sees_the_change(app: Flask, client: FlaskClient, smtp_server: SmtpSink) -> None:
    page = open_subscriptions(client, received_link(client, smtp_server))
    everything = re.search(r'action="(/manage/s/[^"]+/all)"', page.get_data(as_text=True))
    assert everything is not None
    assert client.post(everything.group(1), data={"action": "leave"}).status_code == 303
    result = runner_for(app).invoke(args=["status", "--list", "news", "--email", "ann@example.com"])
    assert result.exit_code == 0, result.output
    assert '"subscribed": false' in result.stdout


def test_the_link_works_once(client: FlaskClient, smtp_server: SmtpSink) -> None:
    link = received_link(client, smtp_server)
    open_subscriptions(client, link)
    again = client.get(link)
    assert again.status_code == 410
    html = again.get_data(as_text=True)
    assert "already used" in html
    assert "Get a new link by e-mail" in html
    assert client.post(link).status_code == 410
    no_cookies(again)


def test_get_changes_nothing(app: Flask, client: FlaskClient, smtp_server: SmtpSink) -> None:
    """Link scanners GET (and HEAD) every URL in a message: the link stays unused."""
    link = received_link(client, smtp_server)
    for _ in range(3):
        assert client.get(link).status_code == 200
        assert client.head(link).status_code == 200
    with transaction(app) as session:
        assert session.scalar(sa.text("SELECT count(*) FROM used_link")) == 0
    open_subscriptions(client, link)


@pytest.mark.parametrize(
    "email",
    ["nobody@example.com", "erased@example.com"],
    ids=["unknown", "erased"],
)
def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, email: str
) -> None:
    if email.startswith("erased"):
        links_for(app, email)
        with transaction(app) as session:
            erase(session, runtime_of(app).keyring, email, now=runtime_of(app).now())
    known = ask(client, "ann@example.com")
    unknown = ask(client, email)
    assert (unknown.status_code, unknown.headers["Location"]) == (
        known.status_code,
        known.headers["Location"],
    )
    known_page = client.get(known.headers["Location"]).get_data(as_text=True)
    unknown_page = client.get(unknown.headers["Location"]).get_data(as_text=True)
    assert known_page == unknown_page
    assert SENT_TEXT in unknown_page
    wait_for_mail()
    smtp_server.wait_for(1)
    assert [m["To"] for m in smtp_server.messages] == ["Ann@Example.com"]
    with transaction(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutgoingMail)) == 1


def test_a_bad_address_is_refused_with_the_form(client: FlaskClient) -> None:
    response = ask(client, "not an address")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert 'value="not an address"' in html


def test_an_expired_link_is_refused_with_the_form(
    client: FlaskClient, smtp_server: SmtpSink, clock: FakeClock
) -> None:
    link = received_link(client, smtp_server)
    clock.advance(seconds=3601)
    for response in (client.get(link), client.post(link)):
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert "expired" in html
        assert 'action="/manage"' in html
        assert "Changes take effect at once" not in html


def test_the_manage_page_expires_too(
    client: FlaskClient, smtp_server: SmtpSink, clock: FakeClock
) -> None:
    page = open_subscriptions(client, received_link(client, smtp_server))
    path = page.request.path
    clock.advance(seconds=3601)
    assert client.get(path).status_code == 400


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"), lambda t: t[:20], str.upper],
    ids=["tampered", "truncated", "case"],
)
def test_a_tampered_link_shows_the_form(
    client: FlaskClient, smtp_server: SmtpSink, mangle: object
) -> None:
    link = received_link(client, smtp_server)
    token = link.rsplit("/", 1)[1]
    bad = "/manage/" + mangle(token)  # type: ignore[operator]
    for response in (client.get(bad), client.post(bad), client.get("/manage/s/" + token)):
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert "Get a new link by e-mail" in html
        assert "Changes take effect at once" not in html
        no_cookies(response)


def test_a_bad_preferences_link_offers_the_form(client: FlaskClient) -> None:
    html = client.get("/p/not-a-token").get_data(as_text=True)
    assert "Get a new link by e-mail" in html


def test_the_admin_404_does_not_send_admins_to_the_sender(client: FlaskClient) -> None:
    html = client.get("/admin/no-such-page").get_data(as_text=True)
    assert "reply to the sender" not in html
    assert "Get a new link by e-mail" not in html


def test_asking_too_often_for_one_address_gives_429(
    client: FlaskClient, smtp_server: SmtpSink
) -> None:
    for n in range(5):
        # Different clients: the per-address limit holds across them.
        assert (
            ask(client, "ann@example.com", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code
            == 303
        )
    refused = ask(client, "Ann@Example.com", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    wait_for_mail()
    assert len(smtp_server.wait_for(5)) == 5


def test_one_client_asking_for_many_addresses_gives_429(client: FlaskClient) -> None:
    for n in range(20):
        assert ask(client, f"person{n}@example.com").status_code == 303
    refused = ask(client, "person99@example.com")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


def test_the_mail_is_in_the_subscribers_language(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink
) -> None:
    ask(client, "ann@example.com", headers={"Accept-Language": "de"})
    wait_for_mail()
    (message,) = smtp_server.wait_for(1)
    assert message["Content-Language"] == "de"
