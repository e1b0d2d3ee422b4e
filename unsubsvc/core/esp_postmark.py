"""Postmark's webhooks: HTTP basic auth, and the Bounce, SpamComplaint and
SubscriptionChange records unsubsvc acts on.

Postmark signs nothing; the sender puts credentials in the webhook URL
(``https://user:password@host/inbound/postmark``) and Postmark sends them as
HTTP basic auth, which is checked here in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import InvalidInput, UnsubsvcError
from unsubsvc.core.esp_events import EspEvent, EspEventKind, json_object, list_and_campaign

PROVIDER = "postmark"
REALM = 'Basic realm="unsubsvc inbound", charset="UTF-8"'

#: Postmark's bounce types (developer docs, "Bounce types") that say the address is bad.
HARD_TYPES = frozenset({"HardBounce", "BadEmailAddress"})
#: Types that say "not now": a full mailbox, a DNS failure, a block, a transient refusal.
SOFT_TYPES = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked"})
#: Other types (AutoResponder, AddressChange, ChallengeVerification, SMTPApiError,
#: TemplateRenderingFailed, DMARCPolicy…) are not about the address and are skipped.
_OTHER_KINDS = {"SpamComplaint": EspEventKind.COMPLAINT, "Unsubscribe": EspEventKind.UNSUBSCRIBE}
#: SubscriptionChange ``SuppressionReason`` values that are a bounce or a complaint;
#: anything else (``ManualSuppression``: the recipient's unsubscribe link) is an unsubscribe.
_SUPPRESSION_KINDS = {
    "HardBounce": EspEventKind.HARD_BOUNCE,
    "SpamComplaint": EspEventKind.COMPLAINT,
}


class Unauthenticated(UnsubsvcError):
    """No or wrong basic-auth credentials: the answer asks for them (WWW-Authenticate)."""

    status = 401


class NotConfigured(UnsubsvcError):
    """UNSUBSVC_POSTMARK_WEBHOOK_AUTH is unset: every request is refused."""

    status = 403


def check_auth(expected: tuple[str, str] | None, authorization: str | None) -> None:
    """Raise unless ``authorization`` (the header) is Basic with the expected user and password."""
    if expected is None:
        raise NotConfigured("Postmark webhooks are not configured")
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthenticated("credentials required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated("credentials required") from exc
    user, colon, password = decoded.partition(b":")
    # Both compared, always, so the time taken says nothing about which part was wrong.
    user_ok = hmac.compare_digest(user, expected[0].encode("utf-8"))
    password_ok = hmac.compare_digest(password, expected[1].encode("utf-8"))
    if not (colon and user_ok and password_ok):
        raise Unauthenticated("wrong credentials")


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def _when(value: Any) -> datetime | None:
    """Read Postmark's ISO 8601 times (seven fractional digits; Python takes up to six)."""
    if not isinstance(value, str):
        return None
    head, dot, fraction = value.partition(".")
    if dot:
        digits = "".join(c for c in fraction if c.isdigit())
        value = f"{head}.{digits[:6]}{fraction[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _kind(record: Mapping[str, Any]) -> EspEventKind | None:
    record_type = record.get("RecordType")
    if record_type == "Bounce":
        bounce_type = record.get("Type")
        if bounce_type in HARD_TYPES:
            return EspEventKind.HARD_BOUNCE
        if bounce_type in SOFT_TYPES:
            return EspEventKind.SOFT_BOUNCE
        return _OTHER_KINDS.get(bounce_type) if isinstance(bounce_type, str) else None
    if record_type == "SpamComplaint":
        return EspEventKind.COMPLAINT
    if record_type == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return None  # a reactivation: the recipient's own choices stand
        reason = record.get("SuppressionReason")
        return (
            _SUPPRESSION_KINDS.get(reason, EspEventKind.UNSUBSCRIBE)
            if isinstance(reason, str)
            else EspEventKind.UNSUBSCRIBE
        )
    if isinstance(record_type, str):
        return None  # Delivery, Open, Click…: nothing to act on
    raise InvalidInput("the record has no RecordType")


def parse_record(body: bytes) -> EspEvent | None:
    """Turn one posted webhook record into an event; None for a record unsubsvc ignores."""
    record = json_object(body)
    kind = _kind(record)
    if kind is None:
        return None
    subscription_change = record.get("RecordType") == "SubscriptionChange"
    email = _text(record, "Recipient" if subscription_change else "Email")
    if email is None:
        raise InvalidInput("the record has no recipient address")
    normalize_address(email)  # raises InvalidInput for something that is not an address
    message_id = _text(record, "MessageID")
    record_id = _text(record, "ID")
    if record_id is not None:
        event_id = f"{record['RecordType']}:{record_id}"
    elif message_id is not None:
        # SubscriptionChange has no ID: its message, the record type, the address and when.
        event_id = ":".join(
            (record["RecordType"], message_id, email.lower(), _text(record, "ChangedAt") or "")
        )
    else:
        raise InvalidInput("the record has neither ID nor MessageID")
    raw_metadata = record.get("Metadata")
    metadata = (
        {k: v for k, v in raw_metadata.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(raw_metadata, dict)
        else {}
    )
    list_name, campaign = list_and_campaign({}, metadata)
    detail = {
        key: value
        for key in (
            "RecordType",
            "Type",
            "TypeCode",
            "SuppressionReason",
            "Origin",
            "MessageStream",
        )
        if (value := _text(record, key)) is not None
    }
    return EspEvent(
        provider=PROVIDER,
        event_id=event_id,
        kind=kind,
        email=email,
        occurred_at=_when(record.get("BouncedAt") or record.get("ChangedAt")),
        list_name=list_name,
        campaign=campaign,
        detail=detail,
    )
