"""The sender API: keys, lists, batch headers, state, changes, deliveries, complaints."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine.interfaces import DBAPICursor
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.helpers import event_rows, links_for, make_list, path_of, runner_for, status, transaction
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.db.models import Subscriber
from unsubsvc.web.context import runtime_of


def api_operations(app: Flask) -> list[tuple[str, str]]:
    from unsubsvc.web.api import api as registry

    out = []
    for op in registry.operations:
        if op.public:
            continue
        path = op.rule.replace("<name>", "news").replace("<address:email>", "a@example.com")
        path = path.replace("<path:campaign>", "c1").replace("<int:webhook_id>", "1")
        out.append((op.method, "/api/v1" + path))
    return out


def test_every_operation_needs_a_key(app: Flask, api: ApiClient) -> None:
    make_list(app)
    client = app.test_client()
    operations = api_operations(app)
    assert len(operations) >= 10
    for method, path in operations:
        for headers in (
            {},
            {"Authorization": "Bearer usk_000000000000_" + "x" * 43},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer"},
        ):
            response = client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.json is not None
            assert response.json["error"].startswith("send a valid API key")
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_key_stops_working(app: Flask, api: ApiClient) -> None:
    assert api.get("/lists").status_code == 200
    result = runner_for(app).invoke(args=["apikey", "revoke", "sender"])
    assert result.exit_code == 0
    assert api.get("/lists").status_code == 401


def test_apikey_cli_prints_once_and_lists_without_secret(app: Flask) -> None:
    runner = runner_for(app)
    made = runner.invoke(args=["apikey", "create", "esp"])
    key = made.stdout.strip()
    assert key.startswith("usk_") and len(key) > 50
    listed = runner.invoke(args=["apikey", "list"]).stdout
    assert '"name": "esp"' in listed and key not in listed
    assert runner.invoke(args=["apikey", "create", "esp"]).exit_code == 1
    response = app.test_client().get("/api/v1/lists", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    with transaction(app) as session:
        stored = session.execute(sa.text("SELECT key_hash FROM api_key")).scalar_one()
    assert key not in stored


def test_create_and_read_a_list(api: ApiClient) -> None:
    created = api.post(
        "/lists",
        {"name": "news", "display_name": "News", "topics": ["product"], "frequencies": ["weekly"]},
    )
    assert created.status_code == 201
    assert created.json == {
        "name": "news",
        "display_name": "News",
        "topics": [{"slug": "product", "name": "Product"}],
        "frequencies": ["weekly"],
    }
    assert api.get("/lists/news").json == created.json
    assert api.post("/lists", {"name": "news"}).status_code == 409
    assert api.get("/lists/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "ok", "topics": ["a b"]}, "topics.0"),
        ({"name": "ok", "colour": "red"}, "colour"),
        ({}, "name"),
    ],
    ids=["bad-name", "bad-topic", "unknown-field", "missing-name"],
)
def test_validation_errors_name_the_field(api: ApiClient, body: dict[str, Any], field: str) -> None:
    response = api.post("/lists", body)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json["fields"]]
    assert field in response.json["error"]


def test_malformed_bodies(app: Flask, api: ApiClient) -> None:
    make_list(app)
    not_json = api.client.post(
        "/api/v1/lists", data="name=news", headers=api.headers, content_type="text/plain"
    )
    assert not_json.json is not None
    assert (not_json.status_code, not_json.json["error"]) == (
        415,
        "send the body as application/json",
    )
    broken = api.client.post(
        "/api/v1/lists", data="{", headers=api.headers, content_type="application/json"
    )
    assert broken.status_code == 400
    huge = {"recipients": [{"email": f"user{i}@example.com" * 3} for i in range(60_000)]}
    too_big = api.post("/lists/news/headers", huge)
    assert too_big.status_code == 413
    assert "too large" in too_big.json["error"]


def test_batch_of_10000_headers(app: Flask, api: ApiClient) -> None:
    make_list(app)
    emails = [f"Person.{i}@Example.com" for i in range(10_000)]
    body: dict[str, Any] = {"campaign": "c1", "recipients": [{"email": e} for e in emails]}
    body["recipients"][5]["topic"] = "events"

    response = api.post("/lists/news/headers", body)

    assert response.status_code == 200
    sets = response.json["recipients"]
    assert [s["email"] for s in sets] == emails
    assert all(s["list_unsubscribe_post"] == "List-Unsubscribe=One-Click" for s in sets)
    assert all(s["list_unsubscribe"] == f"<{s['unsubscribe_url']}>" for s in sets)
    with transaction(app) as session:
        signer = runtime_of(app).minter.signer
        payloads = [
            signer.verify(Purpose.UNSUBSCRIBE, path_of(s["unsubscribe_url"]).rsplit("/", 1)[1])
            for s in sets
        ]
        by_public_id = dict(
            session.execute(sa.select(Subscriber.public_id, Subscriber.email)).all()
        )
    # Every token names its own recipient, the campaign, and the topic where asked.
    assert [by_public_id[p.subscriber] for p in payloads] == emails
    assert len({p.subscriber for p in payloads}) == 10_000
    assert {p.campaign_id for p in payloads} == {payloads[0].campaign_id} != {None}
    assert [i for i, p in enumerate(payloads) if p.topic_id is not None] == [5]
    # A sample of the URIs, POSTed as a mail client would, unsubscribes exactly those.
    client = app.test_client(use_cookies=False)
    for i in range(0, 10_000, 500):
        answer = client.post(path_of(sets[i]["unsubscribe_url"]), data="List-Unsubscribe=One-Click")
        assert answer.status_code == 200
    assert status(app, "person.0@example.com")["subscribed"] is False
    assert status(app, "person.1@example.com")["subscribed"] is True
    assert len(event_rows(app)) == 20


def test_known_addresses_need_no_write(app: Flask, api: ApiClient) -> None:
    make_list(app)
    body = {"campaign": "c1", "recipients": [{"email": f"p{i}@example.com"} for i in range(300)]}
    first = api.post("/lists/news/headers", body)
    writes: list[str] = []

    def spy(conn: sa.Connection, cursor: DBAPICursor, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    engine = runtime_of(app).engine
    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        second = api.post("/lists/news/headers", body)
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    assert second.status_code == 200
    assert writes == []

    # Same subscriber for each address, so the same public id in each token.
    def ids(response: TestResponse) -> list[str]:
        assert response.json is not None
        return [
            s["unsubscribe_url"].split("/u/")[1].split(".")[2] for s in response.json["recipients"]
        ]

    assert ids(first) == ids(second)


def test_batch_refuses_unknown_topic_and_too_many(app: Flask, api: ApiClient) -> None:
    make_list(app)
    unknown = api.post(
        "/lists/news/headers", {"recipients": [{"email": "a@example.com", "topic": "x"}]}
    )
    assert unknown.status_code == 400 and "no topic" in unknown.json["error"]
    too_many = api.post(
        "/lists/news/headers", {"recipients": [{"email": "a@example.com"}] * 10_001}
    )
    assert too_many.status_code == 422
    assert "recipients" in too_many.json["error"]
    bad = api.post(
        "/lists/news/headers", {"recipients": [{"email": "ok@example.com"}, {"email": "nope"}]}
    )
    assert bad.status_code == 422
    assert [f["field"] for f in bad.json["fields"]] == ["recipients.1.email"]


def test_recipient_state_and_api_changes(app: Flask, api: ApiClient) -> None:
    make_list(app)
    assert api.get("/lists/news/recipients/Ann@Example.com").json["subscribed"] is True
    out = api.post("/lists/news/recipients/ann@example.com/unsubscribe", {"campaign": "c9"})
    assert out.status_code == 200
    assert out.json["changed"] is True and out.json["status"]["subscribed"] is False
    again = api.post("/lists/news/recipients/ann@example.com/unsubscribe", {})
    assert again.json["changed"] is False
    no_reason = api.post("/lists/news/recipients/ann@example.com/resubscribe", {})
    assert no_reason.status_code == 422 and no_reason.json["fields"][0]["field"] == "reason"
    back = api.post(
        "/lists/news/recipients/ann@example.com/resubscribe", {"reason": "signed up again"}
    )
    assert back.json["status"]["subscribed"] is True
    assert [(e.kind, e.channel, e.detail) for e in event_rows(app)] == [
        ("unsubscribe", "api", None),
        ("resubscribe", "api", {"reason": "signed up again"}),
    ]


def test_spam_complaint_records_a_complaint_and_unsubscribes(app: Flask, api: ApiClient) -> None:
    make_list(app)
    for _ in range(2):  # the same report twice counts once
        response = api.post(
            "/lists/news/complaints", {"email": "Ann@Example.com", "campaign": "c1"}
        )
        assert response.status_code == 200
    assert status(app)["subscribed"] is False
    assert [(e.kind, e.detail) for e in event_rows(app)] == [
        ("complaint", None),
        ("unsubscribe", {"cause": "complaint"}),
    ]


def test_bounces_and_deliveries(app: Flask, api: ApiClient) -> None:
    make_list(app)
    for count in (600, 400):
        response = api.post(
            "/lists/news/campaigns/c1/deliveries",
            {"count": count, "sent_at": "2026-03-02T09:00:00+00:00", "segment": "eu"},
        )
        assert response.status_code == 201
    assert response.json == {"campaign": "c1", "delivered": 1000}
    naive = api.post(
        "/lists/news/campaigns/c1/deliveries", {"count": 1, "sent_at": "2026-03-02T09:00:00"}
    )
    assert naive.status_code == 422
    assert (
        api.post("/lists/news/bounces", {"email": "b@example.com", "type": "soft"}).status_code
        == 200
    )
    (event,) = event_rows(app)
    assert (event.kind, event.detail) == ("bounce", {"type": "soft"})
    assert status(app, "b@example.com")["subscribed"] is True


# --- eligibility: the state rules, exactly -------------------------------------------------

RECIPIENTS = ["plain", "unsub", "topic-out", "paused", "monthly", "all-out", "paused-ended"]


@pytest.fixture
def states(app: Flask, api: ApiClient, clock: FakeClock) -> None:
    """One recipient in each state, set through the public interfaces."""
    from datetime import timedelta

    make_list(app)
    make_list(app, "other")
    client = app.test_client()
    for name in RECIPIENTS:
        api.post("/lists/news/headers", {"recipients": [{"email": f"{name}@example.com"}]})
    api.post("/lists/news/recipients/unsub@example.com/unsubscribe", {})
    api.post("/lists/news/recipients/topic-out@example.com/unsubscribe", {"topic": "events"})
    from unsubsvc.services import preferences as prefs
    from unsubsvc.services import unsubscribe as svc

    def payload(email: str, list_name: str = "news") -> TokenPayload:
        links = links_for(app, email, list_name=list_name, campaign=None)
        return runtime_of(app).minter.signer.verify(
            Purpose.PREFERENCES, path_of(links.preferences_url).rsplit("/", 1)[1]
        )

    paused, ended = payload("paused@example.com"), payload("paused-ended@example.com")
    monthly, all_out = payload("monthly@example.com"), payload("all-out@example.com", "other")
    with transaction(app) as session:
        prefs.pause(session, svc.resolve(session, paused), "1m", now=clock.now)
        prefs.pause(session, svc.resolve(session, ended), "2w", now=clock.now - timedelta(days=20))
        prefs.set_frequency(session, svc.resolve(session, monthly), "monthly", now=clock.now)
        prefs.unsubscribe_all(session, svc.resolve(session, all_out), now=clock.now)
    del client


ALWAYS_OUT = {"unsub": "unsubscribed", "paused": "paused", "all-out": "unsubscribed_all"}


@pytest.mark.parametrize(
    ("query", "excluded"),
    [
        ({}, ALWAYS_OUT),
        ({"topic": "events"}, {**ALWAYS_OUT, "topic-out": "topic_opted_out"}),
        ({"topic": "product"}, ALWAYS_OUT),
        ({"cadence": "weekly"}, {**ALWAYS_OUT, "monthly": "frequency"}),
        ({"cadence": "monthly"}, ALWAYS_OUT),
        ({"transactional": True, "topic": "events", "cadence": "weekly"}, {}),
    ],
    ids=["any", "topic-events", "topic-product", "weekly-send", "monthly-send", "transactional"],
)
def test_eligibility_follows_the_state_rules(
    api: ApiClient, states: None, query: dict[str, Any], excluded: dict[str, str]
) -> None:
    emails = [f"{name}@example.com" for name in RECIPIENTS] + ["never-seen@example.com"]
    response = api.post("/lists/news/eligibility", {"emails": emails, **query})
    assert response.status_code == 200
    got = {e["email"].split("@")[0]: e["reason"] for e in response.json["excluded"]}
    assert got == excluded
    assert response.json["eligible"] == [e for e in emails if e.split("@")[0] not in excluded]


def test_eligibility_refuses_unknown_cadence_and_topic(app: Flask, api: ApiClient) -> None:
    make_list(app)
    for extra in ({"cadence": "daily"}, {"topic": "sports"}):
        response = api.post("/lists/news/eligibility", {"emails": ["a@example.com"], **extra})
        assert response.status_code == 400


def test_webhook_endpoints_by_api(app: Flask, api: ApiClient) -> None:
    created = api.post("/webhooks", {"url": "https://hooks.example.com/unsub"})
    assert created.status_code == 201
    assert created.json["secret"].startswith("whsec_")
    hook_id = created.json["id"]
    listed = api.get("/webhooks").json["webhooks"]
    assert listed == [
        {
            "id": hook_id,
            "url": "https://hooks.example.com/unsub",
            "active": True,
            "pending": 0,
            "failing_since": None,
            "disabled_at": None,
            "disabled_reason": None,
            "previous_secret_until": None,
        }
    ]
    assert "secret" not in listed[0]
    bad = api.post("/webhooks", {"url": "ftp://example.com/x"})
    assert bad.status_code == 400
    deleted = api.client.delete(f"/api/v1/webhooks/{hook_id}", headers=api.headers)
    assert deleted.status_code == 204
    assert api.get("/webhooks").json["webhooks"][0]["active"] is False
    missing = api.client.delete("/api/v1/webhooks/999", headers=api.headers)
    assert missing.status_code == 404


# -- addresses and campaigns with '/', strict types, errors in words


def feed_changes(api: ApiClient, wanted: int = 1) -> list[dict[str, Any]]:
    """The feed's changes, polled briefly: on PostgreSQL a change shows once no transaction
    older than it runs anywhere in the cluster (services.feed), and tests share one."""
    for _ in range(50):
        changes: list[dict[str, Any]] = api.get("/suppressions").json["changes"]
        if len(changes) >= wanted:
            break
        time.sleep(0.1)
    return changes


@pytest.mark.parametrize("encoded", ["a%2Fb%40example.com", "a/b@example.com"])
def test_an_address_with_a_slash_works_on_every_path(
    app: Flask, api: ApiClient, encoded: str
) -> None:
    """'/' is valid in a local part: percent-encoded or not, every {email} route finds it."""
    make_list(app)
    address = "a/b@example.com"
    headers = api.post("/lists/news/headers", {"recipients": [{"email": address}]})
    assert headers.status_code == 200
    assert headers.json["recipients"][0]["email"] == address
    state = api.get(f"/lists/news/recipients/{encoded}")
    assert state.status_code == 200, state.json
    assert (state.json["email"], state.json["subscribed"]) == (address, True)
    off = api.post(f"/lists/news/recipients/{encoded}/unsubscribe", {"campaign": "2026/03"})
    assert off.status_code == 200, off.json
    assert (off.json["changed"], off.json["status"]["subscribed"]) == (True, False)
    assert api.get(f"/lists/news/recipients/{encoded}").json["subscribed"] is False
    [change] = feed_changes(api)
    assert (change["email"], change["campaign"]) == (address, "2026/03")
    on = api.post(f"/lists/news/recipients/{encoded}/resubscribe", {"reason": "asked again"})
    assert on.status_code == 200 and on.json["status"]["subscribed"] is True
    exported = api.get(f"/recipients/{encoded}/export")
    assert exported.status_code == 200 and exported.json["address"] == address
    erased = api.client.delete(f"/api/v1/recipients/{encoded}", headers=api.headers)
    assert erased.status_code == 200
    assert erased.json is not None and erased.json["erased"] is True


def test_a_campaign_with_a_slash_records_deliveries(app: Flask, api: ApiClient) -> None:
    make_list(app)
    response = api.post("/lists/news/campaigns/2026%2F03%2Fnews/deliveries", {"count": 3})
    assert response.status_code == 201, response.json
    assert response.json == {"campaign": "2026/03/news", "delivered": 3}


@pytest.mark.parametrize(
    "sent_at",
    [0, 1772443800, 1.5, "0", "1772443800", "2026-03-02T09:00:00", "2026-03-02", True, "soon"],
)
def test_times_must_be_iso_8601_with_a_zone(app: Flask, api: ApiClient, sent_at: Any) -> None:
    make_list(app)
    response = api.post("/lists/news/campaigns/c1/deliveries", {"count": 1, "sent_at": sent_at})
    assert response.status_code == 422
    assert response.json["fields"] == [
        {"field": "sent_at", "message": "must be an ISO 8601 time with a time zone"}
    ]
    assert response.json["error"] == (
        "invalid body: sent_at: must be an ISO 8601 time with a time zone"
    )


@pytest.mark.parametrize("since", ["0", "1772443800", "2026-03-02T09:00:00"])
def test_the_feed_takes_only_iso_times(api: ApiClient, since: str) -> None:
    response = api.get("/suppressions", query_string={"since": since})
    assert response.status_code == 422
    assert response.json["fields"][0]["message"] == "must be an ISO 8601 time with a time zone"
    assert (
        api.get("/suppressions", query_string={"since": "2026-03-02T09:00:00Z"}).status_code == 200
    )


@pytest.mark.parametrize("value", [0, 1, "yes", "true", None])
def test_booleans_must_be_json_true_or_false(app: Flask, api: ApiClient, value: Any) -> None:
    make_list(app)
    response = api.post(
        "/lists/news/eligibility", {"emails": ["a@example.com"], "transactional": value}
    )
    assert response.status_code == 422
    assert response.json["fields"] == [
        {"field": "transactional", "message": "must be true or false"}
    ]


@pytest.mark.parametrize("count", ["5", 5.0, True])
def test_counts_must_be_json_integers(app: Flask, api: ApiClient, count: Any) -> None:
    make_list(app)
    response = api.post("/lists/news/campaigns/c1/deliveries", {"count": count})
    assert response.status_code == 422
    assert response.json["fields"] == [{"field": "count", "message": "must be a whole number"}]


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("/lists/news/bounces", {"email": "not an address"}, "email", "must be an e-mail address"),
        ("/lists/news/bounces", {}, "email", "is required"),
        ("/lists/news/bounces", {"email": "a@example.com", "type": "x"}, "type",
         "must be one of 'hard' or 'soft'"),
        ("/lists", {"name": "Bad Name"}, "name",
         "must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
        ("/lists", {"name": "ok", "colour": "red"}, "colour",
         "is not a field of this request (check the spelling)"),
        ("/lists", {"name": "ok", "topics": ["a", "a"]}, "topics", "items must be unique"),
        ("/lists/news/campaigns/c1/deliveries", {"count": -1}, "count", "must be at least 0"),
        ("/lists/news/eligibility", {"emails": []}, "emails", "must have at least 1 items"),
    ],
)  # fmt: skip
def test_validation_messages_are_words_not_patterns(
    app: Flask, api: ApiClient, path: str, body: dict[str, Any], field: str, message: str
) -> None:
    make_list(app)
    response = api.post(path, body)
    assert response.status_code == 422
    assert set(response.json) == {"error", "fields"}
    assert {"field": field, "message": message} in response.json["fields"]
    assert response.json["error"].startswith("invalid body: ")
    for text in [response.json["error"], *(f["message"] for f in response.json["fields"])]:
        assert "pattern" not in text and "^" not in text and "\\" not in text


def test_an_operation_name_after_an_address_is_not_part_of_it(app: Flask, api: ApiClient) -> None:
    """A domain holds no '/': '.../a@example.com/unsubscribe' is never an address."""
    make_list(app)
    wrong = api.get("/lists/news/recipients/a@example.com/unsubscribe")
    assert wrong.status_code == 405
    erase = api.client.delete("/api/v1/recipients/a@example.com/export", headers=api.headers)
    assert erase.status_code == 405
    assert api.get("/lists/news/recipients/abc").status_code == 400
