"""SendGrid's signed Event Webhook: the ECDSA signature and the events unsubsvc acts on.

SendGrid signs ``timestamp header + raw body`` with ECDSA P-256 / SHA-256 and
sends the DER signature base64-encoded; the sender copies the verification key
(base64 DER SubjectPublicKeyInfo) from SendGrid's settings into
UNSUBSVC_SENDGRID_PUBLIC_KEY. The body is re-serialised by nobody: the bytes
checked are the bytes received.

SendGrid documents no freshness window for the signed timestamp, and retries an
undelivered batch for hours (its Event Webhook docs: up to 24), without saying
whether a retry is signed afresh. A signature is therefore accepted for
``MAX_AGE`` (three days, room for a retried batch) and at most ``MAX_AHEAD`` in
the future; within that, a replay changes nothing, since each ``sg_event_id``
is recorded once.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import (
    CAMPAIGN_KEY,
    LIST_KEY,
    EspEvent,
    EspEventKind,
    SignatureRejected,
    check_signed_time,
    json_body,
    list_and_campaign,
)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

#: ``dropped`` reasons that say the address itself is bad (others: spam content, quotas…).
MAX_AGE = timedelta(days=3)
MAX_AHEAD = timedelta(minutes=5)

HARD_DROP_REASONS = frozenset({"Bounced Address", "Invalid"})
_PLAIN_KINDS = {
    "spamreport": EspEventKind.COMPLAINT,
    "unsubscribe": EspEventKind.UNSUBSCRIBE,
    "group_unsubscribe": EspEventKind.UNSUBSCRIBE,
}


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """Read SendGrid's verification key (base64 DER); raise ValueError if it is not P-256."""
    try:
        key = load_der_public_key(base64.b64decode("".join(value.split()), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a base64 DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(
    public_key: str | None,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: datetime,
) -> None:
    """Raise SignatureRejected unless ``signature`` signs ``timestamp + body`` under the key,
    and ``timestamp`` is within MAX_AGE before ``now`` (MAX_AHEAD after)."""
    if not public_key:
        raise SignatureRejected("no SendGrid verification key is configured")
    if not signature or not timestamp:
        raise SignatureRejected("the request is not signed")
    try:
        key = load_public_key(public_key)
    except ValueError as exc:
        raise SignatureRejected("the configured SendGrid key is not usable") from exc
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise SignatureRejected("the signature does not match") from exc
    check_signed_time(timestamp, now=now, max_age=MAX_AGE, max_ahead=MAX_AHEAD)


def _kind(event: dict[str, Any]) -> EspEventKind | None:
    name = event.get("event")
    if name == "bounce":
        # ``type`` is "bounce" (the receiver refused for good) or "blocked" (for now).
        return (
            EspEventKind.SOFT_BOUNCE if event.get("type") == "blocked" else EspEventKind.HARD_BOUNCE
        )
    if name == "dropped":
        return EspEventKind.HARD_BOUNCE if event.get("reason") in HARD_DROP_REASONS else None
    return _PLAIN_KINDS.get(name) if isinstance(name, str) else None


def _when(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_events(body: bytes) -> list[EspEvent]:
    """Turn the posted JSON array into events; events unsubsvc does not act on are skipped."""
    data = json_body(body)
    if not isinstance(data, list):
        raise InvalidInput("the body is not a JSON array of events")
    out = []
    for item in data:
        if not isinstance(item, dict):
            raise InvalidInput("an event is not a JSON object")
        kind = _kind(item)
        if kind is None:
            continue
        email, event_id = item.get("email"), item.get("sg_event_id")
        if not isinstance(email, str) or "@" not in email:
            raise InvalidInput("an event has no email")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidInput("an event has no sg_event_id")
        metadata = {k: item[k] for k in (LIST_KEY, CAMPAIGN_KEY) if isinstance(item.get(k), str)}
        list_name, campaign = list_and_campaign({}, metadata)
        detail = {
            key: str(item[key])
            for key in (
                "event",
                "type",
                "reason",
                "status",
                "bounce_classification",
                "asm_group_id",
            )
            if isinstance(item.get(key), str | int) and not isinstance(item.get(key), bool)
        }
        out.append(
            EspEvent(
                provider=PROVIDER,
                event_id=event_id,
                kind=kind,
                email=email,
                occurred_at=_when(item.get("timestamp")),
                list_name=list_name,
                campaign=campaign,
                detail=detail,
            )
        )
    return out
