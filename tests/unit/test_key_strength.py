"""Key strength: what production refuses as a secret, and what it accepts."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys

import pytest

from unsubsvc.core.key_strength import (
    MIN_ENTROPY_BITS,
    KeyAssessment,
    Weakness,
    alphabet_size,
    assess_key,
    generate_key,
)

#: Fixed samples of what the documented generators print (drawn once, pinned here).
HEX_32 = "da0352c692d6230e1108493b01a1d296ae622f88f9a555a0f79f4c591b3e8764"
URLSAFE_32 = "q3Zr0m-5XcJ8wLhT_9bKd2VnYs4QaF7uGe1PiO6yRtE"
OPENSSL_BASE64_32 = "k8Jz2Qm+P0r/X5cV9wL1tYb3NhG7sD6fA4eR2uIoT0M="

WEAK = {
    "changeme": ("changeme", Weakness.KNOWN),
    "secret": ("secret", Weakness.KNOWN),
    "Secret-Key": ("Secret-Key", Weakness.KNOWN),
    "one-letter": ("a", Weakness.TOO_SHORT),
    "sixteen-random": ("Zx8_Qw2-Er5tYu7i", Weakness.TOO_SHORT),
    "sixteen-hex": ("0f1e2d3c4b5a6978", Weakness.TOO_SHORT),
    "test-suite-key": ("test-secret-key-0123456789", Weakness.TOO_SHORT),
    "ab-times-32": ("ab" * 32, Weakness.REPEATED),
    "password-times-8": ("password" * 8, Weakness.REPEATED),
    "a-times-64": ("a" * 64, Weakness.REPEATED),
    "half-repeated": ("Q" * 40 + URLSAFE_32[:30], Weakness.REPEATED),
    "digit-run": ("0123456789" + URLSAFE_32[:20] + "9876543210", Weakness.REPEATED),
    "django-insecure": ("django-insecure-" + URLSAFE_32 + URLSAFE_32, Weakness.KNOWN),
    "env-example-placeholder": (
        "replace-with-the-output-of-unsubsvc-secret-generate",
        Weakness.KNOWN,
    ),
    "compose-placeholder": ("<the output of: unsubsvc secret generate>", Weakness.KNOWN),
    "common-words": ("passwordsecretwelcomedragonmonkeyshadowsunshine", Weakness.KNOWN),
    "hex-too-short": (HEX_32[:60], Weakness.TOO_SHORT),
    "digits-only": ("31415926535897932384626433832795028841971693993751", Weakness.TOO_SHORT),
    "lowercase-43": ("qzmxnvbcalskdjfhgpwoeiruty" + "qazwsxedcrfvtgbyh", Weakness.TOO_SHORT),
}


@pytest.mark.parametrize(("key", "weakness"), list(WEAK.values()), ids=list(WEAK))
def test_weak_keys_are_refused_with_their_reason(key: str, weakness: Weakness) -> None:
    found = assess_key(key)
    assert found.weakness is weakness
    assert not found.strong


STRONG = {
    "openssl-rand-hex-32": HEX_32,
    "openssl-rand-hex-32-uppercase": HEX_32.upper(),
    "token-urlsafe-32": URLSAFE_32,
    "openssl-rand-base64-32": OPENSSL_BASE64_32,
    "generated": "UebzukyR-mc8Ra37o2rmteA9BkbOwmwcFxqXoqHpQ1gfRQqm7So9Ba-I280M_1E6",
}


@pytest.mark.parametrize("key", list(STRONG.values()), ids=list(STRONG))
def test_strong_keys_are_accepted(key: str) -> None:
    found = assess_key(key)
    assert found.strong, found.explain()
    assert found.bits >= MIN_ENTROPY_BITS


@pytest.mark.parametrize(
    "make",
    [
        generate_key,
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    ],
    ids=["generate-key", "token-urlsafe-32", "token-hex-32", "base64-32-bytes"],
)
def test_fresh_random_keys_are_always_accepted(make: object) -> None:
    """The documented generators pass every time, not just for a lucky draw."""
    assert callable(make)
    refused = [k for k in (make() for _ in range(500)) if not assess_key(k).strong]
    assert refused == []


def test_openssl_rand_hex_32_is_accepted() -> None:
    """What the README tells operators to run, run for real where openssl exists."""
    try:
        run = subprocess.run(  # noqa: S603
            ["openssl", "rand", "-hex", "32"], capture_output=True, text=True, check=True
        )
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    assert assess_key(run.stdout.strip()).strong


def test_python_token_urlsafe_one_liner_is_accepted() -> None:
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import secrets; print(secrets.token_urlsafe(32))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert assess_key(run.stdout.strip()).strong


@pytest.mark.parametrize("length", range(1, 17), ids=lambda n: f"{n}-chars")
def test_no_key_of_sixteen_characters_or_fewer_passes(length: int) -> None:
    """Even the richest alphabet gives a 16-character key under 110 bits."""
    assert assess_key(generate_key()[:length]).weakness is not None
    assert assess_key(("~!é" * 6)[:length]).weakness is not None


def test_generated_key_is_64_characters_of_base64url() -> None:
    key = generate_key()
    assert len(key) == 64
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert generate_key() != key


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("0123", 10),
        ("deadbeef01", 16),
        ("DEADBEEF01", 16),
        ("DeadBeef01", 64),
        ("xyz", 26),
        ("xyz-", 28),
        ("xyz1", 36),
        ("Xyz", 64),
        ("xyz!", 57),
        ("Abc!", 83),
        ("é", 128),
    ],
    ids=[
        "digits",
        "hex-lower",
        "hex-upper",
        "mixed-case-base64",
        "lowercase",
        "lowercase-dash",
        "lowercase-digits",
        "mixed-case",
        "punctuation",
        "printable",
        "non-ascii",
    ],
)
def test_alphabet_size(key: str, size: int) -> None:
    assert alphabet_size(key) == size


@pytest.mark.parametrize(
    ("weakness", "words"),
    [
        (Weakness.TOO_SHORT, "too short"),
        (Weakness.REPEATED, "repeated pattern"),
        (Weakness.KNOWN, "known value"),
    ],
    ids=["too-short", "repeated", "known"],
)
def test_explanations_say_why(weakness: Weakness, words: str) -> None:
    assert words in KeyAssessment(100.0, weakness).explain()


def test_empty_key_is_too_short() -> None:
    assert assess_key("").weakness is Weakness.TOO_SHORT


def test_long_keys_are_assessed_quickly() -> None:
    """A pathological 100,000-character key is judged without quadratic blow-up."""
    assert assess_key("a" * 100_000).weakness is Weakness.REPEATED
    assert assess_key(generate_key() * 2000).weakness is Weakness.REPEATED
