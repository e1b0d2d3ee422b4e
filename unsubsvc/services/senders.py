"""What senders report and ask through the API: deliveries, bounces, complaints, changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.keys import Keyring
from unsubsvc.core.reporting import COMPLAINT_CAUSE
from unsubsvc.core.suppression import BOUNCED, DEFAULT_POLICY, SuppressionPolicy
from unsubsvc.db.models import Delivery, Event, MailingList, Subscription
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.counters import count_delivery
from unsubsvc.services.erasure import is_erased
from unsubsvc.services.events import Outcome, Target, record_event
from unsubsvc.services.lists import all_lists, find_topic
from unsubsvc.services.subscribers import (
    ensure_campaign,
    ensure_subscriber,
    ensure_subscription,
    find_subscriber,
)

#: A reason for a resubscribe by API is required and bounded: it is the audit trail.
MAX_REASON = 500


@dataclass(frozen=True)
class DeliveryTotal:
    """A campaign's delivered count after recording a part."""

    campaign: str
    delivered: int


def _target(
    session: Session,
    mailing_list: MailingList,
    email: str,
    *,
    now: datetime,
    keyring: Keyring,
    topic: str | None = None,
    campaign: str | None = None,
) -> Target:
    topic_row = find_topic(mailing_list, topic) if topic else None
    subscriber = ensure_subscriber(session, email, now=now, keyring=keyring)
    campaign_id = ensure_campaign(session, mailing_list, campaign, now=now).id if campaign else None
    return Target(mailing_list, subscriber, topic_row, campaign_id)


def record_delivery(
    session: Session,
    mailing_list: MailingList,
    campaign: str,
    count: int,
    *,
    now: datetime,
    sent_at: datetime | None = None,
    segment: str | None = None,
    source: str | None = None,
) -> DeliveryTotal:
    """Record that ``count`` messages of a campaign were delivered; parts add up."""
    if count < 0:
        raise InvalidInput("count must be zero or more")
    if sent_at is not None and sent_at.tzinfo is None:
        raise InvalidInput("sent_at needs a time zone (e.g. 2026-03-02T09:30:00+00:00)")
    for name, value in (("segment", segment), ("source", source)):
        if value is not None and (not value.strip() or len(value) > 100):
            raise InvalidInput(f"{name} is 1-100 characters")
    row = ensure_campaign(session, mailing_list, campaign, now=now)
    session.add(
        Delivery(
            campaign_id=row.id,
            count=count,
            sent_at=sent_at,
            segment=segment,
            source=source,
            created_at=now,
        )
    )
    session.flush()
    count_delivery(session, row.id, count)
    total = session.scalar(
        select(func.coalesce(func.sum(Delivery.count), 0)).where(Delivery.campaign_id == row.id)
    )
    return DeliveryTotal(row.key, int(total or 0))


def record_bounce(
    session: Session,
    mailing_list: MailingList,
    email: str,
    *,
    now: datetime,
    keyring: Keyring,
    hard: bool,
    campaign: str | None = None,
    policy: SuppressionPolicy = DEFAULT_POLICY,
    channel: Channel = Channel.API,
    detail: Mapping[str, str] | None = None,
) -> Outcome:
    """Record a bounce; it is a fact about delivery, not a recipient's choice.

    Per ``policy`` (``core.suppression``) a hard bounce, or the soft bounce that
    reaches the limit within the window, suppresses the address on the list
    (eligibility says ``bounced``) without unsubscribing it; the event says
    ``suppressed`` so the feed shows it. A bounce of an erased address is not
    recorded (it would store the address again); the answer says nothing changed.
    """
    if is_erased(session, keyring, email):
        return Outcome(False)
    target = _target(session, mailing_list, email, now=now, keyring=keyring, campaign=campaign)
    subscription = ensure_subscription(session, mailing_list, target.subscriber, now=now)
    recorded: dict[str, Any] = {**(detail or {}), "type": "hard" if hard else "soft"}
    if subscription.bounced_at is None:
        soft = 0
        if not hard:
            # Soft bounces within the window, and none from before a clear: else the
            # next soft bounce after ``bounce clear`` would suppress again at once.
            cleared = subscription.bounce_cleared_at
            soft = 1 + (
                session.scalar(
                    select(func.count(Event.id)).where(
                        Event.kind == EventKind.BOUNCE.value,
                        Event.subscriber_id == target.subscriber.id,
                        Event.list_id == mailing_list.id,
                        Event.occurred_at >= policy.soft_window_start(now),
                        Event.occurred_at > cleared if cleared is not None else true(),
                        Event.detail["type"].as_string() == "soft",
                    )
                )
                or 0
            )
        if policy.suppresses(hard=hard, soft_bounces_in_window=soft):
            subscription.bounced_at = now
            recorded["suppressed"] = BOUNCED
    event_id = record_event(session, target, EventKind.BOUNCE, channel, now, recorded)
    return Outcome(True, event_id)


def clear_bounces(
    session: Session,
    email: str,
    *,
    now: datetime,
    mailing_list: MailingList | None = None,
    channel: Channel = Channel.CLI,
) -> list[str]:
    """End the bounce suppression of an address (on one list, else on all); return the lists.

    For a sender who knows the address works again (the mailbox was fixed). Soft
    bounces from before the clear no longer count towards the limit. Each clear is
    an event (the feed shows the address's standing on the list afterwards).
    """
    subscriber = find_subscriber(session, email)
    if subscriber is None:
        return []
    query = select(Subscription).where(
        Subscription.subscriber_id == subscriber.id, Subscription.bounced_at.is_not(None)
    )
    if mailing_list is not None:
        query = query.where(Subscription.list_id == mailing_list.id)
    cleared = []
    for subscription in list(session.scalars(query.order_by(Subscription.list_id))):
        subscription.bounced_at = None
        subscription.bounce_cleared_at = now
        listed = session.get(MailingList, subscription.list_id)
        if listed is None:  # pragma: no cover - the foreign key keeps it
            continue
        record_event(
            session,
            Target(listed, subscriber, None, None),
            EventKind.BOUNCE_CLEARED,
            channel,
            now,
            {"subscribed": subscription.subscribed},
        )
        cleared.append(listed.name)
    session.flush()
    return cleared


def record_complaint(
    session: Session,
    mailing_list: MailingList,
    email: str,
    *,
    now: datetime,
    keyring: Keyring,
    campaign: str | None = None,
    policy: SuppressionPolicy = DEFAULT_POLICY,
    channel: Channel = Channel.API,
) -> Outcome:
    """Record a spam complaint and unsubscribe the address, in one transaction.

    A complainant must not be mailed again (common practice, and Gmail's rule):
    with ``policy.complaint_scope`` ``sender`` (the default) the address is
    unsubscribed from every list of the sender, with ``list`` from this one only.
    A repeated report of the same campaign's message counts once. An erased address is suppressed
    already and is not stored again: nothing changes.
    """
    if is_erased(session, keyring, email):
        return Outcome(False)
    target = _target(session, mailing_list, email, now=now, keyring=keyring, campaign=campaign)
    seen = session.scalar(
        select(Event.id).where(
            Event.kind == EventKind.COMPLAINT.value,
            Event.subscriber_id == target.subscriber.id,
            Event.list_id == mailing_list.id,
            Event.campaign_id.is_(None)
            if target.campaign_id is None
            else Event.campaign_id == target.campaign_id,
        )
    )
    event_id = None
    if seen is None:
        event_id = record_event(session, target, EventKind.COMPLAINT, channel, now)
    cause = {"cause": COMPLAINT_CAUSE}
    svc.unsubscribe(session, target, channel=channel, now=now, detail=cause)
    if policy.complaint_covers_sender:
        # Each list on its own (not "all mail" at once): every list's report and feed shows it.
        for other in all_lists(session):
            if other.id != mailing_list.id:
                elsewhere = Target(other, target.subscriber, None, None)
                svc.unsubscribe(session, elsewhere, channel=channel, now=now, detail=cause)
    return Outcome(seen is None, event_id)


def unsubscribe_address(
    session: Session,
    mailing_list: MailingList,
    email: str,
    *,
    now: datetime,
    keyring: Keyring,
    topic: str | None = None,
    campaign: str | None = None,
    channel: Channel = Channel.API,
) -> Outcome:
    """Unsubscribe an address from the list (or one topic) on a sender's word.

    An erased address is suppressed already and is not stored again: nothing changes.
    """
    if is_erased(session, keyring, email):
        return Outcome(False)
    target = _target(
        session, mailing_list, email, now=now, keyring=keyring, topic=topic, campaign=campaign
    )
    return svc.unsubscribe(session, target, channel=channel, now=now)


def resubscribe_address(
    session: Session,
    mailing_list: MailingList,
    email: str,
    *,
    now: datetime,
    keyring: Keyring,
    reason: str,
    topic: str | None = None,
) -> Outcome:
    """Resubscribe an address, recording the sender's stated reason (e.g. a signup form).

    An erased address stays suppressed: AddressErased, nothing stored.
    """
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is required, 1-{MAX_REASON} characters")
    target = _target(session, mailing_list, email, now=now, keyring=keyring, topic=topic)
    return svc.resubscribe(session, target, channel=Channel.API, now=now, detail={"reason": reason})
