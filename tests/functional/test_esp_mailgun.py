"""Mailgun's webhooks at ``POST /inbound/mailgun``, from Mailgun's documented samples."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.esp_signing import fixture
from tests.helpers import make_list, snapshot

KEY = "key-" + "3ax6xnjp29jd6fds4gc373sgvjxteol0"
ADDRESS = "alice@example.com"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(mailgun_signing_key=KEY)


@pytest.fixture
def subscribed(app: Flask, api: ApiClient) -> None:
    make_list(app)
    make_list(app, "other")
    for name in ("news", "other"):
        assert (
            api.post(f"/lists/{name}/headers", {"recipients": [{"email": ADDRESS}]}).status_code
            == 200
        )


def signed(
    body: dict[str, Any], clock: FakeClock, *, key: str = KEY, age: float = 0
) -> dict[str, Any]:
    """Re-sign a sample with KEY, now (or ``age`` seconds ago), with a fresh token."""
    timestamp = str(int(clock.now.timestamp() - age))
    token = secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {**body, "signature": {"timestamp": timestamp, "token": token, "signature": digest}}


def sample(name: str = "mailgun_failed_permanent.json", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = fixture(name)
    body["event-data"].update(changes)
    return body


def json_of(answer: TestResponse) -> dict[str, Any]:
    body = answer.get_json()
    assert isinstance(body, dict)
    return body


def post(app: Flask, body: Any, raw: bytes | None = None) -> TestResponse:
    return app.test_client().post(
        "/inbound/mailgun",
        data=raw if raw is not None else json.dumps(body),
        content_type="application/json",
    )


def reasons(api: ApiClient, list_name: str) -> dict[str, str]:
    answer = api.post(f"/lists/{list_name}/eligibility", {"emails": [ADDRESS]})
    assert answer.status_code == 200
    return {e["email"]: e["reason"] for e in answer.json["excluded"]}


def test_signed_permanent_failure_is_a_hard_bounce(
    app: Flask, api: ApiClient, clock: FakeClock, subscribed: None
) -> None:
    answer = post(app, signed(sample(), clock))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"recorded": 1}
    assert reasons(api, "news") == reasons(api, "other") == {ADDRESS: "bounced"}


def test_user_variables_name_the_list(
    app: Flask, api: ApiClient, clock: FakeClock, subscribed: None
) -> None:
    body = sample()
    body["event-data"]["user-variables"] = {"unsubsvc_list": "other", "unsubsvc_campaign": "c9"}
    assert post(app, signed(body, clock)).status_code == 200
    assert reasons(api, "other") == {ADDRESS: "bounced"}
    assert reasons(api, "news") == {}


def test_temporary_failures_suppress_at_the_limit(
    app: Flask, api: ApiClient, clock: FakeClock, subscribed: None
) -> None:
    for number in range(1, 4):
        body = sample(severity="temporary", id=f"temp-{number}")
        assert post(app, signed(body, clock)).status_code == 200
        assert reasons(api, "news") == ({ADDRESS: "bounced"} if number == 3 else {})


def test_complaint_suppresses_on_every_list(
    app: Flask, api: ApiClient, clock: FakeClock, subscribed: None
) -> None:
    assert post(app, signed(sample("mailgun_complained.json"), clock)).status_code == 200
    assert reasons(api, "news") == reasons(api, "other") == {ADDRESS: "unsubscribed"}


def test_unsubscribed_event(app: Flask, api: ApiClient, clock: FakeClock, subscribed: None) -> None:
    body = sample("mailgun_complained.json", event="unsubscribed", id="unsub-1")
    body["event-data"]["user-variables"] = {"unsubsvc_list": "news"}
    assert post(app, signed(body, clock)).status_code == 200
    assert reasons(api, "news") == {ADDRESS: "unsubscribed"}
    assert reasons(api, "other") == {}


def test_same_event_id_twice_is_recorded_once(
    app: Flask, clock: FakeClock, subscribed: None
) -> None:
    assert post(app, signed(sample(), clock)).json == {"recorded": 1}
    events_before = snapshot(app)["event"]
    again = post(app, signed(sample(), clock))  # a new token: a second delivery
    assert again.status_code == 200
    assert again.json == {"recorded": 0}
    assert snapshot(app)["event"] == events_before


def test_replayed_token_is_refused(app: Flask, clock: FakeClock, subscribed: None) -> None:
    body = signed(sample(), clock)
    assert post(app, body).status_code == 200
    before = snapshot(app)
    replay = post(app, body)
    assert replay.status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize("age", [301, -301, 10**6])
def test_stale_or_future_signature_is_refused(
    app: Flask, clock: FakeClock, subscribed: None, age: float
) -> None:
    before = snapshot(app)
    assert post(app, signed(sample(), clock, age=age)).status_code == 403
    assert snapshot(app) == before


def test_wrong_signature_is_refused(app: Flask, clock: FakeClock, subscribed: None) -> None:
    before = snapshot(app)
    assert post(app, signed(sample(), clock, key="another key")).status_code == 403
    unsigned = sample()  # the documented sample's own signature: not under our key
    answer = post(app, unsigned)
    assert answer.status_code == 403
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before


def test_unconfigured_endpoint_refuses_everything(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app()
    make_list(app)
    before = snapshot(app)
    assert post(app, signed(sample(), clock)).status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: b"not json",
        lambda body: b"[1, 2]",
        lambda body: json.dumps({"event-data": body["event-data"]}).encode(),
        lambda body: json.dumps({**body, "event-data": "failed"}).encode(),
        lambda body: json.dumps({**body, "signature": {**body["signature"], "token": 5}}).encode(),
    ],
)
def test_malformed_bodies_are_400(
    app: Flask, clock: FakeClock, subscribed: None, mangle: Callable[[Any], bytes]
) -> None:
    before = snapshot(app)
    answer = post(app, None, raw=mangle(signed(sample(), clock)))
    assert answer.status_code == 400
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": None},
        {"recipient": "nobody"},
        {"id": None},
        {"severity": None},
        {"event": None},
    ],
)
def test_missing_event_fields_are_400(
    app: Flask, clock: FakeClock, subscribed: None, changes: dict[str, Any]
) -> None:
    before = snapshot(app)
    answer = post(app, signed(sample(**changes), clock))
    assert answer.status_code == 400
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before
