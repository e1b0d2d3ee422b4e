"""SendGrid's signed Event Webhook (``unsubsvc.core.esp_sendgrid``): signatures and events."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.esp_signing import FIXTURES, SendGridSigner
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import EspEventKind, SignatureRejected
from unsubsvc.core.esp_sendgrid import (
    MAX_AGE,
    MAX_AHEAD,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    parse_events,
    verify,
)

SIGNER = SendGridSigner.make()
OTHER = SendGridSigner.make()
BODY = (FIXTURES / "sendgrid_events.json").read_bytes()


#: When the fixtures' signatures are made (tests.esp_signing's default timestamp).
SIGNED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def check(
    headers: dict[str, str],
    body: bytes = BODY,
    key: str | None = SIGNER.public_key,
    now: datetime = SIGNED_AT,
) -> None:
    verify(key, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), body, now=now)


def test_a_correct_signature_verifies() -> None:
    check(SIGNER.headers(BODY))


def test_the_key_may_be_pasted_with_line_breaks() -> None:
    key = SIGNER.public_key
    check(SIGNER.headers(BODY), key=key[:40] + "\n" + key[40:] + "\n")


@pytest.mark.parametrize(
    "case",
    [
        "no key",
        "other key",
        "no signature",
        "no timestamp",
        "other timestamp",
        "body changed",
        "not base64",
        "garbage signature",
        "bad key",
        "rsa key",
        "p384 key",
    ],
)
def test_everything_else_is_rejected(case: str) -> None:
    headers = SIGNER.headers(BODY)
    key: str | None = SIGNER.public_key
    body = BODY
    if case == "no key":
        key = None
    elif case == "other key":
        key = OTHER.public_key
    elif case == "no signature":
        del headers[SIGNATURE_HEADER]
    elif case == "no timestamp":
        del headers[TIMESTAMP_HEADER]
    elif case == "other timestamp":
        headers[TIMESTAMP_HEADER] = "1772443801"
    elif case == "body changed":
        body = BODY.replace(b"bounced@test.com", b"bounce2@test.com")
    elif case == "not base64":
        headers[SIGNATURE_HEADER] = "***"
    elif case == "garbage signature":
        headers[SIGNATURE_HEADER] = base64.b64encode(b"0" * 70).decode()
    elif case == "bad key":
        key = "bm90IGEga2V5"
    else:
        other = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if case == "rsa key"
            else ec.generate_private_key(ec.SECP384R1())
        )
        der = other.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key = base64.b64encode(der).decode()
    with pytest.raises(SignatureRejected):
        check(headers, body, key)


@pytest.mark.parametrize(
    ("signed_ago", "accepted"),
    [
        (timedelta(0), True),
        (MAX_AGE, True),  # a batch SendGrid retried for three days still counts
        (MAX_AGE + timedelta(seconds=1), False),
        (-MAX_AHEAD, True),  # the two clocks may disagree by a few minutes
        (-MAX_AHEAD - timedelta(seconds=1), False),
    ],
)
def test_the_signed_timestamp_must_be_recent(signed_ago: timedelta, accepted: bool) -> None:
    now = SIGNED_AT + signed_ago
    if accepted:
        check(SIGNER.headers(BODY), now=now)
    else:
        with pytest.raises(SignatureRejected):
            check(SIGNER.headers(BODY), now=now)


@pytest.mark.parametrize("timestamp", ["soon", "1e9", "99999999999999999999"])
def test_a_signed_timestamp_that_is_not_a_time_is_rejected(timestamp: str) -> None:
    with pytest.raises(SignatureRejected):
        check(SIGNER.headers(BODY, timestamp=timestamp))


def test_load_public_key_wants_p256() -> None:
    assert isinstance(load_public_key(SIGNER.public_key).curve, ec.SECP256R1)
    with pytest.raises(ValueError):
        load_public_key("!!")


def test_documented_sample_maps_to_unsubsvc_events() -> None:
    events = parse_events(BODY)
    assert [(e.email, e.kind) for e in events] == [
        ("bounced@test.com", EspEventKind.HARD_BOUNCE),
        ("blocked@test.com", EspEventKind.SOFT_BOUNCE),
        ("dropped@test.com", EspEventKind.HARD_BOUNCE),
        ("spam@test.com", EspEventKind.COMPLAINT),
        ("unsub@test.com", EspEventKind.UNSUBSCRIBE),
        ("group-unsub@test.com", EspEventKind.UNSUBSCRIBE),
    ]
    bounce = events[0]
    assert bounce.provider == "sendgrid" and bounce.channel == "esp:sendgrid"
    assert bounce.event_id == "6g4ZI7SA-xmRDv57GoPIPw=="
    assert (bounce.list_name, bounce.campaign) == ("news", "c1")
    assert bounce.occurred_at == datetime.fromtimestamp(1513299569, UTC)
    assert bounce.detail["bounce_classification"] == "Invalid Address"
    assert events[1].list_name is None
    assert events[5].detail["asm_group_id"] == "10"


@pytest.mark.parametrize(
    ("reason", "acted_on"),
    [
        ("Bounced Address", True),
        ("Invalid", True),
        ("Invalid SMTPAPI header", False),
        ("Unsubscribed Address", False),
        ("Spam Reporting Address", False),
        ("Spam Content (if spam checker app enabled)", False),
    ],
)
def test_dropped_only_for_a_bad_address(reason: str, acted_on: bool) -> None:
    raw = json.dumps(
        [{"email": "a@example.com", "event": "dropped", "reason": reason, "sg_event_id": "e1"}]
    )
    assert len(parse_events(raw.encode())) == int(acted_on)


def test_bounce_without_type_is_hard() -> None:
    raw = json.dumps([{"email": "a@example.com", "event": "bounce", "sg_event_id": "e1"}])
    assert parse_events(raw.encode())[0].kind is EspEventKind.HARD_BOUNCE


def test_events_not_acted_on_need_no_fields() -> None:
    assert parse_events(b'[{"event": "open"}, {"event": "delivered"}, {}]') == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff",
        b'{"event": "bounce"}',
        b"[1]",
        b'[{"event": "bounce", "sg_event_id": "e1"}]',
        b'[{"event": "spamreport", "email": "a@example.com"}]',
        b'[{"event": "unsubscribe", "email": "a@example.com", "sg_event_id": 5}]',
    ],
)
def test_malformed_bodies_are_invalid_input(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_events(raw)
