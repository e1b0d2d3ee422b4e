"""SendGrid's signed Event Webhook at ``POST /inbound/sendgrid``, with a key the test makes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.esp_signing import FIXTURES, SendGridSigner
from tests.helpers import make_list, snapshot
from unsubsvc.core.esp_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER

SIGNER = SendGridSigner.make()
OTHER = SendGridSigner.make()
SAMPLE = (FIXTURES / "sendgrid_events.json").read_bytes()
ADDRESSES = [
    "bounced@test.com",
    "blocked@test.com",
    "dropped@test.com",
    "dropped-spam@test.com",
    "spam@test.com",
    "unsub@test.com",
    "group-unsub@test.com",
    "example@test.com",
]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app that knows SIGNER's verification key."""
    return make_app(sendgrid_public_key=SIGNER.public_key)


@pytest.fixture
def subscribed(app: Flask, api: ApiClient) -> None:
    """Lists news and other, every sample address on both."""
    make_list(app)
    make_list(app, "other")
    for name in ("news", "other"):
        recipients = [{"email": e} for e in ADDRESSES]
        assert api.post(f"/lists/{name}/headers", {"recipients": recipients}).status_code == 200


def post(app: Flask, body: bytes, headers: dict[str, str] | None = None) -> TestResponse:
    return app.test_client().post(
        "/inbound/sendgrid",
        data=body,
        content_type="application/json",
        headers=SIGNER.headers(body) if headers is None else headers,
    )


def reasons(api: ApiClient, list_name: str) -> dict[str, str]:
    answer = api.post(f"/lists/{list_name}/eligibility", {"emails": ADDRESSES})
    assert answer.status_code == 200
    return {e["email"]: e["reason"] for e in answer.json["excluded"]}


def test_documented_sample_is_applied(app: Flask, api: ApiClient, subscribed: None) -> None:
    answer = post(app, SAMPLE)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"recorded": 6}
    news, other = reasons(api, "news"), reasons(api, "other")
    # The hard bounce named list news (custom arg unsubsvc_list): bounced there only.
    assert news["bounced@test.com"] == "bounced"
    assert "bounced@test.com" not in other
    # A dropped "Bounced Address" is a hard bounce on every list of the address.
    assert news["dropped@test.com"] == other["dropped@test.com"] == "bounced"
    # A complaint suppresses across lists.
    assert news["spam@test.com"] == other["spam@test.com"] == "unsubscribed"
    assert news["unsub@test.com"].startswith("unsubscribed")
    # One soft bounce, spam-content drops and opens/clicks change nothing.
    for email in ("blocked@test.com", "dropped-spam@test.com", "example@test.com"):
        assert email not in news and email not in other


def test_the_same_event_twice_is_recorded_once(app: Flask, subscribed: None) -> None:
    assert post(app, SAMPLE).json == {"recorded": 6}
    before = snapshot(app)
    assert post(app, SAMPLE).json == {"recorded": 0}
    one = [e for e in json.loads(SAMPLE) if e["event"] == "spamreport"]
    assert post(app, json.dumps(one).encode()).json == {"recorded": 0}
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: SIGNER.headers(SAMPLE)[SIGNATURE_HEADER]},
        {TIMESTAMP_HEADER: "1772443800"},
        OTHER.headers(SAMPLE),
        SIGNER.headers(SAMPLE, timestamp="1772443801") | {TIMESTAMP_HEADER: "1772443800"},
        SIGNER.headers(SAMPLE.replace(b"bounced@", b"bounce2@")),
        {SIGNATURE_HEADER: "not base64!", TIMESTAMP_HEADER: "1772443800"},
    ],
    ids=[
        "unsigned",
        "no-timestamp",
        "no-signature",
        "other-key",
        "other-time",
        "other-body",
        "junk",
    ],
)
def test_badly_signed_requests_change_nothing(
    app: Flask, subscribed: None, headers: dict[str, str]
) -> None:
    before = snapshot(app)
    answer = post(app, SAMPLE, headers)
    assert answer.status_code in (401, 403)
    assert snapshot(app) == before


def test_an_old_signature_is_refused(app: Flask, subscribed: None, clock: FakeClock) -> None:
    """A captured request replayed more than three days later changes nothing."""
    clock.advance(days=3, seconds=1)
    before = snapshot(app)
    assert post(app, SAMPLE).status_code == 403
    assert snapshot(app) == before


def test_without_a_configured_key_everything_is_refused(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    make_list(app)
    before = snapshot(app)
    assert post(app, SAMPLE).status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"event": "bounce"}', b"[1]", b'[{"event": "spamreport"}]'],
)
def test_malformed_signed_bodies_are_400(app: Flask, subscribed: None, body: bytes) -> None:
    before = snapshot(app)
    assert post(app, body).status_code == 400
    assert snapshot(app) == before


def test_events_not_acted_on_are_acknowledged(app: Flask, subscribed: None) -> None:
    ignored: list[dict[str, Any]] = [
        e for e in json.loads(SAMPLE) if e["event"] in ("processed", "delivered", "open", "click")
    ]
    before = snapshot(app)
    answer = post(app, json.dumps(ignored).encode())
    assert answer.status_code == 200 and answer.json == {"recorded": 0}
    assert snapshot(app) == before
