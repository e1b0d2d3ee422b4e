"""Signed, opaque tokens that carry who and what an unsubscribe link is for.

A token is ``payload.timestamp.signature``: itsdangerous signs it with
HMAC-SHA256 under a salt per purpose, so a preferences token never passes as
an unsubscribe token. The payload holds only numeric ids and the subscriber's
random public id, never an address: itsdangerous signs but does not encrypt.
The payload is plain text rather than base64-encoded JSON, which keeps a token
near 75 characters, short enough for any URI and mail client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from itsdangerous import BadData, BadSignature, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from unsubsvc.core.errors import InvalidToken

#: Anything longer than this is not one of our tokens; refuse it before hashing.
MAX_TOKEN_LENGTH = 256

_VERSION = "1"
_SEP = "."
_PUBLIC_ID = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")
_BASE36 = re.compile(r"\A[0-9a-z]{1,13}\Z")
_MAX_ID = 36**13


class Purpose(StrEnum):
    """What a token lets its holder do; each purpose signs with its own salt."""

    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"

    @property
    def salt(self) -> str:
        return f"unsubsvc.{self.value}.v1"


@dataclass(frozen=True, slots=True)
class TokenPayload:
    """What a token names: a list, a subscriber, and optionally a topic and a campaign."""

    list_id: int
    subscriber: str
    topic_id: int | None = None
    campaign_id: int | None = None

    def encode(self) -> str:
        """Return the compact text form that gets signed."""
        if not _PUBLIC_ID.match(self.subscriber):
            raise ValueError("subscriber public id must be URL-safe base64")
        fields = [
            _VERSION,
            _to36(self.list_id),
            self.subscriber,
            _to36(self.topic_id) if self.topic_id is not None else "",
            _to36(self.campaign_id) if self.campaign_id is not None else "",
        ]
        return _SEP.join(fields)

    @classmethod
    def decode(cls, text: str) -> TokenPayload:
        """Parse the text form; raise InvalidToken if it is not one."""
        fields = text.split(_SEP)
        if len(fields) != 5 or fields[0] != _VERSION:
            raise InvalidToken("This link is not one of ours.")
        _, list_id, subscriber, topic_id, campaign_id = fields
        if not _PUBLIC_ID.match(subscriber):
            raise InvalidToken("This link is not one of ours.")
        return cls(
            list_id=_from36(list_id),
            subscriber=subscriber,
            topic_id=_from36(topic_id) if topic_id else None,
            campaign_id=_from36(campaign_id) if campaign_id else None,
        )


class _ClockedSigner(TimestampSigner):
    """A TimestampSigner whose notion of now is passed in, so tests can move time."""

    def __init__(self, *args: object, clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


class TokenSigner:
    """Mint and verify tokens with a list of keys, newest first.

    New tokens are signed with the first key; a token signed with any listed
    key verifies, so a key can be rotated without breaking mail already sent.
    Tokens do not expire unless ``max_age`` (seconds) is given: a link in a
    year-old message must still unsubscribe.
    """

    def __init__(self, secret_keys: Sequence[str | bytes], *, max_age: int | None = None) -> None:
        if isinstance(secret_keys, str | bytes):
            raise TypeError("secret_keys is a sequence of keys, not one key")
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("at least one secret key is required")
        # itsdangerous signs with the *last* key and tries all of them.
        self._keys = list(reversed(keys))
        self.max_age = max_age

    def _signer(self, purpose: Purpose, now: datetime | None) -> _ClockedSigner:
        def clock() -> datetime:
            return now if now is not None else datetime.now(UTC)

        return _ClockedSigner(
            self._keys, salt=purpose.salt, digest_method=hashlib.sha256, clock=clock
        )

    def sign(self, purpose: Purpose, payload: TokenPayload, *, now: datetime | None = None) -> str:
        """Return a URL-safe token for ``payload``."""
        return self._signer(purpose, now).sign(payload.encode()).decode("ascii")

    def verify(self, purpose: Purpose, token: str, *, now: datetime | None = None) -> TokenPayload:
        """Return the payload of a genuine token, or raise InvalidToken."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("This link is not valid: it may have been cut short or changed.")
        if not _canonical(token):
            raise InvalidToken("This link is not valid: it may have been cut short or changed.")
        try:
            raw = self._signer(purpose, now).unsign(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise InvalidToken("This link has expired.") from exc
        except BadSignature as exc:
            raise InvalidToken(
                "This link is not valid: it may have been cut short or changed."
            ) from exc
        return TokenPayload.decode(raw.decode("ascii"))


def _canonical(token: str) -> bool:
    """Return whether the timestamp and signature are canonical base64.

    The last character of a base64 field carries spare bits that decoding
    ignores, so two spellings decode to the same signature. Accept only the
    one itsdangerous writes: a token with any character changed is refused.
    """
    parts = token.rsplit(_SEP, 2)
    if len(parts) != 3:
        return False
    try:
        return all(base64_encode(base64_decode(part)).decode() == part for part in parts[1:])
    except BadData:
        return False


def _to36(number: int) -> str:
    if not 0 <= number < _MAX_ID:
        raise ValueError(f"ids are non-negative and below 36**13, not {number}")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if number == 0:
            return out


def _from36(text: str) -> int:
    if not _BASE36.match(text):
        raise InvalidToken("This link is not one of ours.")
    return int(text, 36)
