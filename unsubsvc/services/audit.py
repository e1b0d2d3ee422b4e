"""The audit log: who did what, when and from where, appended in the action's own transaction.

An action and its record commit together or not at all. A refused sign-in is
recorded too, in a transaction of its own (the request that refuses it rolls
back). Recipients are named by keyed hash (``Keyring.address_hash``), never
by address, so erasing an address leaves nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from unsubsvc.core.addresses import address_key
from unsubsvc.core.audit_rows import AuditFilter, AuditRow
from unsubsvc.db.models import AuditEvent

#: Who acted (``core.audit_rows.ACTOR_KINDS``).
ADMIN = "admin"
API = "api"
CLI = "cli"
ANONYMOUS = "anonymous"

#: Set in a watched session's ``info`` once it has run an INSERT, UPDATE or DELETE.
_WROTE = "unsubsvc.audit.wrote"


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


def watch_writes(session: Session) -> None:
    """Note from now on whether ``session`` writes, so that only changes are audited.

    Services write through ORM flushes and through Core statements on the
    session's connection alike; both pass the connection's ``before_execute``
    event (SQLAlchemy "Core Events"), where a DML statement says ``is_dml``.
    """
    session.info[_WROTE] = False

    def noted(_conn: Connection, clause: Any, *_args: Any) -> None:
        if getattr(clause, "is_dml", False):
            session.info[_WROTE] = True

    def attach(connection: Connection) -> None:
        if not event.contains(connection, "before_execute", noted):
            event.listen(connection, "before_execute", noted)

    event.listen(session, "after_begin", lambda _s, _t, connection: attach(connection))
    if session.in_transaction():
        attach(session.connection())


def wrote(session: Session) -> bool:
    """Say whether ``session`` wrote anything since ``watch_writes``."""
    return bool(session.info.get(_WROTE))


def describe_target(values: Mapping[str, object], address_hash: Callable[[str], str]) -> str | None:
    """Return ``name=value`` pairs naming what an action touched, addresses as keyed hashes.

    ``address_hash`` is ``Keyring.address_hash``: any value that looks like an
    address (it holds an ``@``) is written as ``#`` and its hash, never as itself.
    """
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        text = str(value)
        if "@" in text:
            text = "#" + address_hash(address_key(text))
        parts.append(f"{name}={text}")
    return " ".join(parts) or None


def events(
    session: Session, filters: AuditFilter, *, offset: int = 0, limit: int | None = None
) -> list[AuditRow]:
    """Return the events ``filters`` selects, newest first."""
    statement = _selected(select(AuditEvent), filters)
    statement = statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    statement = statement.offset(offset).limit(limit)
    return [_row(entry) for entry in session.scalars(statement)]


def iter_events(session: Session, filters: AuditFilter, *, chunk: int = 1000) -> Iterator[AuditRow]:
    """Yield every event ``filters`` selects, newest first, a chunk of rows at a time."""
    offset = 0
    while True:
        rows = events(session, filters, offset=offset, limit=chunk)
        yield from rows
        if len(rows) < chunk:
            return
        offset += chunk


def count(session: Session, filters: AuditFilter) -> int:
    """Return how many events ``filters`` selects."""
    statement = _selected(select(func.count()).select_from(AuditEvent), filters)
    return session.scalar(statement) or 0


def _selected(statement: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.actor_kind:
        statement = statement.where(AuditEvent.actor_kind == filters.actor_kind)
    if filters.action_prefix:
        statement = statement.where(
            AuditEvent.action.startswith(filters.action_prefix, autoescape=True)
        )
    if filters.since is not None:
        statement = statement.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(AuditEvent.occurred_at < filters.until)
    return statement


def _row(entry: AuditEvent) -> AuditRow:
    detail = None
    if entry.detail is not None:
        detail = json.dumps(entry.detail, separators=(",", ":"), sort_keys=True)
    return AuditRow(
        id=entry.id,
        occurred_at=entry.occurred_at,
        actor_kind=entry.actor_kind,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        client=entry.client,
        detail=detail,
    )


#: Command-line parameters whose values name nothing personal: lists, campaigns, formats, times.
PLAIN_PARAMETERS = frozenset(
    {
        "name",
        "list_name",
        "campaign",
        "topic",
        "topics",
        "frequencies",
        "niche",
        "segment",
        "source",
        "dimension",
        "fmt",
        "since",
        "until",
        "sent_at",
        "selector",
        "domain",
        "algorithm",
        "webhook_id",
    }
)
#: The parameters that say what a command acted on, in this order.
TARGET_PARAMETERS = ("list_name", "name", "campaign", "topic", "webhook_id")


def record_command(
    session: Session,
    *,
    now: datetime,
    path: str,
    parameters: Mapping[str, object],
    user: str | None,
    host: str,
) -> AuditEvent:
    """Record a command-line change: the command, its parameters' names and its plain values.

    Values that could be an address, a file name or a URL are never recorded,
    only the name of the parameter that carried them (``PLAIN_PARAMETERS``).
    """
    given = {name: value for name, value in parameters.items() if value not in (None, ())}
    plain = {name: value for name, value in given.items() if _plain(name, value)}
    target = describe_target(
        {name: plain[name] for name in TARGET_PARAMETERS if name in plain}, _no_address
    )
    return record(
        session,
        now=now,
        actor_kind=CLI,
        actor=user,
        action=f"cli.{path}",
        target=target,
        client=f"cli@{host}",
        detail={"parameters": sorted(given), "values": plain},
    )


def _plain(name: str, value: object) -> bool:
    if isinstance(value, bool | int | float):
        return True
    if name not in PLAIN_PARAMETERS:
        return False
    if isinstance(value, str):
        return "@" not in value
    if isinstance(value, tuple | list):
        return all(isinstance(v, str) and "@" not in v for v in value)
    return False


def _no_address(_key: str) -> str:  # pragma: no cover - _plain never lets an address through
    raise AssertionError("an address reached a command's audit target")
