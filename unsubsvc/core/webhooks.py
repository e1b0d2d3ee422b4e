"""Webhook signatures and the retry schedule: plain functions, no I/O.

Every delivery carries a header in the style of Stripe's::

    Unsubsvc-Signature: t=1772443800,v1=<64 lower-case hex digits>

To check it, a receiver

1. splits the header on ``,`` into ``key=value`` items; ``t`` is the time of
   signing in Unix seconds, each ``v1`` a signature (there may be several
   while a secret is being rotated; items with other keys are ignored);
2. computes ``HMAC-SHA256(key=secret, msg=f"{t}.".encode() + body)`` as lower-case
   hex, where ``secret`` is the whole endpoint secret as UTF-8 (``whsec_`` included)
   and ``body`` the raw request body bytes, exactly as received (not re-serialised);
3. accepts the request if that value equals any ``v1`` (compared in constant
   time) and ``t`` is within a tolerance of its own clock (five minutes here),
   so that a captured request cannot be replayed later.

Receivers should deduplicate on ``Unsubsvc-Delivery-Id``: delivery is at least
once, so the same delivery can arrive again after a crash or a timeout.

Also here: when an endpoint that keeps failing is given up on, and how long
delivered rows are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

#: The request header that carries the signature.
SIGNATURE_HEADER = "Unsubsvc-Signature"
#: Every endpoint secret starts with this, so a leaked one is easy to recognise.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
#: How far (in seconds) the signing time may be from the receiver's clock, either way.
DEFAULT_TOLERANCE = 300
#: The wait after the first failed attempt; each further failure doubles it ...
BACKOFF_FIRST = timedelta(seconds=10)
#: ... up to this.
BACKOFF_CAP = timedelta(hours=1)
#: An endpoint that has not accepted a delivery for this long while failing is disabled.
FAILING_LIMIT = timedelta(days=3)

_SCHEME = "v1"


def new_secret() -> str:
    """Return a fresh endpoint secret: ``whsec_`` and 32 random bytes in URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """Return the hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, timestamp: int) -> str:
    """Return the ``Unsubsvc-Signature`` value for ``body`` sent at ``timestamp``.

    Given several secrets (the new one and the one being retired), the header
    carries one ``v1`` per secret, and receivers holding either accept it.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    parts = [f"t={int(timestamp)}"]
    parts.extend(f"{_SCHEME}={signature(key, body, timestamp)}" for key in keys)
    return ",".join(parts)


def parse(header: str) -> tuple[int, list[str]] | None:
    """Return the timestamp and the ``v1`` signatures of a header, or None if it is malformed."""
    timestamp: int | None = None
    found: list[str] = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            return None
        if key == "t":
            digits = value.isascii() and value.isdigit() and len(value) <= 15
            if timestamp is not None or not digits:
                return None
            timestamp = int(value)
        elif key == _SCHEME:
            found.append(value)
    if timestamp is None or not found:
        return None
    return timestamp, found


def verify(
    secret: str | Sequence[str],
    header: str,
    body: bytes,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Return whether ``header`` signs ``body`` with ``secret`` at a time near ``now``.

    ``now`` is the receiver's clock in Unix seconds; a header signed more than
    ``tolerance`` seconds before or after it is refused. A receiver rotating
    its secret passes both; a header with several ``v1`` values passes if any
    of them matches.
    """
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance:
        return False
    keys = [secret] if isinstance(secret, str) else list(secret)
    expected = [signature(key, body, timestamp).encode("ascii") for key in keys]
    matched = False
    # Compare every pair (no early exit) in constant time; bytes, so that
    # non-ASCII input is simply a mismatch rather than a TypeError.
    for candidate in candidates:
        given = candidate.encode("utf-8", "replace")
        for value in expected:
            matched |= hmac.compare_digest(value, given)
    return matched


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
