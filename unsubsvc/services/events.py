"""The event log's writer, and the types every use case shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.db.models import Event, MailingList, Subscriber, Topic


@dataclass(frozen=True)
class Target:
    """What a verified token points at, loaded from the database."""

    mailing_list: MailingList
    subscriber: Subscriber
    topic: Topic | None
    campaign_id: int | None

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
    """Append one event about ``target`` (in the caller's transaction) and return its id."""
    topic = topic if topic is not None else target.topic
    event = Event(
        occurred_at=now,
        kind=kind.value,
        channel=channel.value,
        subscriber_id=target.subscriber.id,
        list_id=target.mailing_list.id,
        topic_id=topic.id if topic is not None else None,
        campaign_id=target.campaign_id,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event.id
