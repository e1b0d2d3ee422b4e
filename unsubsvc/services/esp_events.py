"""Record ESP events (bounces, complaints, unsubscribes) once, under the suppression policy.

The provider modules in ``unsubsvc.web.esp`` verify a request and parse it into
``core.esp_events.EspEvent`` values, then call ``record`` for each in the
request's unit of work (which commits). Usage::

    from unsubsvc.services import esp_events
    result = esp_events.record(
        session, event, settings=context.settings(), keyring=runtime.keyring, now=now
    )
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.esp_events import EspEvent, EspEventKind
from unsubsvc.core.events import Channel
from unsubsvc.core.keys import Keyring
from unsubsvc.core.suppression import PolicySettings, SuppressionPolicy
from unsubsvc.db.models import EspEventSeen, MailingList, Subscription
from unsubsvc.db.upsert import insert_ignore
from unsubsvc.services import senders
from unsubsvc.services.subscribers import find_subscriber

#: The event_id column's length; longer ids are kept as their SHA-256.
MAX_EVENT_ID = 255


@dataclass(frozen=True)
class EspOutcome:
    """What recording one event did."""

    #: False when this (provider, event id) was recorded before: nothing changed then.
    first_time: bool
    #: The lists the event was applied to (none when the address is on none, or erased).
    lists: tuple[str, ...] = ()
    #: Whether any state or event was written for the address.
    changed: bool = False


def claim_once(session: Session, provider: str, key: str, *, now: datetime) -> bool:
    """Remember ``(provider, key)``; return False if it was remembered before.

    Atomic (an INSERT that skips a clash on the primary key), so two deliveries of
    one event racing each other record it once. Also used for Mailgun's replay
    tokens (provider ``mailgun-token``).
    """
    if len(key) > MAX_EVENT_ID:
        key = hashlib.sha256(key.encode()).hexdigest()
    return insert_ignore(
        session,
        EspEventSeen,
        {"provider": provider, "event_id": key, "received_at": now},
        conflict_on=["provider", "event_id"],
    )


def _lists_for(session: Session, event: EspEvent) -> list[MailingList]:
    """Return the event's own list when it names one that exists, else the address's lists."""
    if event.list_name:
        named = session.scalar(select(MailingList).where(MailingList.name == event.list_name))
        if named is not None:
            return [named]
    subscriber = find_subscriber(session, event.email)
    if subscriber is None:
        return []
    return list(
        session.scalars(
            select(MailingList)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(MailingList.name)
        )
    )


def record(
    session: Session,
    event: EspEvent,
    *,
    settings: PolicySettings,
    keyring: Keyring,
    now: datetime,
) -> EspOutcome:
    """Record one ESP event once per ``(event.provider, event.event_id)``; flush, not commit.

    The second delivery of the same event changes nothing (``first_time`` False).
    The list is ``event.list_name`` when it names an existing list, else every list
    the address is on (one sender per installation); an address on no list is
    only remembered as seen. HARD_BOUNCE/SOFT_BOUNCE are bounces and COMPLAINT a
    complaint, suppressing per the policy in ``settings`` (``core.suppression``; with
    complaint_scope ``sender`` the complaint is recorded once, on the first of those
    lists, and unsubscribes from all); UNSUBSCRIBE unsubscribes from the list.
    Events carry channel ``esp:<provider>``. An erased address is not stored again.
    """
    if not claim_once(session, event.provider, event.event_id, now=now):
        return EspOutcome(first_time=False)
    policy = SuppressionPolicy.from_settings(settings)
    channel = Channel(event.channel)
    applied: list[str] = []
    changed = False
    targets = _lists_for(session, event)
    if event.kind is EspEventKind.COMPLAINT and policy.complaint_covers_sender:
        # One complaint reaches every list from any one of them: record it once, not per list.
        targets = targets[:1]
    for mailing_list in targets:
        if event.kind in (EspEventKind.HARD_BOUNCE, EspEventKind.SOFT_BOUNCE):
            outcome = senders.record_bounce(
                session,
                mailing_list,
                event.email,
                hard=event.kind is EspEventKind.HARD_BOUNCE,
                policy=policy,
                channel=channel,
                detail=event.detail,
                now=now,
                keyring=keyring,
                campaign=event.campaign,
            )
        elif event.kind is EspEventKind.COMPLAINT:
            outcome = senders.record_complaint(
                session,
                mailing_list,
                event.email,
                policy=policy,
                channel=channel,
                now=now,
                keyring=keyring,
                campaign=event.campaign,
            )
        else:
            outcome = senders.unsubscribe_address(
                session,
                mailing_list,
                event.email,
                channel=channel,
                now=now,
                keyring=keyring,
                campaign=event.campaign,
            )
        changed = changed or outcome.changed
        applied.append(mailing_list.name)
    session.flush()
    return EspOutcome(first_time=True, lists=tuple(applied), changed=changed)
