"""Unsubscribe (and undo it) from what a token names, exactly once however often it is asked.

Each change is a conditional UPDATE or an INSERT ... ON CONFLICT DO NOTHING,
so when twenty mail-client retries race, the database lets one of them change
the row and only that one writes the event. The change and its event are
flushed together; the caller's unit of work commits them before it answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from unsubsvc.core.errors import NotFound
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.tokens import TokenPayload
from unsubsvc.db.models import (
    Campaign,
    MailingList,
    Subscription,
    Topic,
    TopicOptOut,
)
from unsubsvc.db.upsert import insert_ignore
from unsubsvc.services.events import Outcome, Target, record_event
from unsubsvc.services.subscribers import (
    ensure_subscription,
    find_subscriber_by_public_id,
    find_subscription,
    opted_out_topic_ids,
)


def resolve(session: Session, payload: TokenPayload) -> Target:
    """Load what a verified token names, or raise NotFound."""
    mailing_list = session.get(MailingList, payload.list_id)
    if mailing_list is None:
        raise NotFound("The list this link belongs to no longer exists.")
    subscriber = find_subscriber_by_public_id(session, payload.subscriber)
    if subscriber is None:
        raise NotFound("We have no subscriber for this link.")
    topic = None
    if payload.topic_id is not None:
        topic = session.get(Topic, payload.topic_id)
        if topic is None or topic.list_id != mailing_list.id:
            raise NotFound("The topic this link belongs to no longer exists.")
    campaign_id = payload.campaign_id
    if campaign_id is not None:
        # A deleted campaign must not block the unsubscribe; it only loses attribution.
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.list_id != mailing_list.id:
            campaign_id = None
    return Target(mailing_list, subscriber, topic, campaign_id)


def is_unsubscribed(session: Session, target: Target) -> bool:
    """Return whether the token's scope is already unsubscribed (or everything is)."""
    if target.subscriber.unsubscribed_all_at is not None:
        return True
    subscription = find_subscription(session, target.mailing_list, target.subscriber)
    if subscription is None:
        return False
    if target.topic is not None:
        return target.topic.id in opted_out_topic_ids(session, subscription)
    return not subscription.subscribed


def unsubscribe(
    session: Session,
    target: Target,
    *,
    channel: Channel,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Outcome:
    """Unsubscribe the target's scope (its topic, else the whole list); say whether it changed."""
    subscription = ensure_subscription(session, target.mailing_list, target.subscriber, now=now)
    if target.topic is not None:
        changed = insert_ignore(
            session,
            TopicOptOut,
            {
                "subscription_id": subscription.id,
                "topic_id": target.topic.id,
                "created_at": now,
            },
            conflict_on=["subscription_id", "topic_id"],
        )
    else:
        changed = _set_subscribed(session, subscription, False, now)
    event_id = None
    if changed:
        event_id = record_event(session, target, EventKind.UNSUBSCRIBE, channel, now, detail)
    return Outcome(changed, event_id)


def resubscribe(
    session: Session,
    target: Target,
    *,
    channel: Channel,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Outcome:
    """Undo an unsubscribe of the target's scope; say whether it changed."""
    subscription = ensure_subscription(session, target.mailing_list, target.subscriber, now=now)
    if target.topic is not None:
        removed = session.execute(
            delete(cast(Table, TopicOptOut.__table__))
            .where(
                TopicOptOut.subscription_id == subscription.id,
                TopicOptOut.topic_id == target.topic.id,
            )
            .returning(TopicOptOut.topic_id)
        )
        changed = removed.first() is not None
    else:
        changed = _set_subscribed(session, subscription, True, now)
    event_id = None
    if changed:
        event_id = record_event(session, target, EventKind.RESUBSCRIBE, channel, now, detail)
    return Outcome(changed, event_id)


def _set_subscribed(
    session: Session, subscription: Subscription, value: bool, now: datetime
) -> bool:
    """Flip ``subscribed`` only if it differs, and say whether this call flipped it."""
    table = cast(Table, Subscription.__table__)
    result = session.execute(
        update(table)
        .where(table.c.id == subscription.id, table.c.subscribed.is_(not value))
        .values(subscribed=value, updated_at=now)
        .returning(table.c.id)
    )
    session.expire(subscription)
    return result.first() is not None
