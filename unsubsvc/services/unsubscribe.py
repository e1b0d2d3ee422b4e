"""Unsubscribe (and undo it) from what a token names, exactly once however often it is asked.

Each change is a conditional UPDATE or an INSERT ... ON CONFLICT DO NOTHING,
so when twenty mail-client retries race, the database lets one of them change
the row and only that one writes the event. The change and its event are
flushed together; the caller's unit of work commits them before it answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Boolean, Table, and_, bindparam, delete, select, update
from sqlalchemy.orm import Session

from unsubsvc.core.errors import NotFound
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.tokens import TokenPayload
from unsubsvc.db.models import (
    Campaign,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    Topic,
    TopicOptOut,
)
from unsubsvc.db.upsert import insert_ignore
from unsubsvc.services.events import Outcome, Target, record_event
from unsubsvc.services.subscribers import ensure_subscription, opted_out_topic_ids

#: Everything a token names, in one round trip (built once; only parameters vary).
_RESOLVE = (
    select(MailingList, Subscriber, Subscription, Topic, Campaign.id, Campaign.key)
    .select_from(MailingList)
    .join(Subscriber, Subscriber.public_id == bindparam("subscriber"))
    .outerjoin(
        Subscription,
        and_(Subscription.list_id == MailingList.id, Subscription.subscriber_id == Subscriber.id),
    )
    .outerjoin(Topic, and_(Topic.id == bindparam("topic_id"), Topic.list_id == MailingList.id))
    .outerjoin(
        Campaign,
        and_(Campaign.id == bindparam("campaign_id"), Campaign.list_id == MailingList.id),
    )
    .where(MailingList.id == bindparam("list_id"))
)


def resolve(session: Session, payload: TokenPayload) -> Target:
    """Load what a verified token names, or raise NotFound (one SELECT)."""
    if not payload.fits_database():  # ids past the integer keys name nothing (and break SQL)
        raise NotFound("We have no subscriber for this link.")
    row = session.execute(
        _RESOLVE,
        {
            "list_id": payload.list_id,
            "subscriber": payload.subscriber,
            "topic_id": payload.topic_id,
            "campaign_id": payload.campaign_id,
        },
    ).first()
    if row is None:
        if session.get(MailingList, payload.list_id) is None:
            raise NotFound("The list this link belongs to no longer exists.")
        raise NotFound("We have no subscriber for this link.")
    mailing_list, subscriber, subscription, topic, campaign_id, campaign_key = row
    if payload.topic_id is not None and topic is None:
        raise NotFound("The topic this link belongs to no longer exists.")
    # A deleted campaign must not block the unsubscribe; it only loses attribution.
    return Target(mailing_list, subscriber, topic, campaign_id, campaign_key, subscription)


def is_unsubscribed(session: Session, target: Target) -> bool:
    """Return whether the token's scope is already unsubscribed (or everything is)."""
    if target.subscriber.unsubscribed_all_at is not None:
        return True
    subscription = target.subscription
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
    subscription = target.subscription or ensure_subscription(
        session, target.mailing_list, target.subscriber, now=now
    )
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
        # Asking to be mailed again on the list ends a bounce suppression too (core.suppression).
        if subscription.bounced_at is not None:
            subscription.bounced_at = None
            subscription.bounce_cleared_at = now
            changed = True
    event_id = None
    if changed:
        event_id = record_event(session, target, EventKind.RESUBSCRIBE, channel, now, detail)
    return Outcome(changed, event_id)


def _set_subscribed(
    session: Session, subscription: Subscription, value: bool, now: datetime
) -> bool:
    """Flip ``subscribed`` only if it differs, and say whether this call flipped it."""
    result = session.execute(
        _FLIP, {"subscription_id": subscription.id, "value": value, "now": now}
    )
    session.expire(subscription)
    return result.first() is not None


_SUBSCRIPTION = cast(Table, Subscription.__table__)
# Built once (it runs on every unsubscribe): flip ``subscribed`` only if it differs.
_FLIP = (
    update(_SUBSCRIPTION)
    .where(
        _SUBSCRIPTION.c.id == bindparam("subscription_id"),
        _SUBSCRIPTION.c.subscribed.is_distinct_from(bindparam("value", type_=Boolean)),
    )
    .values(subscribed=bindparam("value", type_=Boolean), updated_at=bindparam("now"))
    .returning(_SUBSCRIPTION.c.id)
)


_STATE_CHANGES = (EventKind.UNSUBSCRIBE.value, EventKind.RESUBSCRIBE.value)


def latest_change_id(session: Session, target: Target, scope: str) -> int | None:
    """Return the id of the newest unsubscribe or resubscribe of ``scope``, or None.

    ``scope`` is ``all`` (the subscriber's every list: events without a topic whose
    detail says so), ``list`` (the target's list) or ``topic:SLUG`` (``target.topic``).
    """
    query = (
        select(Event.id, Event.detail)
        .where(Event.subscriber_id == target.subscriber.id, Event.kind.in_(_STATE_CHANGES))
        .order_by(Event.id.desc())
        .limit(200)  # the newest changes decide; a subscriber's history is short
    )
    if scope == "all":
        rows = session.execute(query.where(Event.topic_id.is_(None))).all()
        return next((r.id for r in rows if (r.detail or {}).get("scope") == "all"), None)
    query = query.where(Event.list_id == target.mailing_list.id)
    if target.topic is not None:
        query = query.where(Event.topic_id == target.topic.id)
    else:
        query = query.where(Event.topic_id.is_(None))
    rows = session.execute(query).all()
    # A list-scope change is one without the "all" marker (leaving everything is its own scope).
    if target.topic is None:
        return next((r.id for r in rows if (r.detail or {}).get("scope") != "all"), None)
    return rows[0].id if rows else None
