"""Amazon SES through SNS (``unsubsvc.core.esp_ses``): canonical strings, signatures, hosts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from tests.esp_signing import CERT_URL, SNS_VALID_FROM, SnsSigner, fixture, sns_notification
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import EspEventKind, SignatureRejected
from unsubsvc.core.esp_ses import (
    CertificateCache,
    canonical_string,
    is_sns_url,
    parse_notification,
    parse_sns,
    topic_allowed,
    verify,
)

SIGNER = SnsSigner.make()
OTHER = SnsSigner.make()
#: Inside the certificates' validity (SNS_VALID_FROM plus 31 days).
NOW = SNS_VALID_FROM + timedelta(days=1)


def body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


def serving(pem: bytes) -> tuple[CertificateCache, list[str]]:
    """A certificate cache whose fetcher serves ``pem`` and notes each URL asked for."""
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return pem

    return CertificateCache(fetch), asked


# --- canonical strings -------------------------------------------------------------------


def test_notification_canonical_string_follows_sns_documentation() -> None:
    message = parse_sns(body(fixture("ses_sns_notification.json")))
    assert canonical_string(message) == (
        b"Message\nHello world!\n"
        b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        b"Subject\nMy First Message\n"
        b"Timestamp\n2012-05-02T00:54:06.655Z\n"
        b"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
        b"Type\nNotification\n"
    )


def test_notification_without_subject_leaves_it_out() -> None:
    envelope = fixture("ses_sns_notification.json")
    del envelope["Subject"]
    text = canonical_string(parse_sns(body(envelope)))
    assert b"Subject" not in text
    assert text.startswith(b"Message\nHello world!\nMessageId\n")


def test_subscription_confirmation_canonical_string_signs_url_and_token() -> None:
    data = fixture("ses_sns_subscription_confirmation.json")
    text = canonical_string(parse_sns(body(data)))
    expected = "".join(
        f"{key}\n{data[key]}\n"
        for key in ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn")
    )
    assert text == (expected + "Type\nSubscriptionConfirmation\n").encode()


# --- signatures --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_correct_signature_verifies(version: str) -> None:
    cache, asked = serving(SIGNER.pem)
    for name in ("ses_sns_notification.json", "ses_sns_subscription_confirmation.json"):
        verify(parse_sns(body(SIGNER.sign(fixture(name), version))), cache, now=NOW)
    assert asked == [CERT_URL]  # fetched once, then cached


@pytest.mark.parametrize(
    "change",
    [
        {"Message": "Hello world?"},
        {"TopicArn": "arn:aws:sns:us-west-2:123456789012:Other"},
        {"Subject": "Another"},
        {"SignatureVersion": "1"},  # signed as version 2
        {"Signature": "bm90IGEgc2lnbmF0dXJl"},
        {"Signature": "***"},
        {"SignatureVersion": "3"},
    ],
)
def test_a_changed_message_does_not_verify(change: dict[str, str]) -> None:
    cache, _ = serving(SIGNER.pem)
    signed = {**SIGNER.sign(fixture("ses_sns_notification.json")), **change}
    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(signed)), cache, now=NOW)


@pytest.mark.parametrize("missing", ["Signature", "SignatureVersion", "SigningCertURL"])
def test_an_unsigned_message_does_not_verify(missing: str) -> None:
    cache, asked = serving(SIGNER.pem)
    signed = SIGNER.sign(fixture("ses_sns_notification.json"))
    del signed[missing]
    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(signed)), cache, now=NOW)
    assert asked == []


def test_a_signature_by_another_key_does_not_verify() -> None:
    cache, _ = serving(SIGNER.pem)
    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(OTHER.sign(fixture("ses_sns_notification.json")))), cache, now=NOW)


@pytest.mark.parametrize(
    ("now", "valid"),
    [
        (SNS_VALID_FROM, True),
        (SNS_VALID_FROM + timedelta(days=31), True),
        (SNS_VALID_FROM - timedelta(seconds=1), False),
        (SNS_VALID_FROM + timedelta(days=31, seconds=1), False),
    ],
    ids=["first-moment", "last-moment", "not-yet-valid", "expired"],
)
def test_only_a_certificate_valid_now_verifies(now: datetime, valid: bool) -> None:
    """A certificate cached while valid signs nothing once it has expired."""
    cache, _ = serving(SIGNER.pem)
    message = parse_sns(body(SIGNER.sign(fixture("ses_sns_notification.json"))))
    if valid:
        verify(message, cache, now=now)
    else:
        with pytest.raises(SignatureRejected, match="expired or not yet valid"):
            verify(message, cache, now=now)


def test_an_unreadable_certificate_rejects() -> None:
    cache, _ = serving(b"not a certificate")
    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(SIGNER.sign(fixture("ses_sns_notification.json")))), cache, now=NOW)


def test_a_failed_fetch_rejects() -> None:
    def fail(url: str) -> x509.Certificate:
        raise OSError("timed out")

    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(SIGNER.sign(fixture("ses_sns_notification.json")))), fail, now=NOW)


GOOD_CERT_URLS = [
    CERT_URL,
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
]
BAD_CERT_URLS = [
    "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
    "https://evilsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.co/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.evil.com/amazonaws.com/SimpleNotificationService-abc.pem",
    "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem",
    "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem",
    "https://s3.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us_east_1.amazonaws.com/SimpleNotificationService-abc.pem",
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "//sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem.exe",
    "https://sns.us-east-1.amazonaws.com/?Action=x&f=.pem",
    "https://sns.us-east-1.amazonaws.com/x.pem?redirect=https://evil.com/",
    "https://sns.us-east-1.amazonaws.com/",
    "https://[::1]/x.pem",
    "not a url",
    "",
]


@pytest.mark.parametrize("url", GOOD_CERT_URLS)
def test_sns_certificate_hosts_are_accepted(url: str) -> None:
    assert is_sns_url(url, certificate=True)
    assert is_sns_url(url, certificate=False)


@pytest.mark.parametrize("url", BAD_CERT_URLS)
def test_other_certificate_urls_are_refused_without_fetching(url: str) -> None:
    assert not is_sns_url(url, certificate=True)
    cache, asked = serving(SIGNER.pem)
    signed = SIGNER.sign({**fixture("ses_sns_notification.json"), "SigningCertURL": url})
    with pytest.raises(SignatureRejected):
        verify(parse_sns(body(signed)), cache, now=NOW)
    assert asked == []


def test_subscribe_urls_need_an_sns_host_but_no_pem() -> None:
    data = fixture("ses_sns_subscription_confirmation.json")
    assert is_sns_url(data["SubscribeURL"], certificate=False)
    assert not is_sns_url(data["SubscribeURL"], certificate=True)
    evil = data["SubscribeURL"].replace("amazonaws.com", "amazonaws.com.evil.com")
    assert not is_sns_url(evil, certificate=False)


def test_topics_allowed() -> None:
    arn = "arn:aws:sns:us-west-2:123456789012:MyTopic"
    assert topic_allowed(arn, ())
    assert topic_allowed(arn, (arn, "arn:aws:sns:us-east-1:1:x"))
    assert not topic_allowed(arn, ("arn:aws:sns:us-east-1:1:x",))


# --- malformed envelopes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"Notification"',
        json.dumps({**fixture("ses_sns_notification.json"), "Type": "Other"}).encode(),
        json.dumps({**fixture("ses_sns_notification.json"), "Message": 5}).encode(),
        json.dumps({**fixture("ses_sns_notification.json"), "Subject": ["x"]}).encode(),
        json.dumps({**fixture("ses_sns_notification.json"), "Signature": None}).encode(),
        json.dumps(
            {
                k: v
                for k, v in fixture("ses_sns_subscription_confirmation.json").items()
                if k != "Token"
            }
        ).encode(),
    ],
)
def test_malformed_envelopes_are_invalid_input(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_sns(raw)


def test_the_type_header_must_agree_with_the_body() -> None:
    raw = body(fixture("ses_sns_notification.json"))
    assert parse_sns(raw, "Notification").type == "Notification"
    with pytest.raises(InvalidInput):
        parse_sns(raw, "SubscriptionConfirmation")


# --- SES notifications -------------------------------------------------------------------


def test_permanent_bounce_is_hard_with_list_from_list_id() -> None:
    found = parse_notification(json.dumps(fixture("ses_bounce.json")), "sns-1")
    assert found.kind == "Bounce"
    (event,) = found.events
    assert event.kind is EspEventKind.HARD_BOUNCE
    assert event.email == "jane@example.com"
    assert event.provider == "ses" and event.channel == "esp:ses"
    assert event.event_id == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000:0"
    assert event.list_name == "news" and event.campaign is None
    assert event.occurred_at == datetime(2016, 1, 27, 14, 59, 38, 237000, tzinfo=UTC)
    assert event.detail["bounce_type"] == "Permanent"
    assert event.detail["status"] == "5.1.1"


def test_transient_bounce_is_soft_per_recipient_with_tags() -> None:
    found = parse_notification(json.dumps(fixture("ses_bounce_transient_event.json")), "sns-2")
    assert [e.kind for e in found.events] == [EspEventKind.SOFT_BOUNCE] * 2
    assert [e.email for e in found.events] == ["recipient@example.com", "second@example.com"]
    assert [e.event_id.rsplit(":", 1)[1] for e in found.events] == ["0", "1"]
    assert {(e.list_name, e.campaign) for e in found.events} == {("news", "spring-sale")}


def test_undetermined_bounce_is_soft_and_sns_id_stands_in_for_feedback_id() -> None:
    data = fixture("ses_bounce.json")
    data["bounce"]["bounceType"] = "Undetermined"
    del data["bounce"]["feedbackId"]
    (event,) = parse_notification(json.dumps(data), "sns-3").events
    assert event.kind is EspEventKind.SOFT_BOUNCE
    assert event.event_id == "sns-3:0"


def test_complaint() -> None:
    (event,) = parse_notification(json.dumps(fixture("ses_complaint.json")), "sns-4").events
    assert event.kind is EspEventKind.COMPLAINT
    assert event.email == "richard@example.com"
    assert event.list_name is None
    assert event.detail["feedback_type"] == "abuse"


@pytest.mark.parametrize(
    "message",
    [
        json.dumps(fixture("ses_delivery.json")),
        json.dumps({"eventType": "Open", "mail": {}}),
        json.dumps({"something": "else"}),
        "Successfully validated SNS topic for Amazon SES event publishing.",
    ],
)
def test_other_messages_give_no_events(message: str) -> None:
    assert parse_notification(message, "sns-5").events == ()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("bounce"),
        lambda d: d["bounce"].update(bouncedRecipients=[]),
        lambda d: d["bounce"].update(bouncedRecipients=["jane@example.com"]),
        lambda d: d["bounce"].update(bouncedRecipients=[{"emailAddress": "nobody"}]),
        lambda d: d["bounce"].update(bouncedRecipients=[{"emailAddress": 7}]),
        lambda d: d.update(notificationType="Complaint"),
        lambda d: d.update(mail="x"),
    ],
)
def test_malformed_bounces_are_invalid_input(change: Any) -> None:
    data = fixture("ses_bounce.json")
    change(data)
    with pytest.raises(InvalidInput):
        parse_notification(json.dumps(data), "sns-6")


def test_a_message_that_is_json_but_no_object_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        parse_notification("[1, 2]", "sns-7")


def test_sns_sample_carries_ses_json() -> None:
    envelope = sns_notification(fixture("ses_complaint.json"))
    message = parse_sns(body(SIGNER.sign(envelope)))
    assert parse_notification(message.message, message.message_id).kind == "Complaint"
