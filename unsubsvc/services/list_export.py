"""A list's subscribers and events, read out a chunk at a time for ``unsubsvc export-list``.

Rows are streamed (``yield_per``: a server-side cursor on PostgreSQL), so a
list of a million addresses never sits in memory. The states come out in the
plain layout ``core.csv_import`` reads, so an export imports back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, false, func, select
from sqlalchemy.orm import Session, aliased

from unsubsvc.core.events import EventKind
from unsubsvc.db.models import (
    Campaign,
    Event,
    Frequency,
    MailingList,
    Subscriber,
    Subscription,
    Topic,
    TopicOptOut,
)

#: Rows fetched per round trip.
BATCH = 1000


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A subscriber's standing on the list, as ``export-list`` writes it."""

    email: str
    #: ``subscribed``, ``unsubscribed`` or ``cleaned`` (left after a hard bounce).
    status: str
    frequency: str | None
    paused_until: datetime | None
    #: Topic slugs opted out of, ``;``-separated.
    topics_opted_out: str
    created_at: datetime
    unsubscribed_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of the list's log."""

    id: int
    occurred_at: datetime
    kind: str
    channel: str
    email: str
    topic: str | None
    campaign: str | None
    detail: dict[str, Any] | None


def members(session: Session, mailing_list: MailingList) -> Iterator[MemberRow]:
    """Yield every subscriber of the list in the order they joined, with their choices."""
    left = aliased(Event)
    left_at = (
        select(func.max(left.occurred_at))
        .where(
            left.subscriber_id == Subscriber.id,
            left.list_id == mailing_list.id,
            left.kind == EventKind.UNSUBSCRIBE.value,
            left.topic_id.is_(None),
        )
        .scalar_subquery()
    )
    bounce = aliased(Event)
    bounced = exists().where(
        bounce.subscriber_id == Subscriber.id,
        bounce.list_id == mailing_list.id,
        bounce.kind == EventKind.BOUNCE.value,
        bounce.detail["type"].as_string() == "hard",
    )
    suppressed = (Subscription.subscribed == false()) | Subscriber.unsubscribed_all_at.is_not(None)
    statement = (
        select(
            Subscription.id,
            Subscriber.email,
            case(
                (suppressed & bounced, "cleaned"), (suppressed, "unsubscribed"), else_="subscribed"
            ),
            Frequency.slug,
            Subscription.paused_until,
            Subscription.created_at,
            case((suppressed, func.coalesce(left_at, Subscriber.unsubscribed_all_at)), else_=None),
            Topic.slug,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .outerjoin(Frequency, Frequency.id == Subscription.frequency_id)
        .outerjoin(TopicOptOut, TopicOptOut.subscription_id == Subscription.id)
        .outerjoin(Topic, Topic.id == TopicOptOut.topic_id)
        .where(Subscription.list_id == mailing_list.id)
        .order_by(Subscription.id, Topic.slug)
        .execution_options(yield_per=BATCH)
    )
    current: list[Any] | None = None
    topics: list[str] = []
    for sid, email, status, frequency, paused, created, unsubscribed, topic in session.execute(
        statement
    ):
        if current is None or current[0] != sid:
            if current is not None:
                yield _member(current, topics)
            current, topics = [sid, email, status, frequency, paused, created, unsubscribed], []
        if topic is not None:
            topics.append(topic)
    if current is not None:
        yield _member(current, topics)


def _member(values: list[Any], topics: list[str]) -> MemberRow:
    _sid, email, status, frequency, paused, created, unsubscribed = values
    return MemberRow(email, status, frequency, paused, ";".join(topics), created, unsubscribed)


def events(session: Session, mailing_list: MailingList) -> Iterator[EventRow]:
    """Yield the list's events, oldest first."""
    statement = (
        select(
            Event.id,
            Event.occurred_at,
            Event.kind,
            Event.channel,
            Subscriber.email,
            Topic.slug,
            Campaign.key,
            Event.detail,
        )
        .join(Subscriber, Subscriber.id == Event.subscriber_id)
        .outerjoin(Topic, Topic.id == Event.topic_id)
        .outerjoin(Campaign, and_(Campaign.id == Event.campaign_id))
        .where(Event.list_id == mailing_list.id)
        .order_by(Event.id)
        .execution_options(yield_per=BATCH)
    )
    for row in session.execute(statement):
        yield EventRow(*row)
