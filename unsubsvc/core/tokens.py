"""Signed, opaque tokens that carry who and what an unsubscribe link is for.

A token is ``payload.timestamp.signature``, byte for byte what itsdangerous's
``TimestampSigner`` writes with HMAC-SHA256 and a salt per purpose, so a
preferences token never passes as an unsubscribe token. The payload holds only
numeric ids and the subscriber's random public id, never an address: the token
is signed, not encrypted. The payload is plain text rather than base64-encoded
JSON, which keeps a token near 75 characters, short enough for any URI and
mail client.

The itsdangerous secret is not the configured secret but the key derived
from it for the token's purpose (``core.keys``: unsubscribe links and
preference links each have their own), so a signature in a public link tells
nothing about the key of the admin session cookie. Tokens signed before that
change, with itsdangerous over the configured secret itself, still verify:
each configured secret is also tried the old way, after every derived key.
New tokens are never signed the old way.

Signing and verifying run once per recipient of a bulk send, so the HMAC work
is done here rather than through a new ``TimestampSigner`` per call: each
purpose's key is derived once per secret (itsdangerous's own ``derive_key``),
and the HMAC-SHA256 inner and outer hash states after the padded key are
computed once and copied per message (RFC 2104 §4). The tests hold this
module to itsdangerous's output for the same key, salt and time, and have
tokens made by itsdangerous verify here.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from itsdangerous import Signer

from unsubsvc.core.errors import InvalidToken
from unsubsvc.core.keys import KeyPurpose, Keyring

#: Anything longer than this is not one of our tokens; refuse it before hashing.
MAX_TOKEN_LENGTH = 256

#: The largest list, topic or campaign id the database can hold: those ids are
#: INTEGER columns (unsubsvc/db/models.py), signed 32-bit in PostgreSQL (its
#: documentation, §8.1.1 "Integer Types"). A genuine token may carry more, as
#: ids up to 36**13 can be signed; such a token names nothing that can exist,
#: and must not reach a query that would fail on it.
MAX_DATABASE_ID = 2**31 - 1

_VERSION = "1"
_SEP = "."
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_BASE36 = re.compile(r"[0-9a-z]{1,13}")
_MAX_ID = 36**13
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"

_INVALID = "This link is not valid: it may have been cut short or changed."
_NOT_OURS = "This link is not one of ours."

# The signing scheme, spelled out rather than left to itsdangerous's defaults:
# a token in a year-old message must verify even if a later release changes them.
_DIGEST = hashlib.sha256
_KEY_DERIVATION = "django-concat"
# RFC 2104 §2: the key, zero-padded to the hash's block size, XORed with ipad
# (0x36 repeated) for the inner hash and with opad (0x5C repeated) for the outer.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
# RFC 4648 §5: the URL- and filename-safe alphabet; itsdangerous drops the "=" padding.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class Purpose(StrEnum):
    """What a token lets its holder do; each purpose signs with its own salt."""

    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"

    @property
    def salt(self) -> str:
        return f"unsubsvc.{self.value}.v1"

    @property
    def key_purpose(self) -> KeyPurpose:
        """Return the keyring purpose whose derived keys sign these tokens."""
        return _KEY_PURPOSES[self]


_KEY_PURPOSES = {
    Purpose.UNSUBSCRIBE: KeyPurpose.UNSUBSCRIBE_LINKS,
    Purpose.PREFERENCES: KeyPurpose.PREFERENCE_LINKS,
}


@dataclass(frozen=True, slots=True)
class TokenPayload:
    """What a token names: a list, a subscriber, and optionally a topic and a campaign."""

    list_id: int
    subscriber: str
    topic_id: int | None = None
    campaign_id: int | None = None

    def encode(self) -> str:
        """Return the compact text form that gets signed."""
        if _PUBLIC_ID.fullmatch(self.subscriber) is None:
            raise ValueError("subscriber public id must be URL-safe base64")
        topic = "" if self.topic_id is None else _to36(self.topic_id)
        campaign = "" if self.campaign_id is None else _to36(self.campaign_id)
        return f"{_VERSION}.{_to36(self.list_id)}.{self.subscriber}.{topic}.{campaign}"

    @classmethod
    def decode(cls, text: str) -> TokenPayload:
        """Parse the text form; raise InvalidToken if it is not one."""
        fields = text.split(_SEP)
        if len(fields) != 5 or fields[0] != _VERSION:
            raise InvalidToken(_NOT_OURS)
        _, list_id, subscriber, topic_id, campaign_id = fields
        if _PUBLIC_ID.fullmatch(subscriber) is None:
            raise InvalidToken(_NOT_OURS)
        return cls(
            _from36(list_id),
            subscriber,
            _from36(topic_id) if topic_id else None,
            _from36(campaign_id) if campaign_id else None,
        )

    def fits_database(self) -> bool:
        """Return whether every id is one the database's id columns can hold.

        A validly signed token whose ids exceed ``MAX_DATABASE_ID`` names no row
        (it was never minted from one): treat it as not found, and do not query.
        """
        return (
            self.list_id <= MAX_DATABASE_ID
            and (self.topic_id is None or self.topic_id <= MAX_DATABASE_ID)
            and (self.campaign_id is None or self.campaign_id <= MAX_DATABASE_ID)
        )


class _Hash(Protocol):
    """The part of a hashlib object the HMAC below uses."""

    def copy(self) -> _Hash: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Mac:
    """HMAC-SHA256 under one key, with the padded key's hash states computed once.

    RFC 2104 §4: the compression of ``K XOR ipad`` and ``K XOR opad`` can be
    precomputed once per key and reused for every message.
    """

    inner: _Hash
    outer: _Hash

    @classmethod
    def for_key(cls, key: bytes) -> _Mac:
        block_size = _DIGEST().block_size
        if len(key) > block_size:  # RFC 2104 §2: a long key is hashed first
            key = _DIGEST(key).digest()
        key = key.ljust(block_size, b"\0")
        return cls(_DIGEST(key.translate(_IPAD)), _DIGEST(key.translate(_OPAD)))

    def signature(self, message: bytes) -> str:
        """Return the HMAC of ``message`` in itsdangerous's unpadded URL-safe base64."""
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        # _b64encode, inlined: this runs for every token signed or verified.
        encoded = binascii.b2a_base64(outer.digest(), newline=False)
        return encoded.translate(_URLSAFE).rstrip(b"=").decode()


class TokenSigner:
    """Mint and verify tokens with a keyring's keys for each purpose, newest first.

    New tokens are signed with the purpose's current derived key; a token
    signed with any of its derived keys verifies, so a secret can be rotated
    without breaking mail already sent, and so does a token signed the legacy
    way, with a configured secret itself. Tokens do not expire unless
    ``max_age`` (seconds) is given: a link in a year-old message must still
    unsubscribe.
    """

    def __init__(self, keyring: Keyring, *, max_age: int | None = None) -> None:
        if not isinstance(keyring, Keyring):
            raise TypeError("TokenSigner takes a Keyring (unsubsvc.core.keys), not raw secrets")
        self.max_age = max_age
        # Verification tries the derived keys newest first (the current one
        # first: nearly every token was signed with it), then the legacy keys.
        self._macs: dict[Purpose, tuple[_Mac, ...]] = {
            purpose: tuple(
                _Mac.for_key(_derive_key(key, purpose.salt))
                for key in _itsdangerous_keys(keyring, purpose)
            )
            for purpose in Purpose
        }
        self._unsubscribe = self._macs[Purpose.UNSUBSCRIBE][0]
        self._preferences = self._macs[Purpose.PREFERENCES][0]
        # The last time given, its whole seconds and their text: a bulk send signs
        # many tokens with the same ``now``. One tuple, so that a thread never reads
        # half an update.
        self._stamp: tuple[datetime | None, int, str] = (None, -1, "")

    def sign(self, purpose: Purpose, payload: TokenPayload, *, now: datetime | None = None) -> str:
        """Return a URL-safe token for ``payload``."""
        value = f"{payload.encode()}.{self._timestamp(now)}"
        mac = self._unsubscribe if purpose is Purpose.UNSUBSCRIBE else self._preferences
        return f"{value}.{mac.signature(value.encode('ascii'))}"

    def sign_recipient(
        self, payload: TokenPayload, *, now: datetime | None = None
    ) -> tuple[str, str]:
        """Return a recipient's unsubscribe token and preferences token, in that order.

        The preferences token names the same list, subscriber and campaign but no
        topic: the preference center shows all of a list's topics.
        """
        stamp = self._timestamp(now)
        unsubscribe = f"{payload.encode()}.{stamp}"
        if payload.topic_id is None:
            preferences = unsubscribe
        else:
            without_topic = TokenPayload(
                payload.list_id, payload.subscriber, None, payload.campaign_id
            )
            preferences = f"{without_topic.encode()}.{stamp}"
        return (
            f"{unsubscribe}.{self._unsubscribe.signature(unsubscribe.encode())}",
            f"{preferences}.{self._preferences.signature(preferences.encode())}",
        )

    def verify(self, purpose: Purpose, token: str, *, now: datetime | None = None) -> TokenPayload:
        """Return the payload of a genuine token, or raise InvalidToken."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken(_INVALID)
        value, _, signature = token.rpartition(_SEP)
        text, sep, stamp = value.rpartition(_SEP)
        if not sep:
            raise InvalidToken(_INVALID)
        message = value.encode("ascii")
        # Comparing with the canonical base64 of the expected MAC, in constant time,
        # also refuses a signature spelled with different spare bits in its last
        # character (RFC 4648 §3.5): only the spelling itsdangerous writes passes.
        for mac in self._macs[purpose]:
            if hmac.compare_digest(mac.signature(message), signature):
                break
        else:
            raise InvalidToken(_INVALID)
        signed_at = _decode_timestamp(stamp)
        if signed_at is None:
            raise InvalidToken(_INVALID)
        if self.max_age is not None:
            age = _now(now) - signed_at
            if age > self.max_age or age < 0:
                raise InvalidToken("This link has expired.")
        return TokenPayload.decode(text)

    def _timestamp(self, now: datetime | None) -> str:
        cached_now, cached_seconds, text = self._stamp
        if now is not None and now is cached_now:  # datetimes are immutable
            return text
        seconds = _now(now)
        if seconds != cached_seconds:
            # itsdangerous: the big-endian bytes of the integer, without leading zeros.
            text = _b64encode(seconds.to_bytes((seconds.bit_length() + 7) // 8, "big"))
        self._stamp = (now, seconds, text)
        return text


def _itsdangerous_keys(keyring: Keyring, purpose: Purpose) -> tuple[str | bytes, ...]:
    """Return the itsdangerous secrets for ``purpose`` in the order verification tries them.

    The purpose's derived keys, newest first (the first signs), then the configured
    secrets themselves, only to verify the links mailed before keys were derived.
    """
    return (*keyring.keys(purpose.key_purpose), *keyring.secrets)


def _derive_key(secret: str | bytes, salt: str) -> bytes:
    """Return itsdangerous's signing key for ``secret`` and ``salt``."""
    signer = Signer(secret, salt=salt, key_derivation=_KEY_DERIVATION, digest_method=_DIGEST)
    return signer.derive_key()


def _now(now: datetime | None) -> int:
    # The same whole seconds as itsdangerous's int(time.time()).
    return int(now.timestamp()) if now is not None else int(time.time())


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


@lru_cache(maxsize=1024)
def _decode_timestamp(text: str) -> int | None:
    """Return the seconds a canonical timestamp field holds, or None.

    The last character of a base64 field carries spare bits that decoding
    ignores (RFC 4648 §3.5); only the spelling itsdangerous writes is accepted,
    and no more than the eight bytes it can write. Cached: it only ever sees
    timestamps under a genuine signature, and a send shares a few seconds.
    """
    try:
        raw = binascii.a2b_base64(
            (text + "=" * (-len(text) % 4)).replace("-", "+").replace("_", "/")
        )
    except binascii.Error:
        return None
    if len(raw) > 8 or _b64encode(raw) != text:
        return None
    return int.from_bytes(raw, "big")


@lru_cache(maxsize=4096)
def _to36(number: int) -> str:
    # Cached: a bulk send repeats the same list and campaign ids for every recipient.
    if not 0 <= number < _MAX_ID:
        raise ValueError(f"ids are non-negative and below 36**13, not {number}")
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = _DIGITS36[rem] + out
        if number == 0:
            return out


@lru_cache(maxsize=4096)
def _from36(text: str) -> int:
    # Cached like _to36; what it refuses raises and so is never cached.
    if _BASE36.fullmatch(text) is None:
        raise InvalidToken(_NOT_OURS)
    return int(text, 36)
