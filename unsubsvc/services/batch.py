"""Whole-send operations: headers for thousands of recipients, and who may be mailed.

Both work in chunks with set-based queries, so a send of 10,000 costs a few
dozen statements, not 10,000 round trips. Addresses already known need no
write at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.preferences import RecipientState, Verdict, may_mail
from unsubsvc.core.tokens import TokenPayload
from unsubsvc.db.models import (
    MailingList,
    Subscriber,
    Subscription,
    TopicOptOut,
)
from unsubsvc.db.upsert import insert_ignore_many
from unsubsvc.services.links import LinkMinter, RecipientLinks
from unsubsvc.services.lists import find_topic
from unsubsvc.services.subscribers import PUBLIC_ID_BYTES, ensure_campaign

#: Rows per statement: well inside SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
#: The most recipients one call may name.
MAX_BATCH = 10_000

T = TypeVar("T")


@dataclass(frozen=True)
class Recipient:
    """One row of a batch: an address, and optionally its campaign and topic."""

    email: str
    campaign: str | None = None
    topic: str | None = None


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Yield ``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def subscribers_by_key(session: Session, keys: Sequence[str]) -> dict[str, Subscriber]:
    """Return the known subscribers among the address keys, by key."""
    found: dict[str, Subscriber] = {}
    for part in chunks(sorted(set(keys))):
        for subscriber in session.scalars(select(Subscriber).where(Subscriber.email_key.in_(part))):
            found[subscriber.email_key] = subscriber
    return found


def ensure_recipients(
    session: Session, mailing_list: MailingList, emails: Sequence[str], *, now: datetime
) -> dict[str, Subscriber]:
    """Return a subscriber for every address, creating the missing ones and their rows."""
    by_key = {address_key(email): normalize_address(email) for email in emails}
    known = subscribers_by_key(session, list(by_key))
    missing = [
        {
            "public_id": secrets.token_urlsafe(PUBLIC_ID_BYTES),
            "email": email,
            "email_key": key,
            "created_at": now,
        }
        for key, email in by_key.items()
        if key not in known
    ]
    for rows in chunks(missing):
        insert_ignore_many(session, Subscriber, rows, conflict_on=["email_key"])
    if missing:
        known = subscribers_by_key(session, list(by_key))
    ids = [s.id for s in known.values()]
    on_list: set[int] = set()
    for id_part in chunks(ids):
        on_list.update(
            session.scalars(
                select(Subscription.subscriber_id).where(
                    Subscription.list_id == mailing_list.id, Subscription.subscriber_id.in_(id_part)
                )
            )
        )
    new_rows = [
        {
            "list_id": mailing_list.id,
            "subscriber_id": sid,
            "subscribed": True,
            "created_at": now,
            "updated_at": now,
        }
        for sid in ids
        if sid not in on_list
    ]
    for rows in chunks(new_rows):
        insert_ignore_many(session, Subscription, rows, conflict_on=["list_id", "subscriber_id"])
    return known


def batch_links(
    session: Session,
    minter: LinkMinter,
    mailing_list: MailingList,
    recipients: Sequence[Recipient],
    *,
    now: datetime,
) -> list[RecipientLinks]:
    """Return each recipient's links, in order, recording new addresses in one transaction."""
    if len(recipients) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} recipients per call")
    topic_ids = {
        slug: find_topic(mailing_list, slug).id for slug in {r.topic for r in recipients if r.topic}
    }
    campaign_ids = {
        key: ensure_campaign(session, mailing_list, key, now=now).id
        for key in {r.campaign for r in recipients if r.campaign}
    }
    subscribers = ensure_recipients(session, mailing_list, [r.email for r in recipients], now=now)
    return [
        minter.links(
            TokenPayload(
                list_id=mailing_list.id,
                subscriber=subscribers[address_key(r.email)].public_id,
                topic_id=topic_ids[r.topic] if r.topic else None,
                campaign_id=campaign_ids[r.campaign] if r.campaign else None,
            ),
            now=now,
        )
        for r in recipients
    ]


def eligibility(
    session: Session,
    mailing_list: MailingList,
    emails: Sequence[str],
    *,
    now: datetime,
    topic: str | None = None,
    cadence: str | None = None,
    transactional: bool = False,
) -> list[tuple[str, Verdict]]:
    """Return, for each address in order, whether it may be mailed now and if not why."""
    if len(emails) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} addresses per call")
    if topic is not None:
        find_topic(mailing_list, topic)
    frequencies = [f.slug for f in mailing_list.frequencies]
    if cadence is not None and cadence not in frequencies:
        raise InvalidInput(
            f"list {mailing_list.name!r} has no frequency {cadence!r} "
            f"(frequencies: {', '.join(frequencies) or 'none'})"
        )
    keys = [address_key(e) for e in emails]
    states = states_by_key(session, mailing_list, keys)
    default = RecipientState(frequency=frequencies[0] if frequencies else None)
    return [
        (
            email,
            may_mail(
                states.get(key, default),
                now=now,
                frequencies=frequencies,
                topic=topic,
                cadence=cadence,
                transactional=transactional,
            ),
        )
        for email, key in zip(emails, keys, strict=True)
    ]


def states_by_key(
    session: Session, mailing_list: MailingList, keys: Sequence[str]
) -> dict[str, RecipientState]:
    """Return the stored state of every known address on the list, by address key."""
    frequency_slugs = {f.id: f.slug for f in mailing_list.frequencies}
    topic_slugs = {t.id: t.slug for t in mailing_list.topics}
    default_frequency = mailing_list.frequencies[0].slug if mailing_list.frequencies else None
    states: dict[str, RecipientState] = {}
    for part in chunks(sorted(set(keys))):
        rows = session.execute(
            select(Subscriber, Subscription)
            .outerjoin(
                Subscription,
                (Subscription.subscriber_id == Subscriber.id)
                & (Subscription.list_id == mailing_list.id),
            )
            .where(Subscriber.email_key.in_(part))
        ).all()
        subscription_ids = [sub.id for _, sub in rows if sub is not None]
        opt_outs: dict[int, set[str]] = {}
        for inner in chunks(subscription_ids):
            for sid, tid in session.execute(
                select(TopicOptOut.subscription_id, TopicOptOut.topic_id).where(
                    TopicOptOut.subscription_id.in_(inner)
                )
            ):
                opt_outs.setdefault(sid, set()).add(topic_slugs.get(tid, ""))
        for subscriber, subscription in rows:
            unsubscribed_all = subscriber.unsubscribed_all_at is not None
            if subscription is None:
                states[subscriber.email_key] = RecipientState(
                    frequency=default_frequency, unsubscribed_all=unsubscribed_all
                )
                continue
            states[subscriber.email_key] = RecipientState(
                subscribed=subscription.subscribed,
                opted_out_topics=frozenset(opt_outs.get(subscription.id, set())),
                frequency=frequency_slugs.get(subscription.frequency_id or -1, default_frequency),
                paused_until=subscription.paused_until,
                unsubscribed_all=unsubscribed_all,
            )
    return states
