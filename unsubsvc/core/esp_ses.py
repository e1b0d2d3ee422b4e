"""Amazon SES events through SNS: the SNS envelope, its signature, and SES's notification JSON.

SNS signs each message with a certificate it serves at ``SigningCertURL``; the
only thing that makes that certificate Amazon's is where it comes from, so the
URL must be https on an ``sns.<region>.amazonaws.com`` host (``.cn`` in China)
and end in ``.pem`` before it is fetched. The signed text is the "canonical
string" SNS documents: ``Name\\nValue\\n`` for fixed keys in byte order.

No I/O here: the caller passes ``certificate_for(url) -> PEM bytes`` (the web
module fetches and caches; tests serve a certificate they made).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.esp_events import (
    EspEvent,
    EspEventKind,
    SignatureRejected,
    json_object,
    list_and_campaign,
)

PROVIDER = "ses"
#: The header SNS names the message type in (the body says it too; both must agree).
MESSAGE_TYPE_HEADER = "x-amz-sns-message-type"
#: Hosts SNS serves certificates and subscription links from.
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

#: The keys signed, in order, per message type (SNS "Verifying the signatures").
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_KEYS = {
    NOTIFICATION: _NOTIFICATION_KEYS,
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_KEYS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_KEYS,
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True)
class SnsMessage:
    """One SNS HTTP(S) delivery, as posted (every field a string, as SNS sends them)."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    signature: str
    signing_cert_url: str
    subject: str | None = None
    subscribe_url: str | None = None
    token: str | None = None


def is_sns_url(url: str, *, certificate: bool) -> bool:
    """Say whether ``url`` is https on an SNS host (and, for a certificate, a ``.pem`` path).

    Parsed, not matched as text: ``sns.us-east-1.amazonaws.com.evil.com``, a
    user-info trick (``https://sns.…@evil.com``) or an explicit port all fail.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or port is not None or parts.username or parts.password:
        return False
    if parts.hostname is None or not SNS_HOST.fullmatch(parts.netloc):
        return False
    return not certificate or (parts.path.endswith(".pem") and not parts.query)


def parse_sns(body: bytes, header_type: str | None = None) -> SnsMessage:
    """Read an SNS delivery; raise InvalidInput when it is not one."""
    data = json_object(body)
    kind = data.get("Type")
    if kind not in SIGNED_KEYS:
        raise InvalidInput("unknown SNS message type")
    if header_type is not None and header_type != kind:
        raise InvalidInput("the x-amz-sns-message-type header and the body disagree")
    for key in SIGNED_KEYS[kind]:
        if key != "Subject" and not isinstance(data.get(key), str):
            raise InvalidInput(f"the SNS message has no {key}")
    # Missing signature fields make an unsigned message, which ``verify`` refuses (403).
    for key in ("SignatureVersion", "Signature", "SigningCertURL"):
        data.setdefault(key, "")
        if not isinstance(data[key], str):
            raise InvalidInput(f"the SNS message's {key} is not a string")
    subject = data.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise InvalidInput("the SNS Subject is not a string")
    return SnsMessage(
        type=kind,
        message_id=data["MessageId"],
        topic_arn=data["TopicArn"],
        message=data["Message"],
        timestamp=data["Timestamp"],
        signature_version=data["SignatureVersion"],
        signature=data["Signature"],
        signing_cert_url=data["SigningCertURL"],
        subject=subject,
        subscribe_url=data.get("SubscribeURL"),
        token=data.get("Token"),
    )


def canonical_string(message: SnsMessage) -> bytes:
    """Return the bytes SNS signed: ``Key\\nValue\\n`` per signed key present, in order."""
    values = {
        "Message": message.message,
        "MessageId": message.message_id,
        "Subject": message.subject,
        "SubscribeURL": message.subscribe_url,
        "Timestamp": message.timestamp,
        "Token": message.token,
        "TopicArn": message.topic_arn,
        "Type": message.type,
    }
    out = []
    for key in SIGNED_KEYS[message.type]:
        value = values[key]
        if value is not None:  # only Subject may be absent (parse_sns checked the rest)
            out.append(f"{key}\n{value}\n")
    return "".join(out).encode("utf-8")


def verify(
    message: SnsMessage,
    certificate_for: Callable[[str], x509.Certificate],
    *,
    now: datetime,
) -> None:
    """Raise SignatureRejected unless SNS's certificate, valid at ``now``, signed ``message``.

    The URL is checked before ``certificate_for`` sees it, so nothing is fetched
    from a host that is not SNS. The certificate's own chain is not walked: it is
    Amazon's because it came over verified TLS from an SNS host (AWS's "Verifying
    the signatures of Amazon SNS messages" asks for exactly that), and its validity
    period is checked so an expired one, still cached or re-served, signs nothing.
    """
    if not message.signature:
        raise SignatureRejected("the SNS message is not signed")
    algorithm = _HASHES.get(message.signature_version)
    if algorithm is None:
        raise SignatureRejected("unknown SNS SignatureVersion")
    if not is_sns_url(message.signing_cert_url, certificate=True):
        raise SignatureRejected("the signing certificate is not on an SNS host")
    try:
        signature = base64.b64decode(message.signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureRejected("the SNS signature is not base64") from exc
    try:
        certificate = certificate_for(message.signing_cert_url)
    except (OSError, ValueError) as exc:
        raise SignatureRejected("the signing certificate could not be fetched") from exc
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SignatureRejected("the signing certificate is expired or not yet valid")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRejected("the signing certificate has no RSA key")
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SignatureRejected("the SNS signature does not match") from exc


class CertificateCache:
    """SNS certificates by URL, each fetched once per process (SNS reuses them for months)."""

    def __init__(self, fetch: Callable[[str], bytes]) -> None:
        self._fetch = fetch
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> x509.Certificate:
        with self._lock:
            known = self._certificates.get(url)
        if known is not None:
            return known
        certificate = x509.load_pem_x509_certificate(self._fetch(url))
        with self._lock:
            self._certificates[url] = certificate
        return certificate


# --- the SES notification carried in Message -------------------------------------------------


@dataclass(frozen=True)
class SesNotification:
    """What unsubsvc takes from one SES notification: its events (none for other types)."""

    kind: str
    events: tuple[EspEvent, ...] = field(default_factory=tuple)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"the SES notification's {what} is not an object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _headers(mail: Mapping[str, Any]) -> dict[str, str]:
    """Return ``mail.headers`` (present when "include original headers" is on) as a mapping."""
    raw = mail.get("headers")
    out: dict[str, str] = {}
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                value = item.get("value")
                if isinstance(value, str):
                    out.setdefault(item["name"], value)
    return out


def _tags(mail: Mapping[str, Any]) -> dict[str, str]:
    """Return ``mail.tags`` (SES message tags: each a list of strings) as first values."""
    raw = mail.get("tags")
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        for key, values in raw.items():
            if isinstance(values, list) and values and isinstance(values[0], str):
                out[str(key)] = values[0]
            elif isinstance(values, str):
                out[str(key)] = values
    return out


def _recipients(items: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"the SES notification has no {what}")
    out = []
    for item in items:
        entry = _object(item, what)
        raw = entry.get("emailAddress")
        address = parseaddr(raw)[1] if isinstance(raw, str) else ""
        if "@" not in address:
            raise InvalidInput(f"an entry of {what} has no address")
        out.append((address, entry))
    return out


def parse_notification(message: str, sns_message_id: str) -> SesNotification:
    """Turn SES's notification JSON (``Message``) into events; other types give none.

    Works for both SES feedback notifications (``notificationType``) and event
    publishing (``eventType``). A Message that is not JSON at all (SES's
    "Successfully validated SNS topic" set-up message) gives none either.
    """
    try:
        data = json.loads(message)
    except ValueError:
        return SesNotification(kind="")
    body = _object(data, "message")
    kind = body.get("notificationType") or body.get("eventType")
    if not isinstance(kind, str):
        return SesNotification(kind="")
    if kind not in ("Bounce", "Complaint"):
        return SesNotification(kind=kind)
    mail = _object(body.get("mail", {}), "mail")
    list_name, campaign = list_and_campaign(_headers(mail), _tags(mail))
    if kind == "Bounce":
        report = _object(body.get("bounce"), "bounce")
        recipients = _recipients(report.get("bouncedRecipients"), "bouncedRecipients")
        bounce_type = _text(report.get("bounceType")) or "Undetermined"
        kind_of = (
            EspEventKind.HARD_BOUNCE if bounce_type == "Permanent" else EspEventKind.SOFT_BOUNCE
        )
        common = {"bounce_type": bounce_type, "bounce_subtype": report.get("bounceSubType")}
    else:
        report = _object(body.get("complaint"), "complaint")
        recipients = _recipients(report.get("complainedRecipients"), "complainedRecipients")
        kind_of = EspEventKind.COMPLAINT
        common = {"feedback_type": report.get("complaintFeedbackType")}
    feedback_id = _text(report.get("feedbackId"))
    occurred_at = _when(report.get("timestamp")) or _when(mail.get("timestamp"))
    events = []
    for index, (address, entry) in enumerate(recipients):
        detail = {k: v for k, v in common.items() if isinstance(v, str) and v}
        for key, name in (("diagnosticCode", "diagnostic_code"), ("status", "status")):
            if _text(entry.get(key)):
                detail[name] = entry[key]
        if _text(mail.get("messageId")):
            detail["message_id"] = mail["messageId"]
        events.append(
            EspEvent(
                provider=PROVIDER,
                event_id=f"{feedback_id or sns_message_id}:{index}",
                kind=kind_of,
                email=address,
                occurred_at=occurred_at,
                list_name=list_name,
                campaign=campaign,
                detail=detail,
            )
        )
    return SesNotification(kind=kind, events=tuple(events))


def topic_allowed(topic_arn: str, allowed: Sequence[str]) -> bool:
    """Say whether a topic may post here: any when none are configured."""
    return not allowed or topic_arn in allowed
