"""The event log's writer, and the types every use case shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, Text, insert, literal, select
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
    if session.get_bind().dialect.name == "postgresql":
        values["feed_key"] = next_feed_key(subscriber_id)
    event_id: int = session.execute(insert(Event).values(**values).returning(Event.id)).scalar_one()
    event = Event(id=event_id, **{k: v for k, v in values.items() if k != "feed_key"})
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
    session.execute(
        insert(WebhookDelivery).from_select(
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
                literal(event.id, BigInteger),
                literal(target.subscriber.id, BigInteger),
                literal(payload, Text),
                literal(now, UTCDateTime()),
                literal(0, Integer),
                literal(now, UTCDateTime()),
            ).where(Webhook.disabled_at.is_(None)),
        )
    )
