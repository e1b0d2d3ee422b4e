"""Webhook signatures (Standard Webhooks), the retry schedule, disabling and retention."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import standardwebhooks

from unsubsvc.core.webhooks import (
    ID_HEADER,
    MIN_KEY_BYTES,
    SECRET_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff,
    check_overlap,
    disabled_reason,
    failing_too_long,
    message_id,
    new_secret,
    parse,
    previous_signs,
    retention_cutoff,
    secret_key,
    sign,
    signature,
    standard_form,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
#: A fixed secret in the form unsubsvc makes: ``whsec_`` and base64 of 32 bytes.
SECRET = SECRET_PREFIX + base64.b64encode(bytes(range(32))).decode()
OTHER = SECRET_PREFIX + base64.b64encode(bytes(range(100, 132))).decode()
BODY = b'{"id":1,"type":"unsubscribe","email":"ann@example.com"}'
T = 1_772_443_800  # 2026-03-02 09:30:00 UTC
MSG = "msg_1_1772443800000000"


def by_hand(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The recipe a receiver follows, written out without unsubsvc."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def library_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The signature the reference library (``standardwebhooks``) computes."""
    return standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body
    )


def test_a_known_vector_from_the_reference_library() -> None:
    """A fixed secret, id, time and body give what ``standardwebhooks`` gives for them."""
    expected = library_signature(SECRET, MSG, T, BODY)
    assert signature(SECRET, MSG, T, BODY) == expected == by_hand(SECRET, MSG, T, BODY)
    assert sign(SECRET, MSG, T, BODY) == {
        "webhook-id": MSG,
        "webhook-timestamp": str(T),
        "webhook-signature": expected,
    }


def test_the_reference_library_verifies_a_fresh_signature() -> None:
    """Its ``verify`` reads the real clock: sign at the real time."""
    now = int(datetime.now(UTC).timestamp())
    secret = new_secret()
    headers = sign(secret, MSG, now, BODY)
    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    for changed in (
        {**headers, ID_HEADER: "msg_2_1772443800000000"},
        {**headers, TIMESTAMP_HEADER: str(now - 1)},
    ):
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(secret).verify(BODY, changed)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(BODY, headers)


def test_the_signature_is_base64_sha256() -> None:
    version, _, value = signature(SECRET, MSG, T, BODY).partition(",")
    assert version == "v1"
    assert len(base64.b64decode(value, validate=True)) == 32


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, MSG, T, BODY), BODY, now=T)


def test_header_names_are_matched_whatever_their_case() -> None:
    headers = {key.title(): value for key, value in sign(SECRET, MSG, T, BODY).items()}
    assert verify(SECRET, headers, BODY, now=T)


def test_a_tampered_body_fails() -> None:
    headers = sign(SECRET, MSG, T, BODY)
    assert not verify(SECRET, headers, BODY.replace(b"unsubscribe", b"resubscribe"), now=T)
    assert not verify(SECRET, headers, BODY + b" ", now=T)


def test_a_wrong_secret_fails() -> None:
    assert not verify(OTHER, sign(SECRET, MSG, T, BODY), BODY, now=T)


def test_a_changed_timestamp_fails() -> None:
    """The time is signed too: moving it breaks the signature even within the tolerance."""
    forged = {**sign(SECRET, MSG, T, BODY), TIMESTAMP_HEADER: str(T + 1)}
    assert not verify(SECRET, forged, BODY, now=T)


def test_a_changed_id_fails() -> None:
    """The id is signed: a replay under another id (to pass deduplication) is refused."""
    forged = {**sign(SECRET, MSG, T, BODY), ID_HEADER: "msg_2_1772443800000000"}
    assert not verify(SECRET, forged, BODY, now=T)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-300, True), (300, True), (-301, False), (301, False), (-86_400, False)],
    ids=["now", "at-tolerance-past", "at-tolerance-future", "stale", "future", "a-day-old"],
)
def test_timestamps_beyond_the_tolerance_are_refused(offset: int, accepted: bool) -> None:
    """``now`` is the receiver's clock; the headers were signed at T."""
    assert verify(SECRET, sign(SECRET, MSG, T, BODY), BODY, now=T - offset) is accepted


def test_tolerance_can_be_narrowed() -> None:
    headers = sign(SECRET, MSG, T, BODY)
    assert verify(SECRET, headers, BODY, now=T + 30, tolerance=30)
    assert not verify(SECRET, headers, BODY, now=T + 31, tolerance=30)


def test_several_secrets_give_space_separated_signatures_any_of_which_verifies() -> None:
    """While a secret rotates, the header carries one v1 per secret, the new one first."""
    headers = sign([OTHER, SECRET], MSG, T, BODY)
    assert headers[SIGNATURE_HEADER] == (
        f"{by_hand(OTHER, MSG, T, BODY)} {by_hand(SECRET, MSG, T, BODY)}"
    )
    assert verify(SECRET, headers, BODY, now=T)
    assert verify(OTHER, headers, BODY, now=T)
    assert not verify(new_secret(), headers, BODY, now=T)


def test_a_receiver_can_hold_the_old_and_the_new_secret() -> None:
    assert verify([OTHER, SECRET], sign(SECRET, MSG, T, BODY), BODY, now=T)
    assert not verify([new_secret(), new_secret()], sign(SECRET, MSG, T, BODY), BODY, now=T)


def test_unknown_versions_are_ignored() -> None:
    headers = sign(SECRET, MSG, T, BODY)
    headers[SIGNATURE_HEADER] = "v0,ZGVhZGJlZWY= v1a,abc " + headers[SIGNATURE_HEADER]
    assert verify(SECRET, headers, BODY, now=T)


GOOD = sign(SECRET, MSG, T, BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(T), SIGNATURE_HEADER: GOOD[SIGNATURE_HEADER]},
        {ID_HEADER: MSG, SIGNATURE_HEADER: GOOD[SIGNATURE_HEADER]},
        {ID_HEADER: MSG, TIMESTAMP_HEADER: str(T)},
        {**GOOD, SIGNATURE_HEADER: "v0,abc"},
        {**GOOD, SIGNATURE_HEADER: "garbage"},
        {**GOOD, TIMESTAMP_HEADER: "abc"},
        {**GOOD, TIMESTAMP_HEADER: f"-{T}"},
        {**GOOD, TIMESTAMP_HEADER: "9" * 5000},
        {**GOOD, TIMESTAMP_HEADER: "\u0661\u0662"},
        {**GOOD, SIGNATURE_HEADER: "v1,\u00e9\u00e9"},
    ],
    ids=[
        "none",
        "no-id",
        "no-timestamp",
        "no-signature",
        "only-other-versions",
        "no-version",
        "non-numeric-time",
        "negative-time",
        "huge-time",
        "non-ascii-digits",
        "non-ascii-signature",
    ],
)
def test_malformed_headers_fail_without_raising(headers: dict[str, str]) -> None:
    assert not verify(SECRET, headers, BODY, now=T)


def test_parse_returns_id_time_and_every_v1() -> None:
    headers = {ID_HEADER: MSG, TIMESTAMP_HEADER: str(T), SIGNATURE_HEADER: "v1,aa v0,bb v1,cc"}
    assert parse(headers) == (MSG, T, ["v1,aa", "v1,cc"])
    assert parse({ID_HEADER: MSG, TIMESTAMP_HEADER: str(T)}) is None


def test_sign_needs_a_secret_and_a_plain_id() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign([], MSG, T, BODY)
    for bad in ("", "msg.1", "msg 1"):
        with pytest.raises(ValueError, match="message id"):
            sign(SECRET, bad, T, BODY)


def test_new_secrets_are_prefixed_standard_base64_of_32_random_bytes() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith(SECRET_PREFIX)
        assert len(secret) <= 100
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        assert len(key) == 32
        assert secret_key(secret) == key
        assert standard_form(secret) == secret


def test_secrets_of_the_old_generator_keep_their_32_random_bytes() -> None:
    """Before Standard Webhooks a secret was ``whsec_`` + ``secrets.token_urlsafe(32)``:
    URL-safe unpadded base64. It decodes to those bytes; ``standard_form`` writes them
    the way every Standard Webhooks library reads them."""
    for _ in range(200):
        raw = secrets.token_bytes(32)
        old = SECRET_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert secret_key(old) == raw
        converted = standard_form(old)
        assert converted == SECRET_PREFIX + base64.b64encode(raw).decode()
        headers = sign(old, MSG, T, BODY)
        assert verify(converted, headers, BODY, now=T)
        assert signature(old, MSG, T, BODY) == library_signature(converted, MSG, T, BODY)


@pytest.mark.parametrize(
    "remainder",
    ["test-secret", "c2hvcnQ=", "a+b_" * 10, "!" * 40, ""],
    ids=["not-base64", "too-short", "mixed-alphabets", "punctuation", "empty"],
)
def test_a_remainder_that_is_not_base64_of_24_bytes_is_used_as_text(remainder: str) -> None:
    secret = SECRET_PREFIX + remainder
    assert secret_key(secret) == remainder.encode()
    assert standard_form(secret) == secret
    # Such a key is what a receiver passes as bytes to the reference library.
    if remainder:
        assert signature(secret, MSG, T, BODY) == standardwebhooks.Webhook(remainder.encode()).sign(
            MSG, datetime.fromtimestamp(T, UTC), BODY
        )


def test_the_key_length_threshold() -> None:
    assert MIN_KEY_BYTES == 24
    exactly = base64.b64encode(b"k" * 24).decode()
    assert secret_key(SECRET_PREFIX + exactly) == b"k" * 24
    short = base64.b64encode(b"k" * 23).decode()
    assert secret_key(SECRET_PREFIX + short) == short.encode()


def test_message_ids_name_the_row_and_when_it_was_queued() -> None:
    at = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)
    assert message_id(812, at) == "msg_812_1772443800123456"
    assert message_id(812, at) == message_id(812, at.astimezone(UTC))
    assert message_id(812, at + timedelta(microseconds=1)) != message_id(812, at)
    assert message_id(813, at) != message_id(812, at)


def test_the_previous_secret_signs_until_its_overlap_ends() -> None:
    end = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
    assert previous_signs(end, end - timedelta(seconds=1))
    assert not previous_signs(end, end)
    assert not previous_signs(None, end)


def test_the_overlap_is_bounded() -> None:
    assert check_overlap(timedelta(0)) == timedelta(0)
    assert check_overlap(timedelta(days=30)) == timedelta(days=30)
    for bad in (timedelta(seconds=-1), timedelta(days=30, seconds=1)):
        with pytest.raises(ValueError, match="overlap"):
            check_overlap(bad)


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
