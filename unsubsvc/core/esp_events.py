"""Events from an ESP (Amazon SES, SendGrid, Postmark, Mailgun), in one shape.

Each provider's web module checks the provider's signature and turns its
payload into ``EspEvent`` values; ``services.esp_events`` records them, once per
``(provider, event_id)``. Which list an event concerns comes from the message
itself when it says (its ``List-Id``, RFC 2919, as ``unsubsvc sign`` writes it:
``Display <NAME.DOMAIN>``, or the metadata keys below, which senders set as
custom arguments / metadata / variables at their ESP); otherwise the event
applies to the address on every list of the sender.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from unsubsvc.core.errors import InvalidInput, UnsubsvcError

#: Metadata keys a sender sets at its ESP (SendGrid custom_args, Postmark Metadata,
#: Mailgun user-variables, SES message tags) so events name their list and campaign.
LIST_KEY = "unsubsvc_list"
CAMPAIGN_KEY = "unsubsvc_campaign"

#: The providers, as they appear in channels (``esp:<provider>``) and paths (/inbound/<provider>).
PROVIDERS = ("ses", "sendgrid", "postmark", "mailgun")


class SignatureRejected(UnsubsvcError):
    """Not signed the way the provider signs (or no key configured): refused, nothing changed."""

    status = 403


def json_object(body: bytes) -> dict[str, Any]:
    """Return the posted JSON object; raise InvalidInput when the body is not one."""
    data = json_body(body)
    if not isinstance(data, dict):
        raise InvalidInput("the body is not a JSON object")
    return data


def json_body(body: bytes) -> Any:
    """Return the posted JSON; raise InvalidInput when the body is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not JSON") from exc


def check_signed_time(
    timestamp: str, *, now: datetime, max_age: timedelta, max_ahead: timedelta
) -> None:
    """Raise SignatureRejected unless a signed Unix ``timestamp`` is recent enough.

    Signing a time bounds how long a captured request can be replayed; a
    little ``max_ahead`` allows for the two clocks disagreeing.
    """
    try:
        when = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureRejected("the signed timestamp is not a time") from exc
    if when < now - max_age:
        raise SignatureRejected("the signature is too old")
    if when > now + max_ahead:
        raise SignatureRejected("the signature is dated in the future")


class EspEventKind(StrEnum):
    """What happened, in unsubsvc's terms."""

    HARD_BOUNCE = "hard_bounce"  # permanent: the address does not take mail
    SOFT_BOUNCE = "soft_bounce"  # temporary: full mailbox, greylisting, a busy server
    COMPLAINT = "complaint"  # the recipient marked the message as spam
    UNSUBSCRIBE = "unsubscribe"  # the recipient unsubscribed at the ESP


@dataclass(frozen=True)
class EspEvent:
    """One event about one address, as a provider reported it."""

    provider: str
    #: The provider's own id for the event (or the message id and kind where it has none):
    #: the same report delivered twice is recorded once.
    event_id: str
    kind: EspEventKind
    email: str
    occurred_at: datetime | None = None
    #: The list the message was sent for, when the message or its metadata says.
    list_name: str | None = None
    campaign: str | None = None
    #: What the provider said, for the event log (bounce type, diagnostic code…).
    detail: Mapping[str, str] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return f"esp:{self.provider}"


_LIST_ID = re.compile(r"<([A-Za-z0-9][A-Za-z0-9_-]*)\.[^<>\s]+>\s*$")


def list_from_list_id(value: str | None) -> str | None:
    """Return the list name in a ``List-Id`` value (``Display <NAME.DOMAIN>``), else None."""
    if not value:
        return None
    found = _LIST_ID.search(value.strip())
    return found.group(1) if found else None


def list_and_campaign(
    headers: Mapping[str, str], metadata: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """Return ``(list, campaign)`` from metadata first, then the message's ``List-Id``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    list_name = metadata.get(LIST_KEY) or list_from_list_id(lowered.get("list-id"))
    campaign = metadata.get(CAMPAIGN_KEY) or None
    return (list_name or None), campaign
