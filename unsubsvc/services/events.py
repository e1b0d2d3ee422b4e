"""The event log's writer, and the types every use case shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, Table, Text, bindparam, insert, literal, select
from sqlalchemy.orm import Session

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.db.base import UTCDateTime
from unsubsvc.db.models import (
    Campaign,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    Topic,
    Webhook,
    WebhookDelivery,
)
from unsubsvc.services.counters import count_event
from unsubsvc.services.feed import next_feed_key


@dataclass(frozen=True)
class Target:
    """What a verified token points at, loaded from the database."""

    mailing_list: MailingList
    subscriber: Subscriber
    topic: Topic | None
    campaign_id: int | None
    #: The campaign's own key, when the loader had it at hand (webhook payloads name it).
    campaign_key: str | None = None
    #: The subscriber's row on the list, when the loader found one (saves a lookup).
    subscription: Subscription | None = None

    @property
    def scope(self) -> str:
        """Say in words what an unsubscribe through this token stops."""
        if self.topic is not None:
            return f"{self.topic.name} mail from {self.mailing_list.display_name}"
        return f"all mail from {self.mailing_list.display_name}"


@dataclass(frozen=True)
class Outcome:
    """The result of a change: whether this call made it, and the event it wrote."""

    changed: bool
    event_id: int | None = None


_EVENT_COLUMNS = (
    "occurred_at",
    "kind",
    "channel",
    "subscriber_id",
    "list_id",
    "topic_id",
    "campaign_id",
    "detail",
)
# Built once: an unsubscribe pays for its parameters only, not for building SQL.
_INSERT_EVENT = insert(Event).values({c: bindparam(c) for c in _EVENT_COLUMNS}).returning(Event.id)
_INSERT_EVENT_POSTGRES = _INSERT_EVENT.values(feed_key=next_feed_key(bindparam("subscriber_id")))


def record_event(
    session: Session,
    target: Target,
    kind: EventKind,
    channel: Channel,
    now: datetime,
    detail: dict[str, Any] | None = None,
    *,
    topic: Topic | None = None,
) -> int:
    """Append one event about ``target`` (in the caller's transaction) and return its id.

    One INSERT ... RETURNING, not an ORM flush: this runs on every unsubscribe.
    """
    topic = topic if topic is not None else target.topic
    subscriber_id = target.subscriber.id
    values: dict[str, Any] = {
        "occurred_at": now,
        "kind": kind.value,
        "channel": channel.value,
        "subscriber_id": subscriber_id,
        "list_id": target.mailing_list.id,
        "topic_id": topic.id if topic is not None else None,
        "campaign_id": target.campaign_id,
        "detail": detail,
    }
    postgres = session.get_bind().dialect.name == "postgresql"
    # Pending ORM changes first (their row locks come before the event's feed key is read),
    # then Core on the connection: the statement loads no objects.
    session.flush()
    connection = session.connection()
    event_id: int = connection.execute(
        _INSERT_EVENT_POSTGRES if postgres else _INSERT_EVENT, values
    ).scalar_one()
    event = Event(id=event_id, **values)
    count_event(session, event)
    queue_webhooks(session, event, target, topic, now)
    return event_id


def event_document(
    event: Event, target: Target, topic: Topic | None, campaign_key: str | None
) -> dict[str, Any]:
    """Return the JSON form of an event that webhooks and the API send."""
    return {
        "id": event.id,
        "seq": event.id,
        "type": event.kind,
        "occurred_at": event.occurred_at.isoformat(),
        "list": target.mailing_list.name,
        "email": target.subscriber.email,
        "subscriber": target.subscriber.public_id,
        "topic": topic.slug if topic is not None else None,
        "campaign": campaign_key,
        "channel": event.channel,
        "detail": event.detail,
    }


def queue_webhooks(
    session: Session, event: Event, target: Target, topic: Topic | None, now: datetime
) -> None:
    """Write the event into every active endpoint's outbox, in the change's own transaction.

    One INSERT ... SELECT over the active endpoints: no separate lookup, no cache
    that could miss an endpoint added a moment ago.
    """
    campaign_key = target.campaign_key
    if campaign_key is None and target.campaign_id is not None:
        campaign_key = session.scalar(select(Campaign.key).where(Campaign.id == target.campaign_id))
    payload = json.dumps(event_document(event, target, topic, campaign_key), separators=(",", ":"))
    session.connection().execute(
        _QUEUE_WEBHOOKS,
        {
            "event_id": event.id,
            "subscriber_id": target.subscriber.id,
            "payload": payload,
            "now": now,
        },
    )


_QUEUE_WEBHOOKS = insert(cast(Table, WebhookDelivery.__table__)).from_select(
    [
        "webhook_id",
        "event_id",
        "subscriber_id",
        "payload",
        "created_at",
        "attempts",
        "next_attempt_at",
    ],
    select(
        Webhook.id,
        bindparam("event_id", type_=BigInteger),
        bindparam("subscriber_id", type_=BigInteger),
        bindparam("payload", type_=Text),
        bindparam("now", type_=UTCDateTime()),
        literal(0, Integer),
        bindparam("now", type_=UTCDateTime()),
    ).where(Webhook.disabled_at.is_(None)),
)
