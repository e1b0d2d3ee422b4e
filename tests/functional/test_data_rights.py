"""Erase and export one address: by the CLI, the API and the admin console.

After an erasure no table holds the address (nor its local part), reports keep
their totals, and no public way of naming the address again stores it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import ApiClient, FakeClock
from tests.helpers import (
    csrf_token,
    links_for,
    make_list,
    path_of,
    runner_for,
    status,
    transaction,
)
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.db.base import Base
from unsubsvc.db.models import AuditEvent, ErasedAddress, Subscriber, Webhook, WebhookDelivery
from unsubsvc.services import admin_users, reports
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.erasure import erase
from unsubsvc.services.recipient_export import export_document, export_recipient
from unsubsvc.web.context import runtime_of

#: Mixed case and a plus: matched case-insensitively, and the plus must survive URLs.
ANN = "Ann.Lee+news@Example.com"
ANN_LOCAL = "ann.lee+news"
BOB = "bob@example.com"
ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery staple 42"
ONE_CLICK = "List-Unsubscribe=One-Click"


def one_click(client: FlaskClient, url: str) -> int:
    with client.post(path_of(url), data=ONE_CLICK) as response:
        return response.status_code


def target_for(app: Flask, session: Any, email: str) -> Any:
    token = path_of(links_for(app, email, campaign="c1").preferences_url).rsplit("/", 1)[1]
    return svc.resolve(session, runtime_of(app).minter.signer.verify(Purpose.PREFERENCES, token))


def build_history(app: Flask, api: ApiClient, client: FlaskClient, email: str) -> str:
    """Give ``email`` every kind of record the service keeps; return its first token."""
    now = runtime_of(app).now
    links = links_for(app, email, campaign="c1")  # headers: the subscriber and its row
    assert one_click(client, links.unsubscribe_url) == 200
    with transaction(app) as session:
        target = target_for(app, session, email)
        prefs.record_survey(session, target, "other", f"Stop writing to {email}!", now=now())
    reason = {"reason": f"signed up again on the web form as {email}"}
    assert api.post(f"/lists/news/recipients/{quote(email)}/resubscribe", reason).status_code == 200
    with transaction(app) as session:
        target = target_for(app, session, email)
        prefs.set_frequency(session, target, "monthly", now=now())
        prefs.set_topics(session, target, ["product"], now=now())
        prefs.pause(session, target, "2w", now=now())
    bounce = {"email": email, "campaign": "c1", "type": "soft"}
    assert api.post("/lists/news/bounces", bounce).status_code == 200
    complaint = {"email": email, "campaign": "c1"}
    assert api.post("/lists/news/complaints", complaint).status_code == 200
    assert api.get(f"/lists/news/recipients/{quote(email)}").status_code == 200  # audited
    return links.unsubscribe_url


@pytest.fixture
def world(app: Flask, api: ApiClient, client: FlaskClient) -> dict[str, str]:
    """Ann and Bob with rich histories, a webhook endpoint, deliveries: Ann's first link."""
    make_list(app)
    with transaction(app) as session:
        session.add(
            Webhook(url="https://hooks.example.com/u", secret="x", created_at=runtime_of(app).now())
        )
    delivered = {"count": 1000}
    assert api.post("/lists/news/campaigns/c1/deliveries", delivered).status_code == 201
    urls = {email: build_history(app, api, client, email) for email in (ANN, BOB)}
    with transaction(app) as session:
        pending = session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery))
    assert pending  # the outbox holds payloads with the addresses
    return urls


def every_value(app: Flask) -> list[tuple[str, str]]:
    """Return (table, value as lower-case text) for every value of every row of every table."""
    out: list[tuple[str, str]] = []
    with transaction(app) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(sa.select(table)):
                out.extend((table.name, str(value).casefold()) for value in row)
    return out


def holding(app: Flask, *needles: str) -> list[tuple[str, str]]:
    return [(t, v) for t, v in every_value(app) if any(n.casefold() in v for n in needles)]


def report_totals(app: Flask) -> Any:
    with transaction(app) as session:
        return (
            [(r.list, r.campaign, r.rates) for r in reports.campaign_report(session)],
            reports.survey_reasons(session),
            reports.breakdown(session, "list"),
        )


def export_of(app: Flask, email: str) -> dict[str, Any]:
    runtime = runtime_of(app)
    with transaction(app) as session:
        return export_document(export_recipient(session, runtime.keyring, email, now=runtime.now()))


def subscriber_rows(app: Flask, email: str) -> int:
    with transaction(app) as session:
        return (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(Subscriber)
                .where(Subscriber.email_key == email.casefold())
            )
            or 0
        )


# -- the three ways to erase -------------------------------------------------------------


def erase_by_cli(app: Flask, email: str, **_: Any) -> None:
    result = runner_for(app).invoke(args=["erase", email, "--yes"])
    assert result.exit_code == 0, result.output
    assert "suppressed" in result.stderr


def erase_by_api(app: Flask, email: str, *, api: ApiClient, **_: Any) -> None:
    response = api.client.delete("/api/v1/recipients/" + quote(email, safe=""), headers=api.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["erased"] is True
    assert body["summary"]["subscriber_found"] is True


def erase_by_admin(app: Flask, email: str, *, clock: FakeClock, **_: Any) -> None:
    with transaction(app) as session:
        admin_users.create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD, now=clock.now)
    browser = app.test_client()
    page = browser.get("/admin/login").get_data(as_text=True)
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(page)}
    assert browser.post("/admin/login", data=login).status_code == 303
    page = browser.get("/admin/recipients").get_data(as_text=True)
    looked = browser.post(
        "/admin/recipients", data={"email": email, "csrf_token": csrf_token(page)}
    )
    assert looked.status_code == 200
    held = looked.get_data(as_text=True)
    assert "Stop writing to" in held  # what is held is shown
    token = csrf_token(held)
    confirm = browser.post("/admin/recipients/erase", data={"email": email, "csrf_token": token})
    assert confirm.status_code == 200
    assert subscriber_rows(app, email) == 1  # the first POST only asks
    confirm_html = confirm.get_data(as_text=True)
    assert "cannot be undone" in confirm_html
    done = browser.post(
        "/admin/recipients/erase",
        data={"email": email, "confirmed": "yes", "csrf_token": csrf_token(confirm_html)},
    )
    assert done.status_code == 200
    assert "now suppressed" in done.get_data(as_text=True)


Eraser = Callable[..., None]
ERASERS = pytest.mark.parametrize(
    "eraser", [erase_by_cli, erase_by_api, erase_by_admin], ids=["cli", "api", "admin"]
)


@ERASERS
def test_erasure_leaves_no_trace_and_reports_unchanged(
    app: Flask, api: ApiClient, clock: FakeClock, world: dict[str, str], eraser: Eraser
) -> None:
    assert {t for t, _ in holding(app, ANN, ANN_LOCAL)} >= {
        "subscriber",
        "webhook_delivery",
        "survey_response",
        "event",
    }
    totals = report_totals(app)
    bob_before = (status(app, BOB), export_of(app, BOB))
    bob_rows = holding(app, BOB)

    eraser(app, ANN, api=api, clock=clock)

    assert holding(app, ANN, ANN_LOCAL) == []
    assert report_totals(app) == totals
    assert (status(app, BOB), export_of(app, BOB)) == bob_before
    assert holding(app, BOB) == bob_rows
    assert export_of(app, ANN)["held"] is False
    assert export_of(app, ANN)["erased"] is True
    with transaction(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ErasedAddress)) == 1
        erasures = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "recipient.erase")
        ).all()
    assert len(erasures) == 1
    hashed = runtime_of(app).keyring.address_hash(ANN.casefold())
    assert erasures[0].target == f"email=#{hashed}"


def test_erasing_twice_and_erasing_an_unknown_address(app: Flask, world: dict[str, str]) -> None:
    runtime = runtime_of(app)
    with transaction(app) as session:
        first = erase(session, runtime.keyring, ANN, now=runtime.now())
        again = erase(session, runtime.keyring, ANN.upper(), now=runtime.now())
        unknown = erase(session, runtime.keyring, "never@example.net", now=runtime.now())
    assert (first.already_erased, first.subscriber_found) == (False, True)
    assert first.subscriptions == 1 and first.events_anonymized > 0
    assert (again.already_erased, again.subscriber_found) == (True, False)
    assert (unknown.already_erased, unknown.subscriber_found) == (False, False)
    assert status(app, "never@example.net")["subscribed"] is False
    assert export_of(app, "never@example.net") | {"exported_at": None} == {
        "format": 1,
        "held": False,
        "address": "never@example.net",
        "erased": True,
        "exported_at": None,
        "subscriber": None,
        "subscriptions": [],
        "events": [],
        "survey_answers": [],
        "pending_webhook_deliveries": 0,
        "outgoing_mail": [],
    }


def test_api_erase_of_an_unknown_address_answers_200(app: Flask, api: ApiClient) -> None:
    response = api.client.delete("/api/v1/recipients/nobody@example.org", headers=api.headers)
    assert response.status_code == 200
    assert response.get_json()["summary"]["subscriber_found"] is False
    bad = api.client.delete("/api/v1/recipients/not-an-address", headers=api.headers)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "path", [ANN, quote(ANN, safe=""), quote(ANN, safe="@+")], ids=["raw", "encoded", "partly"]
)
def test_export_by_api_cli_and_admin_hold_everything_created(
    app: Flask, api: ApiClient, clock: FakeClock, world: dict[str, str], path: str
) -> None:
    response = api.get(f"/recipients/{path}/export")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["held"] is True and body["erased"] is False
    assert body["subscriber"]["address"] == ANN
    [news] = body["subscriptions"]
    assert news["list"] == "news"
    assert news["subscribed"] is False  # the complaint unsubscribed it
    assert news["topics"] == {"product": True, "events": False}
    assert news["frequency"] == "monthly"
    assert news["paused_until"] is not None
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == [
        "unsubscribe",
        "resubscribe",
        "frequency_change",
        "unsubscribe",
        "pause",
        "bounce",
        "complaint",
        "unsubscribe",
    ]
    assert {e["campaign"] for e in body["events"]} == {"c1", None}  # resubscribe: none
    assert body["events"][1]["detail"]["reason"].endswith(ANN)
    [answer] = body["survey_answers"]
    assert (answer["reason"], answer["comment"]) == ("other", f"Stop writing to {ANN}!")
    with transaction(app) as session:
        owed = session.scalar(
            sa.select(sa.func.count())
            .select_from(WebhookDelivery)
            .join(Subscriber, Subscriber.id == WebhookDelivery.subscriber_id)
            .where(Subscriber.email_key == ANN.casefold())
        )
    assert body["pending_webhook_deliveries"] == owed == len(kinds)

    cli = runner_for(app).invoke(args=["export", ANN.lower()])
    assert cli.exit_code == 0, cli.output
    from_cli = json.loads(cli.stdout)
    assert from_cli["events"] == export_of(app, ANN)["events"]
    assert from_cli["subscriber"]["public_id"] == body["subscriber"]["public_id"]
    with transaction(app) as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.action == "recipient.export")
        ).all()
    assert len(actions) == 2


def test_admin_export_download_and_no_address_in_urls(
    app: Flask, clock: FakeClock, world: dict[str, str]
) -> None:
    erase_url_seen: list[str] = []
    with transaction(app) as session:
        admin_users.create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD, now=clock.now)
    browser = app.test_client()
    page = browser.get("/admin/login").get_data(as_text=True)
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(page)}
    assert browser.post("/admin/login", data=login).status_code == 303
    page = browser.get("/admin/recipients").get_data(as_text=True)
    assert 'method="post"' in page
    no_csrf = browser.post("/admin/recipients", data={"email": ANN})
    assert no_csrf.status_code == 400
    looked = browser.post("/admin/recipients", data={"email": ANN, "csrf_token": csrf_token(page)})
    html = looked.get_data(as_text=True)
    erase_url_seen.extend(part for part in html.split('action="')[1:])
    assert all("@" not in url.split('"')[0] for url in erase_url_seen)
    download = browser.post(
        "/admin/recipients/export", data={"email": ANN, "csrf_token": csrf_token(html)}
    )
    assert download.status_code == 200
    assert download.mimetype == "application/json"
    assert "attachment" in download.headers["Content-Disposition"]
    assert "@" not in download.headers["Content-Disposition"]
    assert json.loads(download.get_data())["events"] == export_of(app, ANN)["events"]
    without = browser.post("/admin/recipients/erase", data={"email": ANN, "confirmed": "yes"})
    assert without.status_code == 400
    assert subscriber_rows(app, ANN) == 1


def test_cli_erase_asks_first(app: Flask, world: dict[str, str]) -> None:
    refused = runner_for(app).invoke(args=["erase", ANN], input="n\n")
    assert refused.exit_code == 1
    assert subscriber_rows(app, ANN) == 1
    accepted = runner_for(app).invoke(args=["erase", ANN], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert subscriber_rows(app, ANN) == 0


# -- an erased address stays suppressed, whichever way it comes back ---------------------


@dataclass(frozen=True)
class Comeback:
    """A public way of naming an address again, and what its answer must say."""

    name: str
    call: Callable[[Flask, ApiClient, str, str], None]


def by_headers_api(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    body = {"recipients": [{"email": email}, {"email": "new@example.com"}], "campaign": "c2"}
    response = api.post("/lists/news/headers", body)
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    assert out["erased"] == [email]
    assert [r["email"] for r in out["recipients"]] == ["new@example.com"]


def by_headers_cli(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    result = runner_for(app).invoke(args=["headers", "--list", "news", "--email", email])
    assert result.exit_code == 1
    assert "erased" in result.output
    assert "List-Unsubscribe" not in result.stdout


def by_status(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    response = api.get(f"/lists/news/recipients/{quote(email, safe='')}")
    assert response.status_code == 200
    assert response.get_json()["subscribed"] is False
    assert set(response.get_json()["topics"].values()) == {False}
    cli = runner_for(app).invoke(args=["status", "--list", "news", "--email", email])
    assert json.loads(cli.stdout)["subscribed"] is False


def by_eligibility(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    for transactional in (False, True):
        body = {"emails": [email, "new@example.com"], "transactional": transactional}
        out = api.post("/lists/news/eligibility", body).get_json()
        assert out["eligible"] == ["new@example.com"]
        assert out["excluded"] == [{"email": email, "reason": "erased"}]


def by_old_link(app: Flask, api: ApiClient, email: str, url: str) -> None:
    with app.test_client() as client:
        assert one_click(client, url) == 404
        assert client.get(path_of(url)).status_code == 404


def by_sender_calls(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    path = f"/lists/news/recipients/{quote(email, safe='')}"
    reason = {"reason": "signed up again"}
    assert api.post(path + "/resubscribe", reason).status_code == 409
    assert api.post(path + "/unsubscribe", {}).get_json()["changed"] is False
    assert api.post("/lists/news/bounces", {"email": email}).status_code == 200
    assert api.post("/lists/news/complaints", {"email": email}).get_json() == {"recorded": False}


def by_minting_in_code(app: Flask, api: ApiClient, email: str, _url: str) -> None:
    from unsubsvc.services.erasure import AddressErased

    with pytest.raises(AddressErased):
        links_for(app, email)


COMEBACKS = [
    by_headers_api,
    by_headers_cli,
    by_status,
    by_eligibility,
    by_old_link,
    by_sender_calls,
    by_minting_in_code,
]


@pytest.mark.parametrize("comeback", COMEBACKS, ids=[c.__name__ for c in COMEBACKS])
def test_an_erased_address_stays_suppressed_and_unstored(
    app: Flask, api: ApiClient, world: dict[str, str], comeback: Callable[..., None]
) -> None:
    runtime = runtime_of(app)
    with transaction(app) as session:
        erase(session, runtime.keyring, ANN, now=runtime.now())
    for spelling in (ANN, ANN.lower(), ANN.upper()):
        comeback(app, api, spelling, world[ANN])
    assert subscriber_rows(app, ANN) == 0
    assert holding(app, ANN, ANN_LOCAL) == []


def test_a_token_minted_before_erasure_names_no_one(app: Flask, world: dict[str, str]) -> None:
    """The token carries only the public id, which erasure deletes with the row."""
    runtime = runtime_of(app)
    token = path_of(world[ANN]).rsplit("/", 1)[1]
    payload: TokenPayload = runtime.minter.signer.verify(Purpose.UNSUBSCRIBE, token)
    with transaction(app) as session:
        erase(session, runtime.keyring, ANN, now=runtime.now())
    with transaction(app) as session:
        assert (
            session.scalar(
                sa.select(Subscriber.id).where(Subscriber.public_id == payload.subscriber)
            )
            is None
        )
