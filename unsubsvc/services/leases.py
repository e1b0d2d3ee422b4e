"""Leases on rows waiting to be sent (webhook deliveries, outgoing mail).

A deliverer claims rows in a short transaction by a conditional UPDATE of
``leased_until`` and ``lease_owner`` (alike on SQLite and PostgreSQL: of
deliverers racing for a row, one UPDATE matches it, as PostgreSQL re-reads a
row changed under it and SQLite runs one writer at a time), commits, talks to
the network outside any transaction, and records the outcome in a second short
transaction only while the lease is still its own. No row lock is held across
network I/O, and a row whose deliverer died is taken over once its lease runs out.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from unsubsvc.db.base import Base


def new_owner() -> str:
    """Return a deliverer name no other deliverer has, here or on another host (≤ 64 chars)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Claim:
    """One deliverer's hold on rows: who, and until when (both must match to record)."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class LeasedTable:
    """A table whose rows are leased: its id and lease columns, and what "still to send" is."""

    model: type[Base]
    id: InstrumentedAttribute[int]
    leased_until: InstrumentedAttribute[datetime | None]
    lease_owner: InstrumentedAttribute[str | None]
    #: The condition of a row not yet sent (a sent row is never claimed or recorded again).
    pending: ColumnElement[bool]

    def free(self, now: datetime) -> ColumnElement[bool]:
        """Return the condition for a row no deliverer holds at ``now``."""
        return or_(self.leased_until.is_(None), self.leased_until <= now)

    def take(
        self, session: Session, ids: Sequence[int], claim: Claim, *due: ColumnElement[bool]
    ) -> None:
        """Lease those of ``ids`` that are still ``due`` and free (checked again in the UPDATE)."""
        session.execute(
            update(self.model)
            .where(self.id.in_(list(ids)), *due)
            .values({self.leased_until.key: claim.until, self.lease_owner.key: claim.owner})
            .execution_options(synchronize_session=False)
        )

    def held(self, claim: Claim) -> tuple[ColumnElement[bool], ...]:
        """Return the conditions for rows still held by ``claim``."""
        return self.lease_owner == claim.owner, self.leased_until == claim.until

    def settle(self, session: Session, row_id: int, claim: Claim, values: dict[str, Any]) -> bool:
        """Set ``values`` and end the lease if the row is still ``claim``'s and unsent.

        Return False (nothing written) when another deliverer has taken the row
        over: that one sends and records it.
        """
        result = session.execute(
            update(self.model)
            .where(self.id == row_id, self.pending, *self.held(claim))
            .values({self.leased_until.key: None, self.lease_owner.key: None, **values})
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult[Any], result).rowcount == 1

    def release(self, session: Session, row_ids: Sequence[int], claim: Claim) -> None:
        """Give back claimed rows that were not sent, so that any deliverer may send them now."""
        for row_id in row_ids:
            self.settle(session, row_id, claim, {})
