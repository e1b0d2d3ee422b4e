"""Short-lived signed links: undo an unsubscribe, confirm a resubscribe, sign in by e-mail.

Unlike unsubscribe and preference links, which must work for years, these
expire, and each kind is its own type: a confirmation link never passes as an
undo link (itsdangerous salt per kind, over the ``ACTION_LINKS`` derived key).
The expiry time is part of the signed payload and checked against the ``now``
the caller passes, so the web layer's clock (and a test's) decides. Payloads
carry ids and the subscriber's random public id, never an address; they are
signed, not encrypted.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from itsdangerous import BadData, URLSafeSerializer

from unsubsvc.core.errors import InvalidToken
from unsubsvc.core.keys import KeyPurpose, Keyring

#: Longer than any genuine action link (they are about 150 characters); refused unread.
MAX_ACTION_TOKEN_LENGTH = 600

_INVALID = "This link is not valid: it may have been cut short or changed."
_EXPIRED = "This link has expired."


@dataclasses.dataclass(frozen=True, slots=True)
class UndoLink:
    """Undo one unsubscribe (``event_id``) of ``scope`` (``list``, ``all``, ``topic:SLUG``)."""

    kind: ClassVar[str] = "undo"
    list_id: int
    subscriber: str
    scope: str
    event_id: int
    expires_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class ConfirmLink:
    """Resubscribe ``scope`` of a list: mailed to the address, so following it proves it."""

    kind: ClassVar[str] = "confirm"
    list_id: int
    subscriber: str
    scope: str
    expires_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class ManageLink:
    """Sign in to manage every list of one subscriber; ``nonce`` makes it single-use."""

    kind: ClassVar[str] = "manage"
    subscriber: str
    nonce: str
    expires_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class ManageSession:
    """What a followed ``ManageLink`` becomes: the manage page's own short-lived link."""

    kind: ClassVar[str] = "manage-session"
    subscriber: str
    expires_at: int


Link = UndoLink | ConfirmLink | ManageLink | ManageSession
L = TypeVar("L", UndoLink, ConfirmLink, ManageLink, ManageSession)


def expiry(now: datetime, seconds: int) -> int:
    """Return the ``expires_at`` of a link made at ``now`` that lasts ``seconds``."""
    return int(now.timestamp()) + seconds


class ActionLinks:
    """Sign and verify action links with the keyring's ``ACTION_LINKS`` keys (any verifies)."""

    def __init__(self, keyring: Keyring) -> None:
        # itsdangerous signs with the last key of a list and verifies with any.
        self._keys = list(reversed(keyring.keys(KeyPurpose.ACTION_LINKS)))

    def _serializer(self, kind: str) -> URLSafeSerializer:
        return URLSafeSerializer(
            self._keys, salt=f"unsubsvc.{kind}.v1", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def sign(self, link: Link) -> str:
        """Return the URL-safe token for ``link``."""
        fields = [getattr(link, f.name) for f in dataclasses.fields(link)]
        token = self._serializer(link.kind).dumps(fields)
        assert isinstance(token, str)  # noqa: S101 (URLSafeSerializer dumps text)
        return token

    def verify(self, cls: type[L], token: str, *, now: datetime) -> L:
        """Return the link of type ``cls`` that ``token`` carries, or raise InvalidToken."""
        if not token or len(token) > MAX_ACTION_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken(_INVALID)
        try:
            fields: Any = self._serializer(cls.kind).loads(token)
        except BadData:
            raise InvalidToken(_INVALID) from None
        names = [f.name for f in dataclasses.fields(cls)]
        types = [int if f.type in ("int", int) else str for f in dataclasses.fields(cls)]
        if (
            not isinstance(fields, list)
            or len(fields) != len(names)
            # bool is an int subclass: refuse it like any other wrong type.
            or not all(type(v) is t for v, t in zip(fields, types, strict=True))
        ):
            raise InvalidToken(_INVALID)
        link = cls(**dict(zip(names, fields, strict=True)))
        if now.timestamp() >= link.expires_at:
            raise InvalidToken(_EXPIRED)
        return link
