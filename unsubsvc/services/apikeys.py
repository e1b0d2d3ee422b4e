"""API keys for senders: shown once, stored as a hash, compared in constant time.

A key reads ``usk_<prefix>_<secret>``. The prefix finds the row; the SHA-256
of the whole key is what is stored and compared. Keys carry 256 random bits,
so a fast hash is the right tool here (a password KDF protects guessable
secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.errors import Conflict, InvalidInput, NotFound
from unsubsvc.db.models import ApiKey

_KEY = re.compile(r"\Ausk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")
_NAME = re.compile(r"\A[\w.@-]{1,100}\Z")
#: Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)
# Compared against when no row matches, so a miss costs what a hit costs.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A key just made: the row, and the secret to show once."""

    key: ApiKey
    secret: str


def _hash(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


def create_key(session: Session, name: str, *, now: datetime) -> NewKey:
    """Make a key called ``name``; its secret is returned here and never again."""
    if not _NAME.match(name):
        raise InvalidInput("a key name is 1-100 letters, digits, '.', '@', '_' or '-'")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"an API key called {name!r} already exists")
    prefix = secrets.token_hex(6)
    secret = f"usk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=prefix, key_hash=_hash(secret), created_at=now)
    session.add(key)
    session.flush()
    return NewKey(key, secret)


def list_keys(session: Session) -> list[ApiKey]:
    """Return every key, newest first (secrets are not stored, so not shown)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)))


def revoke_key(session: Session, name: str, *, now: datetime) -> ApiKey:
    """Revoke the key called ``name``; it stops working at once."""
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"no API key called {name!r}")
    if key.revoked_at is None:
        key.revoked_at = now
    session.flush()
    return key


def authenticate(session: Session, presented: str, *, now: datetime) -> ApiKey | None:
    """Return the live key matching ``presented``, or None; timing does not depend on which."""
    match = _KEY.match(presented)
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1))) if match else None
    expected = key.key_hash if key is not None else _DUMMY_HASH
    if not hmac.compare_digest(_hash(presented), expected) or key is None:
        return None
    if key.revoked_at is not None:
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.flush()
    return key
