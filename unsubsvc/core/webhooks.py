"""Webhook signatures (Standard Webhooks) and the retry schedule: plain functions, no I/O.

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com/), so a
receiver can check them with any of its libraries (``standardwebhooks`` on
PyPI, Svix's) or by hand. Every delivery carries three headers::

    webhook-id: msg_812_1772443800123456
    webhook-timestamp: 1772443800
    webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=

- ``webhook-id`` names the outbox row (``message_id``): every retry of a row
  carries the same id, so receivers deduplicate on it (delivery is at least once);
- ``webhook-timestamp`` is the time of this attempt in Unix seconds;
- ``webhook-signature`` is one or more space-separated ``v1,<base64>`` values,
  each the standard base64 of ``HMAC-SHA256(key, f"{id}.{timestamp}.".encode() + body)``
  with ``body`` the raw request bytes. While a secret is being rotated there is
  one value per secret (the new one first); a receiver accepts the request if
  any matches (in constant time) and the timestamp is within a tolerance of its
  own clock (five minutes), so a captured request cannot be replayed later.

The key is the endpoint secret after its ``whsec_`` prefix, base64-decoded
(``secret_key``). Secrets made now are ``whsec_`` and the standard base64 of
32 random bytes. Secrets made before Standard Webhooks are ``whsec_`` and the
*URL-safe* unpadded base64 of 32 random bytes (``secrets.token_urlsafe``);
those decode too (URL-safe base64 is accepted, padding is optional), to the
same 32 random bytes, so they keep working. A receiver whose library only
takes the standard alphabet writes the old secret in standard base64 (after
the prefix, ``-`` becomes ``+`` and ``_`` becomes ``/``: ``standard_form``), or
rotates it (``unsubsvc webhooks rotate``). A remainder that is not base64 of at least
``MIN_KEY_BYTES`` bytes (never made by unsubsvc) is used as its UTF-8 bytes.

Also here: when an endpoint that keeps failing is given up on, and how long
delivered rows are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

#: The request headers of Standard Webhooks (lower case, as the specification writes them).
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: Every endpoint secret starts with this, so a leaked one is easy to recognise.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
#: Random bytes in a new secret (the specification asks for 24 to 64).
SECRET_BYTES = 32
#: A secret's remainder that decodes to fewer bytes than this is used as text instead.
MIN_KEY_BYTES = 24
#: How far (in seconds) the signing time may be from the receiver's clock, either way.
DEFAULT_TOLERANCE = 300
#: How long the replaced secret keeps signing after a rotation, unless told otherwise.
DEFAULT_OVERLAP = timedelta(hours=24)
#: The longest overlap a rotation may ask for.
MAX_OVERLAP = timedelta(days=30)
#: The wait after the first failed attempt; each further failure doubles it ...
BACKOFF_FIRST = timedelta(seconds=10)
#: ... up to this.
BACKOFF_CAP = timedelta(hours=1)
#: An endpoint that has not accepted a delivery for this long while failing is disabled.
FAILING_LIMIT = timedelta(days=3)

_SCHEME = "v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STANDARD = re.compile(r"[A-Za-z0-9+/]+")
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def new_secret() -> str:
    """Return a fresh endpoint secret: ``whsec_`` and 32 random bytes in standard base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _decode_base64(text: str) -> bytes | None:
    """Return ``text`` decoded as base64 (standard or URL-safe alphabet, padding optional).

    None if it is not base64: characters of both alphabets, others, or a bad length.
    """
    data = text.rstrip("=")
    padding = len(text) - len(data)
    if not data or padding > 2 or len(data) % 4 == 1:
        return None
    if padding and (len(data) + padding) % 4:
        return None  # padding present but wrong
    padded = data + "=" * (-len(data) % 4)
    try:
        if _STANDARD.fullmatch(data):
            return base64.b64decode(padded, validate=True)
        if _URLSAFE.fullmatch(data):
            return base64.urlsafe_b64decode(padded)
    except binascii.Error:
        return None
    return None


def secret_key(secret: str) -> bytes:
    """Return the HMAC key of an endpoint secret: its base64 part after ``whsec_``, decoded.

    A remainder that is not base64 of at least ``MIN_KEY_BYTES`` bytes is taken
    as its UTF-8 bytes (unsubsvc never made such a secret; see the module doc).
    """
    remainder = secret.removeprefix(SECRET_PREFIX)
    decoded = _decode_base64(remainder)
    if decoded is not None and len(decoded) >= MIN_KEY_BYTES:
        return decoded
    return remainder.encode("utf-8")


def standard_form(secret: str) -> str:
    """Return ``secret`` as ``whsec_`` and standard padded base64 of its key, if it has one.

    Secrets made before Standard Webhooks use the URL-safe alphabet; this is the
    same key written as every Standard Webhooks library reads it. A secret whose
    remainder is not base64 is returned as it is.
    """
    remainder = secret.removeprefix(SECRET_PREFIX)
    decoded = _decode_base64(remainder)
    if decoded is None or len(decoded) < MIN_KEY_BYTES:
        return secret
    return SECRET_PREFIX + base64.b64encode(decoded).decode("ascii")


def message_id(delivery_id: int, created_at: datetime) -> str:
    """Return the ``webhook-id`` of an outbox row: the same on every attempt at that row.

    The row's id and the microsecond it was queued: SQLite may reuse the id of
    a purged row, and the time keeps two such rows apart for receivers that
    remember ids longer than the retention period.
    """
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"msg_{delivery_id}_{micros}"


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return ``v1,<base64 HMAC-SHA256>`` of ``f"{msg_id}.{timestamp}.".encode() + body``."""
    message = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return f"{_SCHEME},{base64.b64encode(digest).decode('ascii')}"


def sign(secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three Standard Webhooks headers for ``body`` sent as ``msg_id`` at ``timestamp``.

    Given several secrets (the new one and the one being retired), the
    signature header carries one ``v1,…`` per secret, space-separated, and
    receivers holding either accept it.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    if not msg_id or "." in msg_id or any(ch.isspace() for ch in msg_id):
        raise ValueError("a message id must be non-empty, without dots or spaces")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }


def parse(headers: Mapping[str, str]) -> tuple[str, int, list[str]] | None:
    """Return the id, timestamp and ``v1`` signatures of the headers, or None if malformed.

    Header names are matched case-insensitively; signatures of other versions are ignored.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get(ID_HEADER, "")
    stamp = lowered.get(TIMESTAMP_HEADER, "")
    if not msg_id or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        return None
    found = []
    for item in lowered.get(SIGNATURE_HEADER, "").split(" "):
        version, sep, value = item.partition(",")
        if sep and version == _SCHEME and value:
            found.append(item)
    if not found:
        return None
    return msg_id, int(stamp), found


def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Return whether ``headers`` sign ``body`` with ``secret`` at a time near ``now``.

    ``now`` is the receiver's clock in Unix seconds; a message signed more than
    ``tolerance`` seconds before or after it is refused. A receiver rotating
    its secret passes both; a header with several ``v1`` values passes if any
    of them matches.
    """
    parsed = parse(headers)
    if parsed is None:
        return False
    msg_id, timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance:
        return False
    keys = [secret] if isinstance(secret, str) else list(secret)
    expected = [signature(key, msg_id, timestamp, body).encode("ascii") for key in keys]
    matched = False
    # Compare every pair (no early exit) in constant time; bytes, so that
    # non-ASCII input is simply a mismatch rather than a TypeError.
    for candidate in candidates:
        given = candidate.encode("utf-8", "replace")
        for value in expected:
            matched |= hmac.compare_digest(value, given)
    return matched


def previous_signs(previous_until: datetime | None, now: datetime) -> bool:
    """Return whether a secret a rotation replaced still signs at ``now`` (its overlap lasts)."""
    return previous_until is not None and now < previous_until


def check_overlap(overlap: timedelta) -> timedelta:
    """Return ``overlap`` if a rotation may keep the old secret that long, else raise ValueError."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise ValueError(f"the overlap must be between 0 and {MAX_OVERLAP.days * 24} hours")
    return overlap


def backoff(attempts: int) -> timedelta:
    """Return how long to wait after ``attempts`` failed attempts: 10 s doubling, at most 1 h.

    The schedule is exact (no jitter), so tests and operators can predict it:
    10 s, 20 s, 40 s, 80 s, 160 s, 320 s, 640 s, 1280 s, 2560 s, then 3600 s
    from the tenth failure on: retries settle into once an hour after about
    85 minutes of trying.
    """
    if attempts < 1:
        raise ValueError("backoff is for after a failed attempt: attempts must be at least 1")
    # 2**9 * 10 s already exceeds the cap: a bounded exponent keeps huge counts cheap.
    delay: timedelta = BACKOFF_FIRST * 2 ** min(attempts - 1, 9)
    return min(delay, BACKOFF_CAP)


def failing_too_long(failing_since: datetime | None, now: datetime) -> bool:
    """Return whether an endpoint failing since ``failing_since`` should be disabled at ``now``.

    Three days of retries (hourly after the first 85 minutes, ``backoff``)
    outlast a weekend outage; past that the receiver is gone or broken, and
    operators see it disabled with the reason rather than a growing backlog.
    """
    return failing_since is not None and now - failing_since >= FAILING_LIMIT


def disabled_reason(disabled_at: datetime | None, failing_since: datetime | None) -> str | None:
    """Return why an endpoint is disabled, or None while it is active.

    No column says who disabled it: the deliverer disables only endpoints that
    had been failing for ``FAILING_LIMIT`` when it did, so that is the test.
    """
    if disabled_at is None:
        return None
    if failing_since is not None and disabled_at - failing_since >= FAILING_LIMIT:
        return (
            f"failing since {failing_since.isoformat()}: "
            f"no delivery accepted for {FAILING_LIMIT.days} days"
        )
    return "disabled by an operator"


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Return the time before which delivered rows (and their attempts) may be purged."""
    if days < 1:
        raise ValueError("the retention is at least one day")
    return now - timedelta(days=days)
