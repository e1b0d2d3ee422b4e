"""Amazon SES through SNS at ``POST /inbound/ses``, signed with a certificate the test makes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.esp_signing import CERT_URL, SnsSigner, fixture, sns_notification
from tests.helpers import count_events, make_list, snapshot
from unsubsvc.core.esp_ses import CertificateCache
from unsubsvc.web.esp import ses as ses_web

SIGNER = SnsSigner.make()
OTHER = SnsSigner.make()
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"


@pytest.fixture(autouse=True)
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Serve SIGNER's certificate at CERT_URL instead of fetching; return the URLs asked for."""
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        if url == CERT_URL:
            return SIGNER.pem
        if "Action=ConfirmSubscription" in url:
            return b"<ConfirmSubscriptionResponse/>"
        raise OSError(f"no such test URL: {url}")

    monkeypatch.setattr(ses_web, "fetch_url", fetch)
    monkeypatch.setattr(ses_web, "CERTIFICATES", CertificateCache(lambda u: ses_web.fetch_url(u)))
    return asked


def post(app: Flask, envelope: dict[str, Any] | bytes) -> TestResponse:
    """POST as SNS does: JSON with Content-Type text/plain and the message type header."""
    raw = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    kind = "Notification" if isinstance(envelope, bytes) else str(envelope.get("Type"))
    return app.test_client().post(
        "/inbound/ses",
        data=raw,
        content_type="text/plain; charset=UTF-8",
        headers={"x-amz-sns-message-type": kind},
    )


@pytest.fixture
def subscribed(app: Flask, api: ApiClient) -> Callable[[str], None]:
    """Lists news and other; a function putting an address on both."""
    make_list(app)
    make_list(app, "other")

    def add(email: str) -> None:
        for name in ("news", "other"):
            made = api.post(f"/lists/{name}/headers", {"recipients": [{"email": email}]})
            assert made.status_code == 200

    return add


def excluded(api: ApiClient, email: str, list_name: str = "news") -> str | None:
    """Return why ``email`` may not be mailed on the list now, or None if it may."""
    answer = api.post(f"/lists/{list_name}/eligibility", {"emails": [email]})
    assert answer.status_code == 200
    reasons = {e["email"]: e["reason"] for e in answer.json["excluded"]}
    return reasons.get(email)


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_hard_bounce_makes_the_address_ineligible(
    app: Flask, api: ApiClient, subscribed: Callable[[str], None], version: str
) -> None:
    subscribed("jane@example.com")
    answer = post(app, SIGNER.sign(sns_notification(fixture("ses_bounce.json")), version))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"recorded": 1}
    assert excluded(api, "jane@example.com") == "bounced"
    # The message's List-Id named news: the other list is untouched.
    assert excluded(api, "jane@example.com", "other") is None


def test_complaint_suppresses_across_lists(
    app: Flask, api: ApiClient, subscribed: Callable[[str], None]
) -> None:
    subscribed("richard@example.com")
    answer = post(app, SIGNER.sign(sns_notification(fixture("ses_complaint.json"))))
    assert answer.status_code == 200
    assert excluded(api, "richard@example.com") == "unsubscribed"
    assert excluded(api, "richard@example.com", "other") == "unsubscribed"


def test_the_same_event_twice_is_recorded_once(
    app: Flask, api: ApiClient, subscribed: Callable[[str], None]
) -> None:
    subscribed("jane@example.com")
    envelope = SIGNER.sign(sns_notification(fixture("ses_bounce.json")))
    assert post(app, envelope).json == {"recorded": 1}
    before = snapshot(app)
    # Again, and under another SNS MessageId (a second topic): the feedbackId is the same.
    assert post(app, envelope).json == {"recorded": 0}
    again = SIGNER.sign(sns_notification(fixture("ses_bounce.json"), MessageId="other-id"))
    assert post(app, again).json == {"recorded": 0}
    assert snapshot(app) == before


def _unsigned(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k != "Signature"}


@pytest.mark.parametrize(
    "tamper",
    [
        _unsigned,
        lambda e: {**e, "Signature": OTHER.sign(e)["Signature"]},
        lambda e: {**e, "Message": e["Message"].replace("jane@", "mary@")},
        lambda e: {**e, "SignatureVersion": "1"},
        lambda e: SIGNER.sign({**e, "SigningCertURL": CERT_URL.replace(".com/", ".com.evil.com/")}),
        lambda e: SIGNER.sign({**e, "SigningCertURL": CERT_URL.replace("https:", "http:")}),
    ],
    ids=["unsigned", "other-key", "changed", "wrong-version", "lookalike-host", "http"],
)
def test_badly_signed_messages_change_nothing(
    app: Flask,
    subscribed: Callable[[str], None],
    fetched: list[str],
    tamper: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    subscribed("jane@example.com")
    subscribed("mary@example.com")
    before = snapshot(app)
    answer = post(app, tamper(SIGNER.sign(sns_notification(fixture("ses_bounce.json")))))
    assert answer.status_code in (401, 403)
    assert snapshot(app) == before
    assert set(fetched) <= {CERT_URL}


def test_a_signature_by_an_expired_certificate_changes_nothing(
    app: Flask, subscribed: Callable[[str], None], clock: FakeClock
) -> None:
    subscribed("jane@example.com")
    clock.advance(days=31)  # SIGNER's certificate lasts 31 days from the day before
    before = snapshot(app)
    answer = post(app, SIGNER.sign(sns_notification(fixture("ses_bounce.json"))))
    assert answer.status_code == 403
    assert "expired" in answer.get_data(as_text=True)
    assert snapshot(app) == before


def test_topics_not_configured_are_refused(
    make_app: Callable[..., Flask], fetched: list[str]
) -> None:
    app = make_app(ses_topic_arns=("arn:aws:sns:us-east-1:123456789012:Bounces",))
    make_list(app)
    before = snapshot(app)
    answer = post(app, SIGNER.sign(sns_notification(fixture("ses_bounce.json"))))
    assert answer.status_code == 403
    assert snapshot(app) == before
    allowed = make_app(ses_topic_arns=(TOPIC,))
    assert (
        post(allowed, SIGNER.sign(sns_notification(fixture("ses_bounce.json")))).status_code == 200
    )


def test_subscription_confirmation_visits_the_subscribe_url(app: Flask, fetched: list[str]) -> None:
    data = fixture("ses_sns_subscription_confirmation.json")
    answer = post(app, SIGNER.sign(data))
    assert answer.status_code == 200
    assert fetched == [CERT_URL, data["SubscribeURL"]]


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-west-2.amazonaws.com.evil.com/?Action=ConfirmSubscription&Token=x",
        "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://evil.com/?Action=ConfirmSubscription&Token=x",
    ],
)
def test_subscribe_urls_off_sns_are_not_visited(app: Flask, fetched: list[str], url: str) -> None:
    data = {**fixture("ses_sns_subscription_confirmation.json"), "SubscribeURL": url}
    answer = post(app, SIGNER.sign(data))
    assert answer.status_code == 403
    assert fetched == [CERT_URL]


def test_unsigned_subscription_confirmation_is_not_visited(app: Flask, fetched: list[str]) -> None:
    data = fixture("ses_sns_subscription_confirmation.json")
    assert post(app, data).status_code == 403  # the sample's placeholder signature
    assert data["SubscribeURL"] not in fetched


def test_other_notifications_are_acknowledged(
    app: Flask, subscribed: Callable[[str], None]
) -> None:
    subscribed("jane@example.com")
    before = snapshot(app)
    for message in (
        fixture("ses_delivery.json"),
        "Successfully validated SNS topic for Amazon SES",
    ):
        envelope = sns_notification({})
        envelope["Message"] = message if isinstance(message, str) else json.dumps(message)
        answer = post(app, SIGNER.sign(envelope))
        assert answer.status_code == 200
        assert answer.json == {"recorded": 0}
    unsubscribed = SIGNER.sign(
        {**fixture("ses_sns_subscription_confirmation.json"), "Type": "UnsubscribeConfirmation"}
    )
    assert post(app, unsubscribed).status_code == 200
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        json.dumps({"Type": "Notification"}).encode(),
        json.dumps({**fixture("ses_sns_notification.json"), "Type": "Surprise"}).encode(),
    ],
)
def test_malformed_requests_are_400(app: Flask, raw: bytes) -> None:
    make_list(app)
    before = snapshot(app)
    assert post(app, raw).status_code == 400
    assert snapshot(app) == before


def test_malformed_ses_json_is_400(app: Flask, subscribed: Callable[[str], None]) -> None:
    subscribed("jane@example.com")
    bounce = fixture("ses_bounce.json")
    bounce["bounce"]["bouncedRecipients"] = [{"emailAddress": 7}]
    before = snapshot(app)
    assert post(app, SIGNER.sign(sns_notification(bounce))).status_code == 400
    assert snapshot(app) == before
    assert count_events(app, "bounce") == 0
