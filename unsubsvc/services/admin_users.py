"""Admin console accounts: created from the CLI, passwords kept as scrypt hashes.

Unlike API keys (256 random bits, so a fast hash suffices), passwords are
guessable, so they are stored with scrypt, a memory-hard KDF. Signing in costs
the same whether or not the address exists: a missing account is checked
against a dummy hash.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.errors import Conflict, InvalidInput, NotFound
from unsubsvc.db.models import AdminUser

#: NIST SP 800-63B asks for at least 8; an admin sees every list's data, so 12.
MIN_PASSWORD_LENGTH = 12
#: Long enough for any passphrase, short enough that hashing it is no denial of service.
MAX_PASSWORD_LENGTH = 1024
HASH_METHOD = "scrypt"


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


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> AdminUser | None:
    """Return the live admin with this address and password, else None, in the same time."""
    admin = _find(session, email)
    stored = admin.password_hash if admin is not None else _dummy_hash()
    # Always run the KDF, so response time does not tell which addresses exist.
    matches = check_password_hash(stored, password[:MAX_PASSWORD_LENGTH])
    matches = matches and len(password) <= MAX_PASSWORD_LENGTH
    if admin is None or not matches or admin.disabled_at is not None:
        return None
    admin.last_login_at = now
    session.flush()
    return admin


def get_admin(session: Session, admin_id: int) -> AdminUser | None:
    """Return the admin with this id, or None."""
    return session.get(AdminUser, admin_id)


def list_admins(session: Session) -> list[AdminUser]:
    """Return every admin, oldest first."""
    return list(session.scalars(select(AdminUser).order_by(AdminUser.created_at, AdminUser.id)))


def disable_admin(session: Session, email: str, *, now: datetime) -> AdminUser:
    """Disable the admin with this address: signing in stops, open sessions end."""
    admin = _find(session, email)
    if admin is None:
        raise NotFound(f"no admin with the address {email!r}")
    if admin.disabled_at is None:
        admin.disabled_at = now
    session.flush()
    return admin
