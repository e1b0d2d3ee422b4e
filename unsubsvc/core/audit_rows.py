"""The audit log as rows: the columns of its page, downloads and ``unsubsvc audit list``.

One frozen dataclass names the columns once (``core.tables`` reads them from
the type). ``detail`` is compact JSON text, so a CSV cell and a JSON field hold
the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Who can act: a console admin, an API key, a shell user, or nobody signed in.
ACTOR_KINDS = ("admin", "api", "cli", "anonymous")


@dataclass(frozen=True)
class AuditRow:
    """One audit event: who did what, to which target, when and from where."""

    id: int
    occurred_at: datetime
    actor_kind: str
    actor: str | None
    action: str
    target: str | None
    client: str | None
    detail: str | None


@dataclass(frozen=True)
class AuditFilter:
    """Which events to show: all of them unless a field narrows it."""

    actor_kind: str | None = None
    #: Events whose action starts with this (``api.``, ``admin.excuse``, ``cli.import``).
    action_prefix: str | None = None
    #: From this moment on, inclusive.
    since: datetime | None = None
    #: Before this moment, exclusive.
    until: datetime | None = None
