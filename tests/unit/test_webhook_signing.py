"""Webhook signatures, the retry schedule, disabling and retention (``unsubsvc.core.webhooks``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from unsubsvc.core.webhooks import (
    SECRET_PREFIX,
    backoff,
    disabled_reason,
    failing_too_long,
    new_secret,
    parse,
    retention_cutoff,
    sign,
    signature,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_test-secret"
OTHER = "whsec_other-secret"
BODY = b'{"id":1,"type":"unsubscribe","email":"ann@example.com"}'
T = 1_772_443_800  # 2026-03-02 09:30:00 UTC


def by_hand(secret: str, body: bytes, timestamp: int) -> str:
    """The recipe a receiver follows, written out without unsubsvc."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_builds_the_documented_header() -> None:
    assert sign(SECRET, BODY, T) == f"t={T},v1={by_hand(SECRET, BODY, T)}"


def test_signature_is_lower_case_hex_sha256() -> None:
    value = signature(SECRET, BODY, T)
    assert len(value) == 64
    assert value == value.lower()
    int(value, 16)


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T)


def test_a_tampered_body_fails() -> None:
    header = sign(SECRET, BODY, T)
    assert not verify(SECRET, header, BODY.replace(b"unsubscribe", b"resubscribe"), now=T)
    assert not verify(SECRET, header, BODY + b" ", now=T)


def test_a_wrong_secret_fails() -> None:
    assert not verify(OTHER, sign(SECRET, BODY, T), BODY, now=T)


def test_a_changed_timestamp_fails() -> None:
    """The time is signed too: moving it breaks the signature even within the tolerance."""
    forged = sign(SECRET, BODY, T).replace(f"t={T}", f"t={T + 1}")
    assert not verify(SECRET, forged, BODY, now=T)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-300, True), (300, True), (-301, False), (301, False), (-86_400, False)],
    ids=["now", "at-tolerance-past", "at-tolerance-future", "stale", "future", "a-day-old"],
)
def test_timestamps_beyond_the_tolerance_are_refused(offset: int, accepted: bool) -> None:
    """``now`` is the receiver's clock; the header was signed at T."""
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T - offset) is accepted


def test_tolerance_can_be_narrowed() -> None:
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY, now=T + 30, tolerance=30)
    assert not verify(SECRET, header, BODY, now=T + 31, tolerance=30)


def test_any_of_several_v1_values_is_accepted() -> None:
    """While a secret rotates, the header carries one v1 per secret; either holder accepts."""
    header = sign([OTHER, SECRET], BODY, T)
    assert header == f"t={T},v1={by_hand(OTHER, BODY, T)},v1={by_hand(SECRET, BODY, T)}"
    assert verify(SECRET, header, BODY, now=T)
    assert verify(OTHER, header, BODY, now=T)
    assert not verify("whsec_third", header, BODY, now=T)


def test_a_receiver_can_hold_the_old_and_the_new_secret() -> None:
    assert verify([OTHER, SECRET], sign(SECRET, BODY, T), BODY, now=T)
    assert not verify(["whsec_a", "whsec_b"], sign(SECRET, BODY, T), BODY, now=T)


def test_unknown_schemes_and_spaces_are_tolerated() -> None:
    header = f"t={T}, v0=deadbeef, v1={by_hand(SECRET, BODY, T)},"
    assert verify(SECRET, header, BODY, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'0' * 64}",
        f"t={T}",
        f"t={T},v0=abc",
        f"t=abc,v1={'0' * 64}",
        f"t=-{T},v1={'0' * 64}",
        f"t={T},t={T},v1={'0' * 64}",
        f"t={'9' * 5000},v1={'0' * 64}",
        f"t={T},v1=\u00e9\u00e9",
        f"t=\u0661\u0662,v1={'0' * 64}",
    ],
    ids=[
        "empty",
        "no-items",
        "no-timestamp",
        "no-signature",
        "only-other-schemes",
        "non-numeric-time",
        "negative-time",
        "two-timestamps",
        "huge-time",
        "non-ascii-signature",
        "non-ascii-digits",
    ],
)
def test_malformed_headers_fail_without_raising(header: str) -> None:
    assert not verify(SECRET, header, BODY, now=T)


def test_parse_returns_time_and_every_v1() -> None:
    assert parse(f"t={T},v1=aa,v0=bb,v1=cc") == (T, ["aa", "cc"])
    assert parse("v1=aa") is None


def test_sign_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign([], BODY, T)


def test_new_secrets_are_prefixed_random_and_fit_the_column() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith(SECRET_PREFIX)
        assert len(secret) <= 100  # Webhook.secret is String(100)
        assert len(secret) - len(SECRET_PREFIX) >= 40  # 32 random bytes in base64


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [
        (1, 10),
        (2, 20),
        (3, 40),
        (4, 80),
        (5, 160),
        (6, 320),
        (7, 640),
        (8, 1280),
        (9, 2560),
        (10, 3600),
        (11, 3600),
        (1000, 3600),
        (10**9, 3600),
    ],
    ids=lambda value: str(value),
)
def test_backoff_doubles_from_ten_seconds_up_to_an_hour(attempts: int, seconds: int) -> None:
    assert backoff(attempts) == timedelta(seconds=seconds)


def test_backoff_is_monotonic_and_exact() -> None:
    waits = [backoff(n) for n in range(1, 30)]
    assert waits == sorted(waits)
    assert sum(waits[:9], timedelta()) == timedelta(seconds=5110)


@pytest.mark.parametrize("attempts", [0, -1], ids=["zero", "negative"])
def test_backoff_needs_a_failed_attempt(attempts: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backoff(attempts)


NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failing_for", "expected"),
    [
        (None, False),
        (timedelta(0), False),
        (timedelta(days=3, seconds=-1), False),
        (timedelta(days=3), True),
        (timedelta(days=30), True),
    ],
    ids=["working", "just-failed", "a-second-short", "three-days", "a-month"],
)
def test_an_endpoint_is_given_up_on_after_three_days_failing(
    failing_for: timedelta | None, expected: bool
) -> None:
    since = None if failing_for is None else NOW - failing_for
    assert failing_too_long(since, NOW) is expected


@pytest.mark.parametrize(
    ("disabled_at", "failing_since", "expected"),
    [
        (None, None, None),
        (None, NOW - timedelta(days=5), None),
        (NOW, None, "disabled by an operator"),
        (NOW, NOW - timedelta(days=1), "disabled by an operator"),
        (
            NOW,
            NOW - timedelta(days=3),
            "failing since 2026-02-27T09:30:00+00:00: no delivery accepted for 3 days",
        ),
    ],
    ids=["active", "active-failing", "operator", "operator-while-failing", "failing"],
)
def test_the_reason_an_endpoint_is_disabled(
    disabled_at: datetime | None, failing_since: datetime | None, expected: str | None
) -> None:
    assert disabled_reason(disabled_at, failing_since) == expected


def test_the_retention_cutoff() -> None:
    assert retention_cutoff(NOW, 30) == NOW - timedelta(days=30)
    with pytest.raises(ValueError, match="at least one day"):
        retention_cutoff(NOW, 0)


def test_the_module_is_pure() -> None:
    """Importing it loads no web, database or CLI framework."""
    probe = (
        "import json, sys, unsubsvc.core.webhooks; "
        "print(json.dumps(sorted(m for m in ('flask', 'sqlalchemy', 'click', 'wtforms', "
        "'flask_sqlalchemy') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
