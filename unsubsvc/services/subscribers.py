"""Find or create subscribers, subscriptions and campaigns without racing on inserts."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.keys import Keyring
from unsubsvc.db.models import Campaign, MailingList, Subscriber, Subscription, TopicOptOut
from unsubsvc.db.upsert import insert_ignore
from unsubsvc.services.erasure import refuse_if_erased

#: 12 random bytes: 16 URL-safe characters, 96 bits nobody can guess.
PUBLIC_ID_BYTES = 12


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    """Return the subscriber with this address, matched case-insensitively, or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email_key == address_key(address)))


def ensure_subscriber(
    session: Session, address: str, *, now: datetime, keyring: Keyring
) -> Subscriber:
    """Return the subscriber for ``address``, creating it (with a new public id) if needed.

    Raises AddressErased for an erased address, before anything is stored: the
    keyring names the keyed hash it is recorded under.
    """
    refuse_if_erased(session, keyring, address)
    existing = find_subscriber(session, address)
    if existing is not None:
        return existing
    insert_ignore(
        session,
        Subscriber,
        {
            "public_id": secrets.token_urlsafe(PUBLIC_ID_BYTES),
            "email": normalize_address(address),
            "email_key": address_key(address),
            "created_at": now,
        },
        conflict_on=["email_key"],
    )
    return _found(find_subscriber(session, address))


def find_subscription(
    session: Session, mailing_list: MailingList, subscriber: Subscriber
) -> Subscription | None:
    """Return the subscriber's row on the list, or None (never seen: subscribed, defaults)."""
    return session.scalar(
        select(Subscription).where(
            Subscription.list_id == mailing_list.id,
            Subscription.subscriber_id == subscriber.id,
        )
    )


def ensure_subscription(
    session: Session, mailing_list: MailingList, subscriber: Subscriber, *, now: datetime
) -> Subscription:
    """Return the subscriber's row on the list, creating a subscribed one if needed."""
    existing = find_subscription(session, mailing_list, subscriber)
    if existing is not None:
        return existing
    insert_ignore(
        session,
        Subscription,
        {
            "list_id": mailing_list.id,
            "subscriber_id": subscriber.id,
            "subscribed": True,
            "created_at": now,
            "updated_at": now,
        },
        conflict_on=["list_id", "subscriber_id"],
    )
    return _found(find_subscription(session, mailing_list, subscriber))


def opted_out_topic_ids(session: Session, subscription: Subscription) -> set[int]:
    """Return the ids of the topics this subscription opted out of."""
    return set(
        session.scalars(
            select(TopicOptOut.topic_id).where(TopicOptOut.subscription_id == subscription.id)
        )
    )


def ensure_campaign(
    session: Session, mailing_list: MailingList, key: str, *, now: datetime
) -> Campaign:
    """Return the list's campaign with the sender's id ``key``, creating it if needed."""
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise InvalidInput("a campaign id is 1-200 printable characters")

    def find() -> Campaign | None:
        return session.scalar(
            select(Campaign).where(Campaign.list_id == mailing_list.id, Campaign.key == key)
        )

    existing = find()
    if existing is not None:
        return existing
    insert_ignore(
        session,
        Campaign,
        {"list_id": mailing_list.id, "key": key, "created_at": now},
        conflict_on=["list_id", "key"],
    )
    return _found(find())


T = TypeVar("T")


def _found(row: T | None) -> T:
    """Return the row read back after an insert-or-ignore; it exists unless deleted meanwhile."""
    if row is None:
        raise RuntimeError("a row inserted in this transaction could not be read back")
    return row
