"""Whether a configured secret is strong enough to sign links and derive keys from.

A signature in a public unsubscribe link is an offline oracle: anyone holding
one link can try candidate secrets as fast as they can compute HMACs, without
asking the server. So a secret must be as strong as the keys derived from it
(HKDF cannot add entropy, RFC 5869 §4): at least 256 bits, estimated as the
length times the bits of the smallest usual alphabet the secret is written in,
minus what follows a pattern (repeats, runs like ``12345678``, common words)
rather than chance. Known placeholders (``changeme``, ``secret``) are refused
whatever their length.

The estimate is deliberately simple, in the spirit of NIST SP 800-63B
appendix A's advice to check secrets against known values and patterns rather
than composition rules: ``secrets.token_urlsafe(32)`` (43 characters of
base64url, 258 bits) and ``openssl rand -hex 32`` (64 hex digits, 256 bits)
pass; a 16-character key never does.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

#: Bits of estimated entropy every configured secret must have (the size of a derived key).
MIN_ENTROPY_BITS = 256

#: What ``unsubsvc secret generate`` prints: 48 random bytes, 64 characters of base64url.
GENERATED_BYTES = 48

#: A repeat or a run shorter than this is chance in a random key, not a pattern:
#: eight hex digits in a row repeat or ascend in a random 64-digit key about once
#: in ten million keys.
_MIN_PATTERN = 8
#: What a repeat, run or common word costs an attacker to guess, in bits: where it
#: starts and how long it is, or which word of a short list.
_PATTERN_BITS = 12.0
#: Characters looked at for patterns (the search is quadratic in the worst case).
_MAX_ANALYSED = 512

#: Whole secrets seen in sample configurations, tutorials and leaked defaults,
#: compared case-insensitively with separators removed.
_KNOWN_VALUES = frozenset(
    {
        "admin",
        "changeme",
        "changeit",
        "changethis",
        "default",
        "dev",
        "devkey",
        "devsecret",
        "development",
        "key",
        "letmein",
        "mysecret",
        "mysecretkey",
        "notasecret",
        "password",
        "password1",
        "qwerty",
        "s3cr3t",
        "secret",
        "secretkey",
        "supersecret",
        "supersecretkey",
        "test",
        "testing",
        "testkey",
        "topsecret",
        "unsubsvc",
        "unsubsvcsecretkey",
        "yoursecretkey",
    }
)
#: Placeholder text that makes a key a known value wherever it appears in it
#: (Django's generated development keys start ``django-insecure-``).
_PLACEHOLDERS = (
    "changeme",
    "changethis",
    "replaceme",
    "replacewith",
    "outputof",  # "<the output of: unsubsvc secret generate>", pasted as is
    "yoursecret",
    "putyour",
    "insecure",
    "notasecret",
    "example",
    "xxxxxxxx",
)
#: Words people build secrets from; a key mostly made of them is a dictionary value.
#: Six letters or more, so that a random key does not contain one by chance.
_COMMON_WORDS = (
    "password",
    "passwd",
    "secret",
    "secrets",
    "changeme",
    "letmein",
    "welcome",
    "master",
    "dragon",
    "monkey",
    "shadow",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "iloveyou",
    "trustno1",
    "qwerty",
    "qwertyuiop",
    "asdfgh",
    "zxcvbn",
    "admin",
    "administrator",
    "unsubsvc",
    "unsubscribe",
    "production",
    "development",
    "testing",
    "signing",
    "session",
    "cookie",
    "django",
    "flask",
    "default",
    "example",
    "private",
    "access",
    "token",
)
#: The words as one pattern, longest first, so that a match is the longest word there.
_WORD = re.compile("|".join(re.escape(w) for w in sorted(_COMMON_WORDS, key=len, reverse=True)))
_SEPARATORS = re.compile(r"[\s\-_.:/+=,]+")
_HEX = frozenset(string.hexdigits)
_BASE64 = frozenset(string.ascii_letters + string.digits + "-_+/=")


class Weakness(StrEnum):
    """Why a key is refused: what the operator reads, never the key itself."""

    TOO_SHORT = "too short"
    REPEATED = "a repeated pattern"
    KNOWN = "a known value"


@dataclass(frozen=True, slots=True)
class KeyAssessment:
    """A key's estimated entropy and, if it is weak, the main reason."""

    bits: float
    weakness: Weakness | None

    @property
    def strong(self) -> bool:
        return self.weakness is None

    def explain(self) -> str:
        """Say why the key is weak, in words that do not reveal it."""
        if self.weakness is None:
            return f"strong (about {self.bits:.0f} bits of estimated entropy)"
        if self.weakness is Weakness.KNOWN:
            return "a known value (a default, a placeholder or made of common words)"
        if self.weakness is Weakness.REPEATED:
            return "a repeated pattern (repeats or runs of characters)"
        return (
            f"too short (about {self.bits:.0f} bits of estimated entropy, "
            f"{MIN_ENTROPY_BITS} needed)"
        )


def generate_key() -> str:
    """Return a new random key: 48 bytes from the OS's CSPRNG, as 64 characters of base64url."""
    return secrets.token_urlsafe(GENERATED_BYTES)


def assess_key(key: str) -> KeyAssessment:
    """Estimate ``key``'s entropy and say whether, and why, it is too weak."""
    if not key:
        return KeyAssessment(0.0, Weakness.TOO_SHORT)
    bits, word_chars, pattern_chars = _estimate(key)
    folded = _SEPARATORS.sub("", key.lower())
    if folded in _KNOWN_VALUES or any(p in folded for p in _PLACEHOLDERS):
        return KeyAssessment(bits, Weakness.KNOWN)
    if _is_periodic(key):
        return KeyAssessment(bits, Weakness.REPEATED)
    if 2 * word_chars >= len(key):
        return KeyAssessment(bits, Weakness.KNOWN)
    if 2 * pattern_chars >= len(key):
        return KeyAssessment(bits, Weakness.REPEATED)
    if bits < MIN_ENTROPY_BITS:
        return KeyAssessment(bits, Weakness.TOO_SHORT)
    return KeyAssessment(bits, None)


def alphabet_size(key: str) -> int:
    """Return the size of the smallest usual alphabet ``key`` is written in."""
    chars = frozenset(key)
    if chars <= frozenset(string.digits):
        return 10
    if chars <= _HEX and not (chars & frozenset("abcdef") and chars & frozenset("ABCDEF")):
        return 16
    has_lower = any(c in string.ascii_lowercase for c in chars)
    has_upper = any(c in string.ascii_uppercase for c in chars)
    if chars <= _BASE64 and has_lower and has_upper:
        # Mixed-case base64: a random token may lack digits or "-_" by chance,
        # and must not lose bits for it.
        return 64
    size = 0
    size += 26 if has_lower else 0
    size += 26 if has_upper else 0
    size += 10 if any(c in string.digits for c in chars) else 0
    size += 2 if chars & frozenset("-_") else 0
    others = any(c.isascii() and not (c.isalnum() or c in "-_") for c in chars)
    size += 31 if others else 0  # the rest of printable ASCII, space included
    size += 128 if any(not c.isascii() for c in chars) else 0
    return max(size, 2)


def _estimate(key: str) -> tuple[float, int, int]:
    """Return the estimated bits, and how many characters are common words and patterns.

    One greedy pass from the left: at each position take a common word, else
    a repeat of something earlier (overlapping, so ``aaaa…`` is a repeat of
    ``a``), else a run of consecutive characters, each if long enough; else one
    character of the alphabet.
    """
    per_char = math.log2(alphabet_size(key))
    # Past the first _MAX_ANALYSED characters, count every character as chance:
    # a key that long has its 256 bits there already, or is refused for its start.
    bits = per_char * max(0, len(key) - _MAX_ANALYSED)
    key = key[:_MAX_ANALYSED]
    lowered = key.lower()
    word_chars = pattern_chars = 0
    i = 0
    while i < len(key):
        word = _WORD.match(lowered, i)
        if word is not None:
            bits += _PATTERN_BITS
            word_chars += word.end() - i
            i = word.end()
            continue
        span = max(_repeat_length(key, i), _run_length(key, i))
        if span >= _MIN_PATTERN:
            bits += _PATTERN_BITS
            pattern_chars += span
            i += span
            continue
        bits += per_char
        i += 1
    return bits, word_chars, pattern_chars


def _repeat_length(key: str, i: int) -> int:
    """Return the length of the longest string at ``i`` that also starts earlier, if a pattern.

    Below ``_MIN_PATTERN`` characters the answer is 0: one search settles it for
    nearly every position of a random key.
    """
    # The search ends before i + length, so an earlier copy may overlap this one.
    length = _MIN_PATTERN
    if i + length > len(key) or key.find(key[i : i + length], 0, i + length - 1) == -1:
        return 0
    while i + length < len(key) and key.find(key[i : i + length + 1], 0, i + length) != -1:
        length += 1
    return length


def _run_length(key: str, i: int) -> int:
    """Return the length of the run of code points rising or falling by one from ``i``."""
    if i + 1 >= len(key):
        return 1
    step = ord(key[i + 1]) - ord(key[i])
    if step not in (1, -1):
        return 1
    length = 2
    while i + length < len(key) and ord(key[i + length]) - ord(key[i + length - 1]) == step:
        length += 1
    return length


def _is_periodic(key: str) -> bool:
    """Return whether ``key`` is a shorter string repeated (``abab…``, ``aaaa``)."""
    n = len(key)
    # The smallest period p of a string divides out where key[p:] == key[:-p].
    return any(key[p:] == key[:-p] for p in range(1, n // 2 + 1))
