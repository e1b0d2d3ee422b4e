"""The suppression feed: every change to who must not be mailed, in commit order.

Pages are cut by ``seq``, a position handed out in commit order (see
``services.events.next_seq``), so a sync that pages while changes keep
arriving sees every change exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.events import EventKind
from unsubsvc.db.models import Campaign, Event, MailingList, Subscriber, Topic

MAX_PAGE = 1000
_KINDS = (EventKind.UNSUBSCRIBE.value, EventKind.RESUBSCRIBE.value)


@dataclass(frozen=True)
class Page:
    """One page of changes and where the next one starts."""

    changes: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def parse_cursor(cursor: str | None) -> int:
    """Return the position a cursor stands for (0 for none)."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput("cursor is not one this service gave out")
    return int(cursor)


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
        .where(Event.kind.in_(_KINDS), Event.seq.is_not(None), Event.seq > after)
        .order_by(Event.seq)
        .limit(limit + 1)
    )
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
                "seq": event.seq,
                "email": email,
                "list": None if scope == "all" else list_name,
                "topic": topic,
                "scope": scope,
                "status": "unsubscribed" if event.kind == EventKind.UNSUBSCRIBE else "subscribed",
                "changed_at": event.occurred_at.isoformat(),
                "channel": event.channel,
                "campaign": campaign,
            }
        )
    last = changes[-1]["seq"] if changes else after
    return Page(changes, str(last), more)
