"""The suppression feed: every change to who must not be mailed, exactly once.

A cursor must never pass a change that commits later with a smaller position.
No shared counter row hands out positions (it would serialize every change in
the service). Instead:

- PostgreSQL: each event has a ``feed_key`` of at least the id of the
  transaction that wrote it (``pg_current_xact_id()``), and a page only reads
  events whose key is below ``pg_snapshot_xmin(pg_current_snapshot())``, the
  oldest transaction still running when the page's snapshot was taken. A
  transaction still running has an id at or above that horizon, so every event
  it may yet commit sorts after the page: nothing can appear behind the cursor.
  Pages go in (feed_key, id) order. This is the technique of PostgreSQL's
  "Transaction ID and Snapshot Information Functions" (docs §9.27.4) as outbox
  and event-store readers use it. A long-running transaction holds the feed
  back (never loses a change) until it ends.

  Transaction ids follow start order, not commit order: a transaction that got
  its id first may change an address after a later one did. So a new event's key
  is also raised to the subscriber's previous event's key (``next_feed_key``),
  read after the writer's row lock on the address; on a tie the event id, drawn
  from a sequence at insert time (after that lock), puts it second. Two changes
  to one address thus reach the feed in the order they were made. The key never
  exceeds the id of a transaction that has written, so once writers end the
  horizon passes every key and nothing waits for new traffic to show.
- SQLite: one writer at a time holds the database's write lock from its first
  write to its commit, so event ids are handed out in commit order already.

The cursor is ``"<feed_key>.<id>"`` (0 on SQLite and for events written before
this scheme).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Text, cast, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.events import EventKind
from unsubsvc.core.reporting import COMPLAINT_CAUSE
from unsubsvc.core.suppression import BOUNCED
from unsubsvc.db.models import Campaign, Event, MailingList, Subscriber, Topic

MAX_PAGE = 1000
_KINDS = (
    EventKind.UNSUBSCRIBE.value,
    EventKind.RESUBSCRIBE.value,
    EventKind.BOUNCE_CLEARED.value,
)


@dataclass(frozen=True)
class Page:
    """One page of changes and where the next one starts."""

    changes: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    """Return the (feed_key, id) position a cursor stands for ((0, 0) for none)."""
    if cursor is None or cursor == "":
        return (0, 0)
    key, dot, event_id = cursor.partition(".")
    if not (dot and _number(key) and _number(event_id)):
        raise InvalidInput("cursor is not one this service gave out; start again without a cursor")
    return (int(key), int(event_id))


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def suppression_changes(
    session: Session,
    *,
    mailing_list: MailingList | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 500,
) -> Page:
    """Return changes after ``cursor`` (and at or after ``since``), oldest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1-{MAX_PAGE}")
    after = parse_cursor(cursor)
    event_list = aliased(MailingList)
    query = (
        select(Event, Subscriber.email, event_list.name, Topic.slug, Campaign.key)
        .join(Subscriber, Subscriber.id == Event.subscriber_id)
        .join(event_list, event_list.id == Event.list_id)
        .outerjoin(Topic, Topic.id == Event.topic_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .where(
            or_(
                Event.kind.in_(_KINDS),
                # A bounce is a change only when it suppressed the address (core.suppression).
                (Event.kind == EventKind.BOUNCE.value)
                & (Event.detail["suppressed"].as_string() == BOUNCED),
            )
        )
        .limit(limit + 1)
    )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        horizon = _as_bigint(func_xmin())
        query = query.where(
            Event.feed_key < horizon, tuple_(Event.feed_key, Event.id) > tuple_(*after)
        ).order_by(Event.feed_key, Event.id)
    else:
        query = query.where(Event.id > after[1]).order_by(Event.id)
    if since is not None:
        query = query.where(Event.occurred_at >= since)
    if mailing_list is not None:
        # A change to "all mail from this sender" concerns every list.
        query = query.where(
            or_(Event.list_id == mailing_list.id, Event.detail["scope"].as_string() == "all")
        )
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    changes = []
    for event, email, list_name, topic, campaign in rows:
        scope = (
            "all" if (event.detail or {}).get("scope") == "all" else "topic" if topic else "list"
        )
        changes.append(
            {
                "seq": event.id,
                "email": email,
                "list": None if scope == "all" else list_name,
                "topic": topic,
                "scope": scope,
                "status": _status(event),
                "changed_at": event.occurred_at.isoformat(),
                "channel": event.channel,
                "campaign": campaign,
                "reason": _reason(event),
            }
        )
    if rows:
        last = rows[-1][0]
        after = (last.feed_key or 0, last.id)
    return Page(changes, f"{after[0]}.{after[1]}", more)


def _status(event: Event) -> str:
    """Return whether the address may be mailed on the change's scope after the change."""
    if event.kind in (EventKind.UNSUBSCRIBE, EventKind.BOUNCE):
        return "unsubscribed"
    if event.kind == EventKind.BOUNCE_CLEARED and not (event.detail or {}).get("subscribed"):
        return "unsubscribed"  # the clear ended a suppression, not the recipient's own choice
    return "subscribed"


def _reason(event: Event) -> str | None:
    """Return why mail stops when it is not the recipient's choice: bounced or complaint."""
    if event.kind == EventKind.BOUNCE:
        return BOUNCED
    if event.kind == EventKind.UNSUBSCRIBE and (event.detail or {}).get("cause") == COMPLAINT_CAUSE:
        return "complaint"
    return None


def next_feed_key(subscriber_id: Any) -> Any:
    """Return SQL for a new event's feed_key on PostgreSQL (see the module's docstring).

    Evaluated in the event's INSERT, after the use case's UPDATE took the row lock
    on the address, so it sees the previous change to that address, committed.
    """
    previous = (
        select(func.coalesce(func.max(Event.feed_key), 0))
        .where(Event.subscriber_id == subscriber_id)
        .scalar_subquery()
    )
    return func.greatest(_as_bigint(func.pg_current_xact_id()), previous)


def _as_bigint(xid8: Any) -> Any:
    """Return SQL turning an ``xid8`` into a bigint: it has no cast to bigint, text has."""
    return cast(cast(xid8, Text), BigInteger)


def func_xmin() -> Any:
    """Return SQL for the oldest transaction id still running in this statement's snapshot."""
    return func.pg_snapshot_xmin(func.pg_current_snapshot())
