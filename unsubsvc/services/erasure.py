"""Erased addresses: kept only as keyed hashes, so an erased address is never mailed again."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.keys import Keyring
from unsubsvc.db.models import ErasedAddress
from unsubsvc.services.batch import chunks


def erased_keys(session: Session, keyring: Keyring, email_keys: Iterable[str]) -> set[str]:
    """Return which of these case-folded addresses were erased (under any configured key)."""
    by_hash: dict[str, str] = {}
    for key in email_keys:
        for digest in keyring.address_hashes(key):
            by_hash[digest] = key
    found: set[str] = set()
    for part in chunks(list(by_hash)):
        rows = session.scalars(
            select(ErasedAddress.address_hash).where(ErasedAddress.address_hash.in_(part))
        )
        found.update(by_hash[digest] for digest in rows)
    return found
