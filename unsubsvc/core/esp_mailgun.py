"""Mailgun's webhooks: the HMAC signature, its freshness, and the events unsubsvc acts on.

Mailgun posts ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``
and signs it as hex HMAC-SHA256 of ``timestamp + token`` under the domain's HTTP
webhook signing key (Mailgun's "Securing Webhooks"). A signature older or newer
than ``MAX_SKEW`` is refused, and a token is accepted once (the web layer remembers
them), so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import (
    EspEvent,
    EspEventKind,
    SignatureRejected,
    check_signed_time,
    json_object,
    list_and_campaign,
)

PROVIDER = "mailgun"
#: The provider under which seen tokens are kept (``EspEventSeen``), to refuse replays.
REPLAY_GUARD = "mailgun-token"
MAX_SKEW = timedelta(minutes=5)
_PLAIN_KINDS = {"complained": EspEventKind.COMPLAINT, "unsubscribed": EspEventKind.UNSUBSCRIBE}


@dataclass(frozen=True)
class Signed:
    """A parsed webhook body: its signature fields and its event data."""

    timestamp: str
    token: str
    signature: str
    event_data: Mapping[str, Any]


def parse_body(body: bytes) -> Signed:
    """Read the posted JSON; raise InvalidInput when it is not Mailgun's shape."""
    data = json_object(body)
    signature, event_data = data.get("signature"), data.get("event-data")
    if not isinstance(signature, dict) or not isinstance(event_data, dict):
        raise InvalidInput("the body needs signature and event-data objects")
    fields = [signature.get(k) for k in ("timestamp", "token", "signature")]
    if not all(isinstance(v, str) and v for v in fields):
        raise InvalidInput("signature needs timestamp, token and signature")
    timestamp, token, digest = (str(v) for v in fields)
    return Signed(timestamp, token, digest, event_data)


def verify(signing_key: str | None, signed: Signed, *, now: datetime) -> None:
    """Raise SignatureRejected unless the signature is right and at most MAX_SKEW old or new."""
    if not signing_key:
        raise SignatureRejected("no Mailgun signing key is configured")
    expected = hmac.new(
        signing_key.encode("utf-8"),
        (signed.timestamp + signed.token).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), signed.signature.lower().encode("utf-8")):
        raise SignatureRejected("the signature does not match")
    check_signed_time(signed.timestamp, now=now, max_age=MAX_SKEW, max_ahead=MAX_SKEW)


def _kind(data: Mapping[str, Any]) -> EspEventKind | None:
    name = data.get("event")
    if name == "failed":
        severity = data.get("severity")
        if severity == "permanent":
            return EspEventKind.HARD_BOUNCE
        if severity == "temporary":
            return EspEventKind.SOFT_BOUNCE
        raise InvalidInput("a failed event needs severity permanent or temporary")
    return _PLAIN_KINDS.get(name) if isinstance(name, str) else None


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def parse_event(data: Mapping[str, Any]) -> EspEvent | None:
    """Turn ``event-data`` into an event; None for events unsubsvc does not act on."""
    if not isinstance(data.get("event"), str):
        raise InvalidInput("event-data has no event")
    kind = _kind(data)
    if kind is None:
        return None
    email, event_id = data.get("recipient"), data.get("id")
    if not isinstance(email, str):
        raise InvalidInput("event-data has no recipient")
    normalize_address(email)
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("event-data has no id")
    message = data.get("message")
    headers = _strings(message.get("headers")) if isinstance(message, dict) else {}
    list_name, campaign = list_and_campaign(headers, _strings(data.get("user-variables")))
    timestamp = data.get("timestamp")
    occurred_at = None
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            occurred_at = datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            occurred_at = None
    status = data.get("delivery-status")
    detail = {
        key: str(value)
        for key, value in (
            ("event", data.get("event")),
            ("severity", data.get("severity")),
            ("reason", data.get("reason")),
            ("code", status.get("code") if isinstance(status, dict) else None),
        )
        if isinstance(value, str | int) and not isinstance(value, bool)
    }
    return EspEvent(
        provider=PROVIDER,
        event_id=event_id,
        kind=kind,
        email=email,
        occurred_at=occurred_at,
        list_name=list_name,
        campaign=campaign,
        detail=detail,
    )
