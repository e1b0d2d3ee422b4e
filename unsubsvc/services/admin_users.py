"""Admin console accounts: created from the CLI, passwords kept as scrypt hashes.

Unlike API keys (256 random bits, so a fast hash suffices), passwords are
guessable, so they are stored with scrypt, a memory-hard KDF. Signing in costs
the same whether or not the address exists: a missing account is checked
against a dummy hash.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from unsubsvc.core.addresses import MAX_ADDRESS_LENGTH, address_key, normalize_address
from unsubsvc.core.errors import Conflict, InvalidInput, NotFound
from unsubsvc.db.models import AdminUser, AuditEvent
from unsubsvc.services import admin_sessions, audit

#: NIST SP 800-63B asks for at least 8; an admin sees every list's data, so 12.
MIN_PASSWORD_LENGTH = 12
#: Long enough for any passphrase, short enough that hashing it is no denial of service.
MAX_PASSWORD_LENGTH = 1024
HASH_METHOD = "scrypt"
#: Wrong passwords in a row that lock an account (OWASP ASVS V2.2.1 asks for at most 100).
MAX_FAILED_LOGINS = 10
#: How long a locked account refuses every attempt.
LOCKOUT = timedelta(minutes=15)
#: Audit actions of the sign-in page.
SIGNED_IN_ACTION = "admin.sign_in"
REFUSED_ACTION = "admin.sign_in_refused"
THROTTLED_ACTION = "admin.sign_in_throttled"
LOCKED_ACTION = "admin.locked"
SIGNED_OUT_ACTION = "admin.sign_out"
REVOKED_ACTION = "admin.sessions_revoked"


@functools.cache
def _dummy_hash() -> str:
    """Return a hash to check against when no account matches (made once, on first use)."""
    return generate_password_hash("unsubsvc: no such admin", method=HASH_METHOD)


def check_password(password: str) -> str:
    """Return ``password`` if it is acceptable, else raise InvalidInput saying why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _find(session: Session, email: str) -> AdminUser | None:
    try:
        key = address_key(email)
    except InvalidInput:
        return None
    return session.scalar(select(AdminUser).where(AdminUser.email_key == key))


def create_admin(session: Session, email: str, password: str, *, now: datetime) -> AdminUser:
    """Create an admin account; Conflict if the address (in any case) already has one."""
    address = normalize_address(email)
    check_password(password)
    if _find(session, address) is not None:
        raise Conflict(f"an admin with the address {address!r} already exists")
    admin = AdminUser(
        email=address,
        email_key=address_key(address),
        password_hash=generate_password_hash(password, method=HASH_METHOD),
        created_at=now,
    )
    session.add(admin)
    session.flush()
    return admin


class Outcome(enum.Enum):
    """How a sign-in attempt ended."""

    SIGNED_IN = "signed_in"
    #: Wrong address or password (or a disabled account): one answer for all.
    REFUSED = "refused"
    #: Too many wrong attempts for this address: refused without checking the password.
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Attempt:
    """The result of a sign-in attempt; ``locked_now`` when this attempt locked the account."""

    outcome: Outcome
    admin: AdminUser | None = None
    locked_now: bool = False


def attempt_key(email: str) -> str:
    """Return how an attempted address is named in the audit log: case-folded, bounded."""
    try:
        return address_key(email)
    except InvalidInput:
        return email.strip().casefold()[:MAX_ADDRESS_LENGTH]


def sign_in(
    session: Session, email: str, password: str, *, now: datetime, client: str | None
) -> Attempt:
    """Check an address and password, counting wrong ones, and record the attempt.

    After ``MAX_FAILED_LOGINS`` wrong passwords in a row the account is locked
    for ``LOCKOUT`` (OWASP ASVS V2.2.1; NIST SP 800-63B §5.2.2 rate limiting):
    while locked every attempt is refused without running scrypt, so guessing
    costs the attacker time and the server no CPU. An address with no account
    is throttled the same way, counted from the audit log's refused attempts,
    so the answer does not tell which addresses have accounts. The counts and
    audit events are flushed here; the caller's unit of work must commit them
    even though the attempt failed.
    """
    key = attempt_key(email)
    admin = _find(session, email)
    if admin is not None and admin.locked_until is not None and now >= admin.locked_until:
        admin.failed_logins = 0  # the lock has run out: a fresh count
        admin.locked_until = None
    if _throttled(session, admin, key, now=now):
        audit.record(
            session,
            now=now,
            actor_kind=audit.ANONYMOUS,
            actor=key,
            action=THROTTLED_ACTION,
            client=client,
        )
        return Attempt(Outcome.THROTTLED)
    if _password_matches(admin, password) and admin is not None and admin.disabled_at is None:
        admin.last_login_at = now
        admin.failed_logins = 0
        admin.locked_until = None
        session.flush()
        audit.record(
            session,
            now=now,
            actor_kind=audit.ADMIN,
            actor=admin.email,
            action=SIGNED_IN_ACTION,
            client=client,
        )
        return Attempt(Outcome.SIGNED_IN, admin)
    audit.record(
        session,
        now=now,
        actor_kind=audit.ANONYMOUS,
        actor=key,
        action=REFUSED_ACTION,
        client=client,
    )
    if admin is None:
        return Attempt(Outcome.REFUSED)
    # Counted in the database (failed_logins + 1), so concurrent attempts are all counted.
    admin.failed_logins = AdminUser.failed_logins + 1
    session.flush()
    session.refresh(admin, ["failed_logins"])
    if admin.failed_logins < MAX_FAILED_LOGINS:
        return Attempt(Outcome.REFUSED, admin)
    admin.locked_until = now + LOCKOUT
    session.flush()
    audit.record(
        session,
        now=now,
        actor_kind=audit.ANONYMOUS,
        actor=key,
        action=LOCKED_ACTION,
        target=admin.email,
        client=client,
        detail={"failed_logins": admin.failed_logins, "until": admin.locked_until.isoformat()},
    )
    return Attempt(Outcome.REFUSED, admin, locked_now=True)


def sign_out(
    session: Session, session_id: str, *, now: datetime, client: str | None
) -> AdminUser | None:
    """End the browser's session and record it; return whose it was, None if it was not live."""
    admin = admin_sessions.end(session, session_id, now=now)
    if admin is not None:
        audit.record(
            session,
            now=now,
            actor_kind=audit.ADMIN,
            actor=admin.email,
            action=SIGNED_OUT_ACTION,
            client=client,
        )
    return admin


def _throttled(session: Session, admin: AdminUser | None, key: str, *, now: datetime) -> bool:
    """Say whether attempts for this address are refused unchecked for now."""
    if admin is not None:
        return admin.locked_until is not None and now < admin.locked_until
    # No account: as many refusals in the last LOCKOUT as would have locked one.
    recent = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.occurred_at > now - LOCKOUT,
            AuditEvent.action == REFUSED_ACTION,
            AuditEvent.actor == key,
        )
    )
    return (recent or 0) >= MAX_FAILED_LOGINS


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> AdminUser | None:
    """Return the live admin with this address and password, else None, in the same time.

    Counts nothing and records nothing: ``sign_in`` is the console's way in.
    """
    admin = _find(session, email)
    if not _password_matches(admin, password) or admin is None or admin.disabled_at is not None:
        return None
    admin.last_login_at = now
    session.flush()
    return admin


def _password_matches(admin: AdminUser | None, password: str) -> bool:
    """Check ``password`` against the admin's hash, or a dummy one: the same scrypt either way."""
    stored = admin.password_hash if admin is not None else _dummy_hash()
    # Always run the KDF, so response time does not tell which addresses exist.
    matches = check_password_hash(stored, password[:MAX_PASSWORD_LENGTH])
    return matches and len(password) <= MAX_PASSWORD_LENGTH


def get_admin(session: Session, admin_id: int) -> AdminUser | None:
    """Return the admin with this id, or None."""
    return session.get(AdminUser, admin_id)


def list_admins(session: Session) -> list[AdminUser]:
    """Return every admin, oldest first."""
    return list(session.scalars(select(AdminUser).order_by(AdminUser.created_at, AdminUser.id)))


def find_admin(session: Session, email: str) -> AdminUser:
    """Return the admin with this address (in any case), or raise NotFound."""
    admin = _find(session, email)
    if admin is None:
        raise NotFound(f"no admin with the address {email!r}")
    return admin


def disable_admin(session: Session, email: str, *, now: datetime) -> AdminUser:
    """Disable the admin with this address: signing in stops, open sessions end."""
    admin = find_admin(session, email)
    if admin.disabled_at is None:
        admin.disabled_at = now
    admin_sessions.revoke_all(session, admin, now=now)
    session.flush()
    return admin


def revoke_sessions(
    session: Session,
    email: str,
    *,
    now: datetime,
    actor_kind: str,
    actor: str | None,
    client: str | None = None,
) -> int:
    """End every open session of the admin with this address, audited; return how many."""
    admin = find_admin(session, email)
    ended = admin_sessions.revoke_all(session, admin, now=now)
    audit.record(
        session,
        now=now,
        actor_kind=actor_kind,
        actor=actor,
        action=REVOKED_ACTION,
        target=admin.email,
        client=client,
        detail={"sessions": ended},
    )
    return ended
