"""Server-side admin sessions: the browser holds a random id, the database decides if it is live.

A signed cookie alone cannot be taken back: a copy made before sign-out
would keep working until it expired. Here the cookie carries 256 random bits
(``secrets``) and the ``admin_session`` table only their SHA-256, so signing
out, a revocation, a disabled account or a timeout ends the session for every
copy of the cookie, and a database leak yields no live cookie (OWASP ASVS
V3.3, V3.5; OWASP Session Management Cheat Sheet).

Reading a session writes only when something changes: ``look_up`` reads, and
says whether ``settle`` has to touch ``last_seen_at`` (at most once a minute,
so the idle timeout is exact to the minute and busy pages do not write on
every request) or end the row (a timeout passed, or the account was disabled).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from unsubsvc.db.models import AdminSession, AdminUser

#: 32 bytes from the OS's CSPRNG: 256 bits, as OWASP asks for at least 64 bits of entropy.
ID_BYTES = 32
#: How stale ``last_seen_at`` may get before a request refreshes it.
TOUCH_INTERVAL = timedelta(minutes=1)
#: Ended rows are kept this long (who signed in from where), then purged.
ENDED_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Policy:
    """How long a session lives: idle, and in all, from sign-in."""

    idle_timeout: timedelta
    max_age: timedelta


class Change(enum.Enum):
    """What ``settle`` writes for a looked-up session."""

    NONE = "none"
    TOUCH = "touch"
    END = "end"


@dataclass(frozen=True)
class Lookup:
    """The admin a session id belongs to (None if it is not live), and what to write."""

    admin: AdminUser | None
    id_hash: str
    change: Change


def hash_id(session_id: str) -> str:
    """Return the stored form of a session id: SHA-256, hex (the id has 256 random bits)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(session: Session, admin: AdminUser, *, now: datetime, client: str | None) -> str:
    """Open a session for ``admin`` and return its id, for the cookie (never stored)."""
    session_id = secrets.token_urlsafe(ID_BYTES)
    session.add(
        AdminSession(
            id_hash=hash_id(session_id),
            admin_id=admin.id,
            created_at=now,
            last_seen_at=now,
            ended_at=None,
            client=None if client is None else client[:64],
        )
    )
    session.flush()
    return session_id


def look_up(session: Session, session_id: str, *, now: datetime, policy: Policy) -> Lookup:
    """Return who ``session_id`` signs in, if anyone, without writing anything."""
    id_hash = hash_id(session_id)
    row = session.get(AdminSession, id_hash)
    if row is None or row.ended_at is not None:
        return Lookup(None, id_hash, Change.NONE)
    admin = session.get(AdminUser, row.admin_id)
    idle = now - row.last_seen_at
    age = now - row.created_at
    if (
        admin is None
        or admin.disabled_at is not None
        or idle > policy.idle_timeout
        or age > policy.max_age
        or age < timedelta(0)
    ):
        return Lookup(None, id_hash, Change.END)
    change = Change.TOUCH if idle >= TOUCH_INTERVAL else Change.NONE
    return Lookup(admin, id_hash, change)


def settle(session: Session, lookup: Lookup, *, now: datetime) -> None:
    """Write what ``lookup`` asked for: refresh ``last_seen_at``, or end the row."""
    live = (AdminSession.id_hash == lookup.id_hash) & AdminSession.ended_at.is_(None)
    if lookup.change is Change.TOUCH:
        session.execute(update(AdminSession).where(live).values(last_seen_at=now))
    elif lookup.change is Change.END:
        session.execute(update(AdminSession).where(live).values(ended_at=now))
    session.flush()


def resolve(
    session: Session, session_id: str, *, now: datetime, policy: Policy
) -> AdminUser | None:
    """Return the admin ``session_id`` signs in, or None; end it if it timed out."""
    found = look_up(session, session_id, now=now, policy=policy)
    settle(session, found, now=now)
    return found.admin


def end(session: Session, session_id: str, *, now: datetime) -> AdminUser | None:
    """End the session (signing out); return whose it was if it was live, else None."""
    row = session.get(AdminSession, hash_id(session_id))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = now
    session.flush()
    return session.get(AdminUser, row.admin_id)


def revoke_all(session: Session, admin: AdminUser, *, now: datetime) -> int:
    """End every open session of ``admin``; return how many were open."""
    result = session.execute(
        update(AdminSession)
        .where(AdminSession.admin_id == admin.id, AdminSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def open_sessions(session: Session, admin: AdminUser) -> list[AdminSession]:
    """Return the admin's sessions not yet ended (some may have timed out unseen)."""
    return list(
        session.scalars(
            select(AdminSession)
            .where(AdminSession.admin_id == admin.id, AdminSession.ended_at.is_(None))
            .order_by(AdminSession.created_at)
        )
    )


def purge(session: Session, *, now: datetime, policy: Policy) -> int:
    """End sessions past their timeouts and delete rows ended long ago; return rows deleted."""
    stale = (AdminSession.last_seen_at < now - policy.idle_timeout) | (
        AdminSession.created_at < now - policy.max_age
    )
    session.execute(
        update(AdminSession).where(AdminSession.ended_at.is_(None), stale).values(ended_at=now)
    )
    result = session.execute(
        delete(AdminSession).where(AdminSession.ended_at < now - ENDED_RETENTION)
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
