"""The audit log: who did what, when and from where, appended in the action's own transaction.

An action and its record commit together or not at all. A refused sign-in is
recorded too, in a transaction of its own (the request that refuses it rolls
back). Recipients are named by keyed hash (``Keyring.address_hash``), never
by address, so erasing an address leaves nothing here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from unsubsvc.db.models import AuditEvent

#: Who acted.
ADMIN = "admin"
API = "api"
CLI = "cli"
ANONYMOUS = "anonymous"


def record(
    session: Session,
    *,
    now: datetime,
    actor_kind: str,
    actor: str | None,
    action: str,
    target: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event to ``session`` and flush it."""
    entry = AuditEvent(
        occurred_at=now,
        actor_kind=actor_kind,
        actor=None if actor is None else actor[:254],
        action=action[:64],
        target=None if target is None else target[:300],
        client=None if client is None else client[:64],
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry
