"""Postmark's webhooks at ``POST /inbound/postmark``, from Postmark's documented samples."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import ApiClient
from tests.esp_signing import fixture
from tests.helpers import make_list, snapshot

AUTH = ("postmark", "correct horse battery staple")
ADDRESS = "john@example.com"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(postmark_webhook_auth=AUTH)


@pytest.fixture
def subscribed(app: Flask, api: ApiClient) -> None:
    """Lists news and other, the sample addresses on both."""
    make_list(app)
    make_list(app, "other")
    for name in ("news", "other"):
        recipients = [{"email": ADDRESS}, {"email": "bounced-address@wildbit.com"}]
        assert api.post(f"/lists/{name}/headers", {"recipients": recipients}).status_code == 200


def json_of(answer: TestResponse) -> dict[str, Any]:
    body = answer.get_json()
    assert isinstance(body, dict)
    return body


def post(
    app: Flask, record: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> TestResponse:
    return app.test_client().post(
        "/inbound/postmark",
        data=raw if raw is not None else json.dumps(record),
        content_type="application/json",
        headers=basic(*AUTH) if headers is None else headers,
    )


def reasons(api: ApiClient, list_name: str, emails: list[str] | None = None) -> dict[str, str]:
    answer = api.post(f"/lists/{list_name}/eligibility", {"emails": emails or [ADDRESS]})
    assert answer.status_code == 200
    return {e["email"]: e["reason"] for e in answer.json["excluded"]}


def bounce(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = fixture("postmark_bounce.json")
    record.update(changes)
    return record


def test_hard_bounce_makes_the_address_ineligible(
    app: Flask, api: ApiClient, subscribed: None
) -> None:
    answer = post(app, bounce())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"recorded": 1}
    # No list in the metadata: every list the address is on.
    assert reasons(api, "news") == reasons(api, "other") == {ADDRESS: "bounced"}
    status = api.get(f"/lists/news/recipients/{ADDRESS}").json
    assert status["suppressed"] == "bounced"
    assert status["subscribed"] is True  # a bounce is not the recipient's choice


def test_metadata_names_the_list(app: Flask, api: ApiClient, subscribed: None) -> None:
    record = bounce(Metadata={"unsubsvc_list": "other", "unsubsvc_campaign": "spring"})
    assert post(app, record).status_code == 200
    assert reasons(api, "other") == {ADDRESS: "bounced"}
    assert reasons(api, "news") == {}


def test_same_bounce_twice_is_recorded_once(app: Flask, api: ApiClient, subscribed: None) -> None:
    assert post(app, bounce()).json == {"recorded": 1}
    before = snapshot(app)
    again = post(app, bounce())
    assert again.status_code == 200
    assert again.json == {"recorded": 0}
    assert snapshot(app) == before


@pytest.mark.parametrize("kind", ["SoftBounce", "Transient", "DnsError"])
def test_soft_bounce_types_count_towards_the_limit(
    app: Flask, api: ApiClient, subscribed: None, kind: str
) -> None:
    for number in range(1, 4):
        assert post(app, bounce(ID=number, Type=kind)).status_code == 200
        expected = {ADDRESS: "bounced"} if number == 3 else {}
        assert reasons(api, "news") == expected


def test_other_bounce_types_change_nothing(app: Flask, subscribed: None) -> None:
    before = snapshot(app)
    for kind in ("AutoResponder", "AddressChange", "SMTPApiError"):
        answer = post(app, bounce(Type=kind))
        assert answer.status_code == 200
        assert answer.json == {"recorded": 0}
    assert snapshot(app) == before


def test_spam_complaint_suppresses_on_every_list(
    app: Flask, api: ApiClient, subscribed: None
) -> None:
    answer = post(app, fixture("postmark_spam_complaint.json"))
    assert answer.status_code == 200
    assert reasons(api, "news") == reasons(api, "other") == {ADDRESS: "unsubscribed"}


def test_subscription_change_unsubscribes(app: Flask, api: ApiClient, subscribed: None) -> None:
    record = fixture("postmark_subscription_change.json")
    record["Metadata"] = {"unsubsvc_list": "news"}
    assert post(app, record).status_code == 200
    emails = ["bounced-address@wildbit.com"]
    assert reasons(api, "news", emails) == {emails[0]: "unsubscribed"}
    assert reasons(api, "other", emails) == {}
    # A reactivation (SuppressSending false) does not resubscribe on the ESP's word.
    record["SuppressSending"] = False
    record["ChangedAt"] = "2020-02-02T10:53:34.416071Z"
    assert post(app, record).json == {"recorded": 0}
    assert reasons(api, "news", emails) == {emails[0]: "unsubscribed"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(AUTH[0], "wrong"),
        basic("someone", AUTH[1]),
        {"Authorization": "Bearer " + AUTH[1]},
        {"Authorization": "Basic not-base64!"},
    ],
)
def test_wrong_or_missing_credentials_are_refused(
    app: Flask, subscribed: None, headers: dict[str, str]
) -> None:
    before = snapshot(app)
    answer = post(app, bounce(), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before


def test_unconfigured_endpoint_refuses_everything(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    make_list(app)
    before = snapshot(app)
    answer = post(app, bounce())
    assert answer.status_code == 403
    assert "error" in json_of(answer)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"\xff\xfe",
        json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 1}).encode(),
        json.dumps({"Type": "HardBounce", "Email": ADDRESS, "ID": 1}).encode(),
        json.dumps(bounce(Email="not an address")).encode(),
        json.dumps(bounce(ID=None, MessageID=None)).encode(),
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(
    app: Flask, subscribed: None, raw: bytes
) -> None:
    before = snapshot(app)
    answer = post(app, None, raw=raw)
    assert answer.status_code == 400
    assert answer.mimetype == "application/json"
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before


def test_too_large_body_is_refused_as_json(make_app: Callable[..., Flask]) -> None:
    app = make_app(postmark_webhook_auth=AUTH, api_max_body=1024)
    make_list(app)
    before = snapshot(app)
    answer = post(app, bounce(Content="x" * 4096))
    assert answer.status_code == 413
    assert set(json_of(answer)) == {"error"}
    assert snapshot(app) == before
