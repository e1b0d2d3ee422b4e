"""Signed tokens: round trips, purposes, per-purpose keys, rotation, legacy links, tampering."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import random
import string
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer, TimestampSigner

from unsubsvc.core import tokens
from unsubsvc.core.errors import InvalidToken
from unsubsvc.core.keys import KeyPurpose, Keyring
from unsubsvc.core.tokens import (
    MAX_DATABASE_ID,
    MAX_TOKEN_LENGTH,
    Purpose,
    TokenPayload,
    TokenSigner,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PUBLIC_ID = "Xy3_-AbCdEfGh012"  # 16 characters, like secrets.token_urlsafe(12)
PAYLOAD = TokenPayload(list_id=7, subscriber=PUBLIC_ID, topic_id=3, campaign_id=42)
BASE64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def signer_for(*secrets: str, max_age: int | None = None) -> TokenSigner:
    """Return the signer a service configured with ``secrets`` (newest first) uses."""
    return TokenSigner(Keyring(secrets), max_age=max_age)


def derived(secrets: Sequence[str], purpose: Purpose) -> list[bytes]:
    """Return the itsdangerous secrets new ``purpose`` tokens are signed with, newest first."""
    return list(Keyring(tuple(secrets)).keys(purpose.key_purpose))


def accepted(secrets: Sequence[str], purpose: Purpose) -> list[str | bytes]:
    """Return every itsdangerous secret a signer over ``secrets`` accepts: derived, then legacy."""
    return [*derived(secrets, purpose), *secrets]


def split_token(token: str) -> tuple[str, str, str]:
    """Return the payload, timestamp and signature parts of a token."""
    payload, timestamp, signature = token.rsplit(".", 2)
    return payload, timestamp, signature


def other_char(ch: str) -> str:
    """Return a different character that changes the decoded bits at its position.

    Moving 32 places along the base64 alphabet flips the top bit of the 6-bit
    group; the low bits of a final base64 character can be padding that
    decoders ignore, so a neighbouring letter would not always be a change.
    """
    if ch in BASE64_ALPHABET:
        return BASE64_ALPHABET[(BASE64_ALPHABET.index(ch) + 32) % 64]
    return "A"


@pytest.fixture
def signer() -> TokenSigner:
    return signer_for("current-key-0123456789")


@pytest.fixture
def token(signer: TokenSigner) -> str:
    return signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)


@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
def test_round_trip(signer: TokenSigner, purpose: Purpose) -> None:
    """A token verifies under its own purpose and gives back the payload it was signed with."""
    token = signer.sign(purpose, PAYLOAD, now=NOW)
    assert signer.verify(purpose, token, now=NOW) == PAYLOAD


def test_round_trip_without_optional_ids(signer: TokenSigner) -> None:
    """A payload without topic or campaign comes back with None for both."""
    payload = TokenPayload(list_id=0, subscriber=PUBLIC_ID)
    token = signer.sign(Purpose.PREFERENCES, payload, now=NOW)
    decoded = signer.verify(Purpose.PREFERENCES, token, now=NOW)
    assert decoded == payload
    assert decoded.topic_id is None
    assert decoded.campaign_id is None


@pytest.mark.parametrize(
    ("signed_as", "verified_as"),
    [
        (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES),
        (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE),
    ],
    ids=["unsubscribe-as-preferences", "preferences-as-unsubscribe"],
)
def test_purposes_refuse_each_other(
    signer: TokenSigner, signed_as: Purpose, verified_as: Purpose
) -> None:
    """A token minted for one purpose is refused by the other."""
    token = signer.sign(signed_as, PAYLOAD, now=NOW)
    with pytest.raises(InvalidToken):
        signer.verify(verified_as, token, now=NOW)


def test_purpose_salts_differ() -> None:
    """Each purpose signs with a salt of its own."""
    assert Purpose.UNSUBSCRIBE.salt != Purpose.PREFERENCES.salt


def test_rotated_signer_verifies_old_token() -> None:
    """After rotation, a token signed with the old key still verifies."""
    old_token = signer_for("old").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)
    rotated = signer_for("new", "old")
    assert rotated.verify(Purpose.UNSUBSCRIBE, old_token, now=NOW) == PAYLOAD


def test_rotated_signer_signs_with_first_key() -> None:
    """New tokens are signed with the first (newest) key, not with the old one."""
    new_token = signer_for("new", "old").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)
    assert signer_for("new").verify(Purpose.UNSUBSCRIBE, new_token, now=NOW) == PAYLOAD
    with pytest.raises(InvalidToken):
        signer_for("old").verify(Purpose.UNSUBSCRIBE, new_token, now=NOW)


def test_foreign_key_is_refused() -> None:
    """A token signed with a key the service does not hold is refused."""
    foreign = signer_for("someone-else").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)
    with pytest.raises(InvalidToken):
        signer_for("new", "old").verify(Purpose.UNSUBSCRIBE, foreign, now=NOW)


@pytest.mark.parametrize(
    "keys",
    [[], [""], ["", ""], ["k", ""]],
    ids=["no-keys", "one-empty-key", "only-empty-keys", "one-of-them-empty"],
)
def test_signer_needs_a_key(keys: list[str]) -> None:
    """A signer without a usable key cannot be built."""
    with pytest.raises(ValueError, match="secret key"):
        signer_for(*keys)


@pytest.mark.parametrize(
    "raw",
    ["long-secret-key", ["long-secret-key"], b"long-secret-key"],
    ids=["bare-string", "list-of-secrets", "bytes"],
)
def test_signer_refuses_raw_secrets(raw: object) -> None:
    """A signer takes a Keyring: raw secrets would sign with the shared key again."""
    with pytest.raises(TypeError, match="Keyring"):
        TokenSigner(raw)  # type: ignore[arg-type]


# --- keys per purpose, legacy links --------------------------------------------------------


@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
@pytest.mark.parametrize(
    "secrets",
    [["current-key-0123456789"], ["new-key", "current-key-0123456789", "older-key"]],
    ids=["one-secret", "second-of-three"],
)
def test_token_made_the_old_way_still_verifies(purpose: Purpose, secrets: list[str]) -> None:
    """A token itsdangerous signed over the raw configured secret (mail already sent) verifies."""
    legacy = reference_sign(["current-key-0123456789"], purpose, PAYLOAD, NOW)
    assert signer_for(*secrets).verify(purpose, legacy, now=NOW) == PAYLOAD


@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
def test_new_token_does_not_verify_with_the_raw_secret(purpose: Purpose) -> None:
    """New tokens are signed with the derived key only: the raw secret alone cannot check them."""
    token = signer_for("current-key-0123456789").sign(purpose, PAYLOAD, now=NOW)
    with pytest.raises(BadSignature):
        FixedTimeSigner(["current-key-0123456789"], purpose.salt, 0).unsign(token)
    assert token != reference_sign(["current-key-0123456789"], purpose, PAYLOAD, NOW)
    reference = FixedTimeSigner(derived(["current-key-0123456789"], purpose), purpose.salt, 0)
    assert reference.unsign(token) == PAYLOAD.encode().encode()


@pytest.mark.parametrize(
    ("purpose", "key_purpose"),
    [
        (Purpose.UNSUBSCRIBE, KeyPurpose.UNSUBSCRIBE_LINKS),
        (Purpose.PREFERENCES, KeyPurpose.PREFERENCE_LINKS),
    ],
    ids=["unsubscribe", "preferences"],
)
def test_each_purpose_signs_with_its_own_derived_key(
    purpose: Purpose, key_purpose: KeyPurpose
) -> None:
    """Unsubscribe and preference tokens are signed with their own keyring keys."""
    keyring = Keyring(("current-key-0123456789",))
    assert purpose.key_purpose is key_purpose
    expected = FixedTimeSigner([keyring.current(key_purpose)], purpose.salt, int(NOW.timestamp()))
    token = TokenSigner(keyring).sign(purpose, PAYLOAD, now=NOW)
    assert token == expected.sign(PAYLOAD.encode()).decode()


@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
@pytest.mark.parametrize("other", list(KeyPurpose), ids=[p.value for p in KeyPurpose])
def test_another_purposes_key_does_not_sign_tokens(purpose: Purpose, other: KeyPurpose) -> None:
    """Under the right salt, a token signed with another purpose's derived key is refused.

    So the session key (Flask's SECRET_KEY) or the other link key cannot mint links.
    """
    if other is purpose.key_purpose:
        return  # the token's own key: the round-trip tests cover it
    keyring = Keyring(("current-key-0123456789",))
    forged = reference_sign([keyring.current(other)], purpose, PAYLOAD, NOW)
    with pytest.raises(InvalidToken):
        TokenSigner(keyring).verify(purpose, forged, now=NOW)


@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
def test_rotation_works_per_purpose(purpose: Purpose) -> None:
    """After rotation each purpose verifies its own old tokens, signs with its new key."""
    other = next(p for p in Purpose if p is not purpose)
    old_token = signer_for("old").sign(purpose, PAYLOAD, now=NOW)
    rotated = signer_for("new", "old")
    assert rotated.verify(purpose, old_token, now=NOW) == PAYLOAD
    with pytest.raises(InvalidToken):
        rotated.verify(other, old_token, now=NOW)
    new_token = rotated.sign(purpose, PAYLOAD, now=NOW)
    assert new_token == reference_sign(derived(["new"], purpose), purpose, PAYLOAD, NOW)
    assert signer_for("new").verify(purpose, new_token, now=NOW) == PAYLOAD
    with pytest.raises(InvalidToken):
        signer_for("old").verify(purpose, new_token, now=NOW)


def test_legacy_tokens_of_one_purpose_do_not_pass_as_the_other() -> None:
    """The legacy fallback keeps a salt per purpose: an old preferences link cannot unsubscribe."""
    legacy = reference_sign(["current-key-0123456789"], Purpose.PREFERENCES, PAYLOAD, NOW)
    with pytest.raises(InvalidToken):
        signer_for("current-key-0123456789").verify(Purpose.UNSUBSCRIBE, legacy, now=NOW)


@pytest.mark.parametrize(
    ("signed_with", "compared"),
    [
        (lambda: signer_for("new").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW), 1),
        (lambda: signer_for("old").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW), 2),
        (lambda: reference_sign(["new"], Purpose.UNSUBSCRIBE, PAYLOAD, NOW), 3),
        (lambda: reference_sign(["old"], Purpose.UNSUBSCRIBE, PAYLOAD, NOW), 4),
    ],
    ids=["current-derived", "older-derived", "legacy-current", "legacy-older"],
)
def test_verification_tries_the_current_derived_key_first(
    signed_with: Callable[[], str], compared: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Derived keys are tried newest first, then legacy ones: a fresh link costs one HMAC."""
    signer = signer_for("new", "old")
    token = signed_with()
    calls: list[str] = []
    compare_digest = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append(a)
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW) == PAYLOAD
    assert len(calls) == compared


@pytest.mark.parametrize(
    ("part", "index"),
    [
        ("payload", 0),
        ("payload", 6),
        ("payload", -1),
        ("timestamp", 0),
        ("timestamp", -1),
        ("signature", 0),
        ("signature", 20),
        ("signature", -2),
        ("signature", -1),
    ],
    ids=[
        "payload-version",
        "payload-public-id",
        "payload-last",
        "timestamp-first",
        "timestamp-last",
        "signature-first",
        "signature-middle",
        "signature-second-to-last",
        "signature-last",
    ],
)
def test_one_changed_character_is_refused(
    signer: TokenSigner, token: str, part: str, index: int
) -> None:
    """Changing any one character of a token makes it invalid."""
    payload, timestamp, signature = split_token(token)
    start = {"payload": 0, "timestamp": len(payload) + 1, "signature": len(token) - len(signature)}
    length = {"payload": len(payload), "timestamp": len(timestamp), "signature": len(signature)}
    position = start[part] + (index % length[part])
    tampered = token[:position] + other_char(token[position]) + token[position + 1 :]
    assert tampered != token
    assert len(tampered) == len(token)
    with pytest.raises(InvalidToken):
        signer.verify(Purpose.UNSUBSCRIBE, tampered, now=NOW)


@pytest.mark.parametrize(
    "keep",
    [
        lambda t: 1,
        lambda t: 10,
        lambda t: len(split_token(t)[0]),
        lambda t: len(split_token(t)[0]) + 1,
        lambda t: t.rindex("."),
        lambda t: t.rindex(".") + 1,
        lambda t: len(t) - 10,
        lambda t: len(t) - 1,
    ],
    ids=[
        "one-char",
        "ten-chars",
        "payload-only",
        "payload-and-dot",
        "without-signature",
        "empty-signature",
        "signature-cut-by-ten",
        "last-char-missing",
    ],
)
def test_truncated_token_is_refused(
    signer: TokenSigner, token: str, keep: Callable[[str], int]
) -> None:
    """A token cut short anywhere is refused."""
    cut = token[: keep(token)]
    assert 0 < len(cut) < len(token)
    with pytest.raises(InvalidToken):
        signer.verify(Purpose.UNSUBSCRIBE, cut, now=NOW)


def test_token_with_extra_character_is_refused(signer: TokenSigner, token: str) -> None:
    """A token with something appended is refused."""
    with pytest.raises(InvalidToken):
        signer.verify(Purpose.UNSUBSCRIBE, token + "A", now=NOW)


JUNK = {
    "empty": "",
    "dot": ".",
    "three-dots": "...",
    "random-bytes-latin1": random.Random(8058).randbytes(64).decode("latin-1"),
    "random-bytes-hex": random.Random(2369).randbytes(40).hex(),
    "ten-kb-junk": "A" * 10 * 1024,
    "ten-kb-of-dots": "a." * 5 * 1024,
    "just-over-max-length": "A" * (MAX_TOKEN_LENGTH + 1),
    "non-ascii": "1.7.Xy3_-AbCdEfGh012.3.16.aVW5AA.éèê",
    "nul": "\x00",
    "shape-without-signature": "1.7.Xy3_-AbCdEfGh012.3.16",
}


@pytest.mark.parametrize("junk", list(JUNK.values()), ids=list(JUNK))
def test_junk_is_refused(signer: TokenSigner, junk: str) -> None:
    """Anything that is not a token signed by us raises InvalidToken, nothing else."""
    with pytest.raises(InvalidToken):
        signer.verify(Purpose.UNSUBSCRIBE, junk, now=NOW)


def test_non_ascii_variant_of_real_token_is_refused(signer: TokenSigner, token: str) -> None:
    """A genuine token with one character swapped for a non-ASCII one is refused."""
    with pytest.raises(InvalidToken):
        signer.verify(Purpose.UNSUBSCRIBE, token[:-1] + "é", now=NOW)


def test_year_old_token_verifies_without_max_age() -> None:
    """Tokens do not expire by default: a link in a year-old message still works."""
    signer = signer_for("k")
    assert signer.max_age is None
    old = signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW - timedelta(days=365))
    assert signer.verify(Purpose.UNSUBSCRIBE, old, now=NOW) == PAYLOAD
    assert signer.verify(Purpose.UNSUBSCRIBE, old) == PAYLOAD


def test_token_younger_than_max_age_verifies() -> None:
    """With max_age set, a token within its lifetime verifies."""
    signer = signer_for("k", max_age=3600)
    token = signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)
    later = NOW + timedelta(minutes=59)
    assert signer.verify(Purpose.UNSUBSCRIBE, token, now=later) == PAYLOAD


@pytest.mark.parametrize(
    "age",
    [timedelta(hours=1, seconds=1), timedelta(days=365)],
    ids=["just-over", "a-year"],
)
def test_token_older_than_max_age_is_expired(age: timedelta) -> None:
    """With max_age set, an older token is refused as expired."""
    signer = signer_for("k", max_age=3600)
    token = signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW - age)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW)


def test_tampered_token_is_not_reported_as_expired() -> None:
    """With max_age set, a changed fresh token is called invalid, not expired."""
    signer = signer_for("k", max_age=3600)
    token = signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW)
    tampered = token[:-2] + other_char(token[-2]) + token[-1]
    with pytest.raises(InvalidToken, match="not valid") as info:
        signer.verify(Purpose.UNSUBSCRIBE, tampered, now=NOW)
    assert "expired" not in str(info.value)


def test_token_carries_only_ids_and_public_id() -> None:
    """The readable payload holds the ids and the public id given, and nothing else."""
    fields = {f.name for f in dataclasses.fields(TokenPayload)}
    assert fields == {"list_id", "subscriber", "topic_id", "campaign_id"}

    payload = TokenPayload(list_id=99_999, subscriber=PUBLIC_ID, topic_id=12, campaign_id=None)
    token = signer_for("k").sign(Purpose.UNSUBSCRIBE, payload, now=NOW)
    text, _, _ = split_token(token)
    decoded = TokenPayload.decode(text)
    assert dataclasses.asdict(decoded) == {
        "list_id": 99_999,
        "subscriber": PUBLIC_ID,
        "topic_id": 12,
        "campaign_id": None,
    }
    # version, list id (base 36), public id, topic id (base 36), empty campaign id
    assert text.split(".") == ["1", "255r", PUBLIC_ID, "c", ""]
    assert "@" not in token


def test_token_is_short_with_large_ids() -> None:
    """Even large ids give a token well under 100 characters."""
    payload = TokenPayload(
        list_id=99_999, subscriber=PUBLIC_ID, topic_id=99_999, campaign_id=9_999_999
    )
    for purpose in Purpose:
        token = signer_for("k").sign(purpose, payload, now=NOW)
        assert len(token) < 100, token


def test_token_is_url_safe(token: str) -> None:
    """A token needs no escaping in a URI path or a mail subject."""
    assert set(token) <= set(BASE64_ALPHABET + ".")


@pytest.mark.parametrize(
    "public_id",
    [
        "",
        "short12",  # 7 characters, minimum is 8
        "A" * 65,
        "has space-12345",
        "slash/in/public/id",
        "plus+and=equals12",
        "dot.in.public.id",
        "éèêëéèêëéèêëéèêë",
        "newline-at-end-\n",
    ],
    ids=[
        "empty",
        "too-short",
        "too-long",
        "space",
        "slash",
        "plus-equals",
        "dot",
        "non-ascii",
        "trailing-newline",
    ],
)
def test_encode_rejects_bad_public_id(public_id: str) -> None:
    """Only URL-safe base64 public ids of 8 to 64 characters can go into a token."""
    with pytest.raises(ValueError, match="public id"):
        TokenPayload(list_id=1, subscriber=public_id).encode()


@pytest.mark.parametrize(
    "payload",
    [
        TokenPayload(list_id=-1, subscriber=PUBLIC_ID),
        TokenPayload(list_id=1, subscriber=PUBLIC_ID, topic_id=-1),
        TokenPayload(list_id=1, subscriber=PUBLIC_ID, campaign_id=-5),
    ],
    ids=["negative-list", "negative-topic", "negative-campaign"],
)
def test_encode_rejects_negative_ids(payload: TokenPayload) -> None:
    """Ids are non-negative."""
    with pytest.raises(ValueError, match="non-negative"):
        payload.encode()


def test_encode_rejects_ids_that_decode_cannot_read() -> None:
    """sign() must not mint a token that verify() can never accept."""
    with pytest.raises(ValueError):
        TokenPayload(list_id=36**13, subscriber=PUBLIC_ID).encode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2.7.Xy3_-AbCdEfGh012.3.16",
        "1.7.Xy3_-AbCdEfGh012.3",
        "1.7.Xy3_-AbCdEfGh012.3.16.x",
        "1..Xy3_-AbCdEfGh012.3.16",
        "1.7A.Xy3_-AbCdEfGh012.3.16",
        "1.-7.Xy3_-AbCdEfGh012.3.16",
        "1.7.short.3.16",
        "1.7.Xy3_-AbCdEfGh012.3.1g!",
    ],
    ids=[
        "empty",
        "wrong-version",
        "too-few-fields",
        "too-many-fields",
        "empty-list-id",
        "uppercase-base36",
        "negative-list-id",
        "short-public-id",
        "bad-campaign-id",
    ],
)
def test_decode_rejects_malformed_payload(text: str) -> None:
    """Text that is not a payload raises InvalidToken."""
    with pytest.raises(InvalidToken):
        TokenPayload.decode(text)


def test_encode_decode_round_trip() -> None:
    """decode reads back exactly what encode wrote."""
    assert PAYLOAD.encode() == "1.7.Xy3_-AbCdEfGh012.3.16"
    assert TokenPayload.decode(PAYLOAD.encode()) == PAYLOAD


PROPERTY_SIGNER = signer_for("property-key")
ids_ = st.integers(min_value=0, max_value=2**63 - 1)


@hypothesis_settings(database=None, deadline=None, max_examples=200)
@given(
    purpose=st.sampled_from(list(Purpose)),
    list_id=ids_,
    public_id=st.text(alphabet=BASE64_ALPHABET, min_size=16, max_size=16),
    topic_id=st.none() | ids_,
    campaign_id=st.none() | ids_,
)
def test_round_trip_property(
    purpose: Purpose,
    list_id: int,
    public_id: str,
    topic_id: int | None,
    campaign_id: int | None,
) -> None:
    """Any ids and 16-character public id survive a sign/verify round trip."""
    payload = TokenPayload(list_id, public_id, topic_id=topic_id, campaign_id=campaign_id)
    token = PROPERTY_SIGNER.sign(purpose, payload, now=NOW)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert PROPERTY_SIGNER.verify(purpose, token, now=NOW) == payload


# --- the same bytes as itsdangerous -----------------------------------------------------------
#
# Tokens already in inboxes were made by itsdangerous's TimestampSigner (HMAC-SHA256,
# "django-concat" key derivation, a salt per purpose). itsdangerous stays the reference.


class FixedTimeSigner(TimestampSigner):
    """itsdangerous's TimestampSigner with the clock set by the test."""

    def __init__(self, keys: Sequence[str | bytes], salt: str, seconds: int) -> None:
        # itsdangerous signs with the last key: our lists are newest first.
        super().__init__(
            [k.encode() if isinstance(k, str) else k for k in reversed(keys)],
            salt=salt,
            digest_method=hashlib.sha256,
            key_derivation="django-concat",
        )
        self.seconds = seconds

    def get_timestamp(self) -> int:
        return self.seconds


def reference_sign(
    keys: Sequence[str | bytes], purpose: Purpose, payload: TokenPayload, now: datetime
) -> str:
    """Return the token itsdangerous writes for these keys, purpose, payload and time."""
    signer = FixedTimeSigner(keys, purpose.salt, int(now.timestamp()))
    return signer.sign(payload.encode()).decode("ascii")


#: Made by the itsdangerous-based signer over the raw secret, before keys were derived
#: per purpose, and pinned here: these links are in inboxes, and must keep working.
GOLDEN = [
    (
        ["current-key-0123456789"],
        Purpose.UNSUBSCRIBE,
        "1.7.Xy3_-AbCdEfGh012.3.16.aaVYmA.52orrC2nGB6-T0KekIO-BlrNdmJXI3WTefZhC9NC_3A",
    ),
    (
        ["current-key-0123456789"],
        Purpose.PREFERENCES,
        "1.7.Xy3_-AbCdEfGh012.3.16.aaVYmA.FqvnjNP5scvJCqJszYsvwac_HkpVBFBV_M_yBz4Chbo",
    ),
    (
        ["bytes-key"],  # signed as b"bytes-key": itsdangerous encodes str keys as UTF-8
        Purpose.UNSUBSCRIBE,
        "1.7.Xy3_-AbCdEfGh012.3.16.aaVYmA.LoJzMl4V-wJoj0Sbp1zkOLXpXtQmRW9GA3gDne-eZ_k",
    ),
    (
        ["new", "old"],
        Purpose.PREFERENCES,
        "1.7.Xy3_-AbCdEfGh012.3.16.aaVYmA.uhOQ-Oq4VbQB69orgdFh4XmGSSgw9TaLOLKbQBLBy-c",
    ),
]


@pytest.mark.parametrize(
    ("keys", "purpose", "expected"),
    GOLDEN,
    ids=["unsubscribe", "preferences", "bytes-key", "rotated-preferences"],
)
def test_golden_tokens(keys: list[str], purpose: Purpose, expected: str) -> None:
    """Legacy links verify, byte for byte the old scheme's; new tokens are no longer those."""
    assert reference_sign(keys, purpose, PAYLOAD, NOW) == expected
    assert signer_for(*keys).verify(purpose, expected, now=NOW) == PAYLOAD
    assert signer_for(*keys).sign(purpose, PAYLOAD, now=NOW) != expected


COMPAT_KEYS = {
    "str-key": ["current-key-0123456789"],
    "long-key": ["k" * 200],
    "non-ascii-key": ["clé-secrète"],
    "rotated": ["new-key", "old-key", "older-key"],
}
COMPAT_TIMES = {
    "now": NOW,
    "epoch": datetime(1970, 1, 1, tzinfo=UTC),
    "one-second": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    "far-future": datetime(2200, 1, 1, tzinfo=UTC),
}
COMPAT_PAYLOADS = {
    "all-ids": PAYLOAD,
    "list-only": TokenPayload(list_id=0, subscriber=PUBLIC_ID),
    "large-ids": TokenPayload(36**13 - 1, "A" * 64, topic_id=2**31, campaign_id=2**63 - 1),
}


@pytest.mark.parametrize("payload", list(COMPAT_PAYLOADS.values()), ids=list(COMPAT_PAYLOADS))
@pytest.mark.parametrize("when", list(COMPAT_TIMES.values()), ids=list(COMPAT_TIMES))
@pytest.mark.parametrize("keys", list(COMPAT_KEYS.values()), ids=list(COMPAT_KEYS))
@pytest.mark.parametrize("purpose", list(Purpose), ids=[p.value for p in Purpose])
def test_signing_matches_itsdangerous(
    purpose: Purpose, keys: list[str], when: datetime, payload: TokenPayload
) -> None:
    """sign() writes what itsdangerous writes over the derived key, verify() reads both schemes."""
    expected = reference_sign(derived(keys, purpose), purpose, payload, when)
    signer = signer_for(*keys)
    assert signer.sign(purpose, payload, now=when) == expected
    assert signer.verify(purpose, expected, now=when) == payload
    legacy = reference_sign(keys, purpose, payload, when)
    assert signer.verify(purpose, legacy, now=when) == payload


@pytest.mark.parametrize("age", [0, 1, 86_400 * 365], ids=["fresh", "one-second", "a-year"])
@pytest.mark.parametrize("legacy", [False, True], ids=["derived", "legacy"])
def test_itsdangerous_tokens_signed_with_an_older_key_verify(age: int, legacy: bool) -> None:
    """A token itsdangerous signed with a key since rotated out of first place verifies."""
    keys = ["old-key"] if legacy else derived(["old-key"], Purpose.UNSUBSCRIBE)
    old = reference_sign(keys, Purpose.UNSUBSCRIBE, PAYLOAD, NOW - timedelta(seconds=age))
    assert signer_for("new-key", "old-key").verify(Purpose.UNSUBSCRIBE, old) == PAYLOAD
    assert signer_for("old-key").verify(Purpose.UNSUBSCRIBE, old, now=NOW) == PAYLOAD
    with pytest.raises(InvalidToken):
        signer_for("new-key").verify(Purpose.UNSUBSCRIBE, old, now=NOW)


@hypothesis_settings(database=None, deadline=None, max_examples=150)
@given(
    purpose=st.sampled_from(list(Purpose)),
    key=st.text(min_size=1, max_size=40),
    seconds=st.integers(min_value=0, max_value=253_402_300_799),  # to 9999-12-31
    list_id=ids_,
    topic_id=st.none() | ids_,
    campaign_id=st.none() | ids_,
)
def test_signing_matches_itsdangerous_property(
    purpose: Purpose,
    key: str,
    seconds: int,
    list_id: int,
    topic_id: int | None,
    campaign_id: int | None,
) -> None:
    """For any key, time and ids the token is itsdangerous's, and each reads the other's."""
    payload = TokenPayload(list_id, PUBLIC_ID, topic_id=topic_id, campaign_id=campaign_id)
    when = datetime.fromtimestamp(seconds, tz=UTC)
    expected = reference_sign(derived([key], purpose), purpose, payload, when)
    signer = signer_for(key)
    assert signer.sign(purpose, payload, now=when) == expected
    assert signer.verify(purpose, expected, now=when) == payload
    reference = FixedTimeSigner(derived([key], purpose), purpose.salt, seconds)
    assert reference.unsign(signer.sign(purpose, payload, now=when)) == payload.encode().encode()
    legacy = reference_sign([key], purpose, payload, when)
    assert signer.verify(purpose, legacy, now=when) == payload


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200], ids=lambda n: f"{n}-bytes")
def test_precomputed_hmac_matches_hmac_module(key_length: int) -> None:
    """The RFC 2104 precomputation gives hmac.new's HMAC-SHA256, long keys included."""
    key = bytes(range(256))[:key_length] if key_length <= 256 else b""
    message = b"1.7.Xy3_-AbCdEfGh012.3.16.aaVYmA"
    mac = tokens._Mac.for_key(key)
    expected = hmac.new(key, message, hashlib.sha256).digest()
    assert mac.signature(message) == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert mac.signature(message) == mac.signature(message)  # the precomputed state is not used up


@pytest.mark.parametrize(
    "payload",
    [PAYLOAD, TokenPayload(7, PUBLIC_ID), TokenPayload(7, PUBLIC_ID, topic_id=3)],
    ids=["topic-and-campaign", "list-only", "topic-only"],
)
def test_sign_recipient_is_sign_twice(payload: TokenPayload) -> None:
    """sign_recipient gives the unsubscribe token and the topic-less preferences token."""
    signer = signer_for("k")
    prefs = TokenPayload(payload.list_id, payload.subscriber, campaign_id=payload.campaign_id)
    assert signer.sign_recipient(payload, now=NOW) == (
        signer.sign(Purpose.UNSUBSCRIBE, payload, now=NOW),
        signer.sign(Purpose.PREFERENCES, prefs, now=NOW),
    )


def test_sign_recipient_drops_the_topic_when_campaign_has_the_same_id() -> None:
    """Only the topic field goes from the preferences token, even when another id matches it."""
    payload = TokenPayload(3, PUBLIC_ID, topic_id=3, campaign_id=3)
    _, prefs = signer_for("k").sign_recipient(payload, now=NOW)
    assert split_token(prefs)[0] == f"1.3.{PUBLIC_ID}..3"


def test_timestamp_follows_now() -> None:
    """A reused time and a new one each stamp their own second (the last stamp is cached)."""
    signer = signer_for("k")
    later = NOW + timedelta(seconds=1)
    same_second = NOW + timedelta(microseconds=999_999)
    for when in [NOW, NOW, later, same_second, later, NOW]:
        assert signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=when) == reference_sign(
            derived(["k"], Purpose.UNSUBSCRIBE), Purpose.UNSUBSCRIBE, PAYLOAD, when
        )


def test_signing_without_now_uses_the_clock() -> None:
    """Without ``now`` the token is stamped with the current second."""
    signer = signer_for("k", max_age=60)
    token = signer.sign(Purpose.UNSUBSCRIBE, PAYLOAD)
    assert signer.verify(Purpose.UNSUBSCRIBE, token) == PAYLOAD
    stamp = split_token(token)[1]
    signed_at = int.from_bytes(base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4)), "big")
    assert abs(signed_at - datetime.now(UTC).timestamp()) < 60


def test_verify_compares_in_constant_time(
    signer: TokenSigner, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature is compared with hmac.compare_digest, not ==."""
    calls: list[tuple[str, str]] = []
    compare_digest = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW) == PAYLOAD
    assert calls == [(split_token(token)[2], split_token(token)[2])]


# --- what verify refuses, genuine signatures included -----------------------------------------


def signed_value(
    value: str, key: str = "current-key-0123456789", purpose: Purpose = Purpose.UNSUBSCRIBE
) -> str:
    """Return ``value`` with a genuine itsdangerous signature for the key and purpose.

    This signs whatever it is given as a "payload.timestamp" pair, so the tests
    below reach the checks that follow the signature.
    """
    signer = Signer(
        key, salt=purpose.salt, digest_method=hashlib.sha256, key_derivation="django-concat"
    )
    return signer.sign(value).decode("ascii")


def spare_bits_variant(field: str) -> str:
    """Return ``field`` with its last base64 character changed only in bits decoding ignores."""
    index = BASE64_ALPHABET.index(field[-1])
    return field[:-1] + BASE64_ALPHABET[index ^ 1]


def _timestamp_field(seconds: int) -> str:
    raw = seconds.to_bytes((seconds.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


STAMP = _timestamp_field(int(NOW.timestamp()))
TEXT = PAYLOAD.encode()


def _non_canonical_signature(token: str) -> str:
    payload, stamp, signature = split_token(token)
    return f"{payload}.{stamp}.{spare_bits_variant(signature)}"


REJECTED: dict[str, Callable[[str], str]] = {
    "tampered-payload": lambda t: t.replace("1.7.", "1.8.", 1),
    "tampered-timestamp": lambda t: t.replace(
        f".{STAMP}.", f".{_timestamp_field(int(NOW.timestamp()) + 1)}.", 1
    ),
    "truncated": lambda t: t[:-1],
    "truncated-to-two-parts": lambda t: t.rpartition(".")[0],
    "signature-dropped": lambda t: t.rpartition(".")[0] + ".",
    "signature-non-canonical": _non_canonical_signature,
    "signature-padded": lambda t: t + "=",
    "signature-standard-alphabet": lambda t: t.replace("-", "+").replace("_", "/"),
    "foreign-key": lambda t: signer_for("foreign").sign(Purpose.UNSUBSCRIBE, PAYLOAD, now=NOW),
    "wrong-purpose": lambda t: signer_for("current-key-0123456789").sign(
        Purpose.PREFERENCES, PAYLOAD, now=NOW
    ),
    "signed-timestamp-non-canonical": lambda t: signed_value(f"{TEXT}.{spare_bits_variant(STAMP)}"),
    "signed-timestamp-nine-bytes": lambda t: signed_value(f"{TEXT}.{_timestamp_field(2**64)}"),
    "signed-timestamp-not-base64": lambda t: signed_value(f"{TEXT}.a!V5"),
    "signed-timestamp-bad-length": lambda t: signed_value(f"{TEXT}.aVYmA"),
    "signed-timestamp-padded": lambda t: signed_value(f"{TEXT}.{STAMP}=="),
    "signed-without-timestamp": lambda t: signed_value(TEXT.replace(".", "-")),
}


@pytest.mark.parametrize("make", list(REJECTED.values()), ids=list(REJECTED))
@pytest.mark.parametrize("max_age", [None, 3600], ids=["no-max-age", "max-age"])
def test_rejected(token: str, make: Callable[[str], str], max_age: int | None) -> None:
    """Every way a token can be wrong is refused as not valid (never as expired)."""
    bad = make(token)
    assert bad != token
    signer = signer_for("current-key-0123456789", max_age=max_age)
    with pytest.raises(InvalidToken, match="not valid"):
        signer.verify(Purpose.UNSUBSCRIBE, bad, now=NOW)


def test_itsdangerous_alone_accepts_the_non_canonical_signature(token: str) -> None:
    """The canonical-spelling rule is ours: itsdangerous ignores the spare bits."""
    bad = _non_canonical_signature(token)
    keys = derived(["current-key-0123456789"], Purpose.UNSUBSCRIBE)
    reference = FixedTimeSigner(keys, Purpose.UNSUBSCRIBE.salt, 0)
    assert reference.unsign(bad) == TEXT.encode()


def test_genuine_signature_over_a_non_payload_is_not_ours() -> None:
    """A valid signature and timestamp over text that is not a payload is refused."""
    bad = signed_value(f"2.7.{PUBLIC_ID}.3.16.{STAMP}")  # version 2 does not exist
    with pytest.raises(InvalidToken, match="not one of ours"):
        signer_for("current-key-0123456789").verify(Purpose.UNSUBSCRIBE, bad, now=NOW)


@pytest.mark.parametrize(
    ("signed", "max_age", "message"),
    [
        (NOW - timedelta(seconds=3600), 3600, None),
        (NOW - timedelta(seconds=3601), 3600, "expired"),
        (NOW + timedelta(seconds=1), 3600, "expired"),
        (NOW + timedelta(days=1), None, None),
    ],
    ids=["exactly-max-age", "one-second-over", "from-the-future", "future-without-max-age"],
)
def test_age_limits_like_itsdangerous(
    signed: datetime, max_age: int | None, message: str | None
) -> None:
    """max_age is inclusive, and a token from the future is expired, as in itsdangerous."""
    token = reference_sign(["k"], Purpose.UNSUBSCRIBE, PAYLOAD, signed)
    signer = signer_for("k", max_age=max_age)
    if message is None:
        assert signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW) == PAYLOAD
    else:
        with pytest.raises(InvalidToken, match=message):
            signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW)


# --- ids the database cannot hold ---------------------------------------------------------


def test_max_database_id_is_postgresql_integer() -> None:
    """List, topic and campaign ids are INTEGER columns: signed 32-bit."""
    assert MAX_DATABASE_ID == 2**31 - 1


@pytest.mark.parametrize(
    ("payload", "fits"),
    [
        (TokenPayload(0, PUBLIC_ID), True),
        (TokenPayload(MAX_DATABASE_ID, PUBLIC_ID, MAX_DATABASE_ID, MAX_DATABASE_ID), True),
        (TokenPayload(MAX_DATABASE_ID + 1, PUBLIC_ID), False),
        (TokenPayload(1, PUBLIC_ID, topic_id=MAX_DATABASE_ID + 1), False),
        (TokenPayload(1, PUBLIC_ID, campaign_id=MAX_DATABASE_ID + 1), False),
        (TokenPayload(1, PUBLIC_ID, campaign_id=2**63), False),
        (TokenPayload(36**13 - 1, PUBLIC_ID), False),
    ],
    ids=[
        "small",
        "all-at-limit",
        "list-over",
        "topic-over",
        "campaign-over",
        "campaign-over-bigint",
        "largest-signable",
    ],
)
def test_fits_database(payload: TokenPayload, fits: bool) -> None:
    """Ids above the INTEGER range do not fit; None ids always do."""
    assert payload.fits_database() is fits


def test_genuine_token_with_huge_ids_verifies_but_does_not_fit() -> None:
    """Verification accepts what was signed; fits_database tells the caller not to query."""
    payload = TokenPayload(2**31, PUBLIC_ID, topic_id=2**40, campaign_id=36**13 - 1)
    signer = signer_for("k")
    token = signer.sign(Purpose.UNSUBSCRIBE, payload, now=NOW)
    verified = signer.verify(Purpose.UNSUBSCRIBE, token, now=NOW)
    assert verified == payload
    assert not verified.fits_database()


def reference_verify(keys: Sequence[str | bytes], purpose: Purpose, token: str) -> bool:
    """Return whether itsdangerous accepts ``token``, with the canonical-base64 rule on top."""
    if not token.isascii() or token.count(".") < 2:
        return False
    for field in token.rsplit(".", 2)[1:]:
        try:
            decoded = base64.urlsafe_b64decode(field + "=" * (-len(field) % 4))
        except ValueError:
            return False
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != field:
            return False
    try:
        FixedTimeSigner(keys, purpose.salt, 0).unsign(token)
    except BadSignature:
        return False
    return True


@hypothesis_settings(database=None, deadline=None, max_examples=300)
@given(
    position=st.integers(min_value=0, max_value=200),
    replacement=st.text(alphabet=BASE64_ALPHABET + ".=+/ é", max_size=3),
    cut=st.integers(min_value=0, max_value=3),
    legacy=st.booleans(),
)
def test_mutated_tokens_are_judged_like_itsdangerous(
    position: int, replacement: str, cut: int, legacy: bool
) -> None:
    """Any splice of a genuine token is accepted exactly when itsdangerous accepts it."""
    keys = ["new-key", "old-key"]
    signed_with = keys[1:] if legacy else derived(keys[1:], Purpose.UNSUBSCRIBE)
    genuine = reference_sign(signed_with, Purpose.UNSUBSCRIBE, PAYLOAD, NOW)
    position %= len(genuine) + 1
    mutated = genuine[:position] + replacement + genuine[position + cut :]
    try:
        ok = signer_for(*keys).verify(Purpose.UNSUBSCRIBE, mutated, now=NOW) == PAYLOAD
    except InvalidToken:
        ok = False
    assert ok is reference_verify(accepted(keys, Purpose.UNSUBSCRIBE), Purpose.UNSUBSCRIBE, mutated)
    assert ok is (mutated == genuine)
