"""ESP events in one shape, the suppression policy, and Postmark's and Mailgun's parsers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.esp_signing import fixture
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import (
    EspEvent,
    EspEventKind,
    SignatureRejected,
    list_and_campaign,
    list_from_list_id,
)
from unsubsvc.core.esp_mailgun import Signed, parse_body, parse_event, verify
from unsubsvc.core.esp_postmark import NotConfigured, Unauthenticated, check_auth, parse_record
from unsubsvc.core.events import Channel
from unsubsvc.core.preferences import RecipientState, Verdict, may_mail
from unsubsvc.core.suppression import SuppressionPolicy

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("News from Example <news.unsub.example.com>", "news"),
        ("<spring-sale.example.com>", "spring-sale"),
        ("no brackets", None),
        (None, None),
        ("", None),
    ],
)
def test_list_from_list_id(value: str | None, expected: str | None) -> None:
    assert list_from_list_id(value) == expected


def test_metadata_wins_over_list_id() -> None:
    headers = {"List-ID": "<news.example.com>"}
    assert list_and_campaign(headers, {}) == ("news", None)
    assert list_and_campaign(headers, {"unsubsvc_list": "other", "unsubsvc_campaign": "c"}) == (
        "other",
        "c",
    )
    assert list_and_campaign({}, {"unsubsvc_list": ""}) == (None, None)


@pytest.mark.parametrize("provider", ["ses", "sendgrid", "postmark", "mailgun"])
def test_every_provider_has_a_channel(provider: str) -> None:
    event = EspEvent(provider, "id", EspEventKind.HARD_BOUNCE, "a@example.com")
    assert Channel(event.channel) == f"esp:{provider}"


def test_policy_counts_soft_bounces_up_to_the_limit() -> None:
    policy = SuppressionPolicy(soft_bounce_limit=3, soft_bounce_window=timedelta(days=14))
    assert policy.suppresses(hard=True, soft_bounces_in_window=0)
    assert not policy.suppresses(hard=False, soft_bounces_in_window=2)
    assert policy.suppresses(hard=False, soft_bounces_in_window=3)
    assert policy.soft_window_start(NOW) == NOW - timedelta(days=14)
    assert policy.complaint_covers_sender
    assert not SuppressionPolicy(complaint_scope="list").complaint_covers_sender


def test_bounced_is_never_mailed_not_even_transactional() -> None:
    state = RecipientState(bounced=True)
    assert may_mail(state, now=NOW) is Verdict.BOUNCED
    assert may_mail(state, now=NOW, transactional=True) is Verdict.BOUNCED
    assert Verdict.BOUNCED.value == "bounced"


# Postmark


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_postmark_auth() -> None:
    expected = ("user", "pässword")
    check_auth(expected, basic("user", "pässword"))
    with pytest.raises(NotConfigured):
        check_auth(None, basic("user", "pässword"))
    for header in (None, "", basic("user", "other"), basic("other", "pässword"), "Basic %%%"):
        with pytest.raises(Unauthenticated):
            check_auth(expected, header)
    with pytest.raises(Unauthenticated):
        check_auth(expected, "Basic " + base64.b64encode(b"user").decode())


def postmark(name: str, **changes: Any) -> bytes:
    record: dict[str, Any] = fixture(name)
    record.update(changes)
    return json.dumps(record).encode()


def test_postmark_bounce_sample() -> None:
    event = parse_record(postmark("postmark_bounce.json"))
    assert event is not None
    assert event.kind is EspEventKind.HARD_BOUNCE
    assert event.email == "john@example.com"
    assert event.event_id == "Bounce:4323372036854775807"
    assert event.occurred_at == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
    assert event.list_name is None
    assert event.detail["Type"] == "HardBounce"


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("HardBounce", EspEventKind.HARD_BOUNCE),
        ("BadEmailAddress", EspEventKind.HARD_BOUNCE),
        ("SoftBounce", EspEventKind.SOFT_BOUNCE),
        ("Transient", EspEventKind.SOFT_BOUNCE),
        ("DnsError", EspEventKind.SOFT_BOUNCE),
        ("SpamComplaint", EspEventKind.COMPLAINT),
        ("Unsubscribe", EspEventKind.UNSUBSCRIBE),
        ("AutoResponder", None),
        ("ChallengeVerification", None),
    ],
)
def test_postmark_bounce_types(bounce_type: str, kind: EspEventKind | None) -> None:
    event = parse_record(postmark("postmark_bounce.json", Type=bounce_type))
    assert (event.kind if event is not None else None) == kind


def test_postmark_complaint_and_subscription_change() -> None:
    complaint = parse_record(
        postmark("postmark_spam_complaint.json", Metadata={"unsubsvc_list": "news"})
    )
    assert complaint is not None and complaint.kind is EspEventKind.COMPLAINT
    assert complaint.list_name == "news"
    change = parse_record(postmark("postmark_subscription_change.json"))
    assert change is not None
    assert change.kind is EspEventKind.UNSUBSCRIBE
    assert change.email == "bounced-address@wildbit.com"
    assert "883953f4-6105-42a2-a16a-77a8eac79483" in change.event_id
    hard = parse_record(
        postmark("postmark_subscription_change.json", SuppressionReason="HardBounce")
    )
    assert hard is not None and hard.kind is EspEventKind.HARD_BOUNCE
    assert (
        parse_record(postmark("postmark_subscription_change.json", SuppressSending=False)) is None
    )
    assert parse_record(json.dumps({"RecordType": "Delivery"}).encode()) is None


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"x"', b"{}", postmark("postmark_bounce.json", Email=None)],
)
def test_postmark_bad_records(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_record(body)


# Mailgun


def mailgun_signed(key: str, when: datetime, token: str = "t" * 50) -> Signed:
    timestamp = str(int(when.timestamp()))
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return Signed(timestamp, token, digest, {})


def test_mailgun_verify() -> None:
    verify("key", mailgun_signed("key", NOW), now=NOW)
    verify("key", mailgun_signed("key", NOW - timedelta(minutes=5)), now=NOW)
    for signing_key, signed in (
        (None, mailgun_signed("key", NOW)),
        ("key", mailgun_signed("other", NOW)),
        ("key", mailgun_signed("key", NOW - timedelta(minutes=6))),
        ("key", mailgun_signed("key", NOW + timedelta(minutes=6))),
        ("key", Signed("1", "t", "é", {})),
    ):
        with pytest.raises(SignatureRejected):
            verify(signing_key, signed, now=NOW)


def test_mailgun_samples() -> None:
    failed = parse_body(json.dumps(fixture("mailgun_failed_permanent.json")).encode())
    assert failed.token == "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    event = parse_event(failed.event_data)
    assert event is not None
    assert (event.kind, event.email, event.event_id) == (
        EspEventKind.HARD_BOUNCE,
        "alice@example.com",
        "G9Bn5sl1TC6nu79C8C0bwg",
    )
    assert event.detail["code"] == "605"
    temporary = parse_event({**failed.event_data, "severity": "temporary"})
    assert temporary is not None and temporary.kind is EspEventKind.SOFT_BOUNCE
    complained = parse_body(json.dumps(fixture("mailgun_complained.json")).encode())
    complaint = parse_event({**complained.event_data, "user-variables": {"unsubsvc_list": "news"}})
    assert complaint is not None and complaint.kind is EspEventKind.COMPLAINT
    assert complaint.list_name == "news"
    assert parse_event({**failed.event_data, "event": "delivered"}) is None


@pytest.mark.parametrize(
    "body", [b"x", b"[]", b"{}", json.dumps({"signature": {}, "event-data": {}}).encode()]
)
def test_mailgun_bad_bodies(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_body(body)
