"""Whole-send operations: headers for thousands of recipients, and who may be mailed.

Both work in chunks with set-based statements, so a send of 10,000 costs a few
dozen statements, not 10,000 round trips: per chunk one read, and for new
addresses one INSERT ... ON CONFLICT DO NOTHING RETURNING of subscribers and
one of their subscriptions. Addresses already known need no write at all.
What the reads return are plain rows and dataclasses, never ORM objects, so
nothing is loaded into the session nor reloaded after the commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final, Literal, TypeVar, cast

from sqlalchemy import ColumnElement, Executable, String, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.keys import Keyring
from unsubsvc.core.preferences import RecipientState, Verdict, may_mail
from unsubsvc.core.tokens import TokenPayload
from unsubsvc.db.models import MailingList, Subscriber, Subscription, TopicOptOut
from unsubsvc.services.erasure import erased_keys
from unsubsvc.services.links import LinkMinter, RecipientLinks
from unsubsvc.services.lists import find_topic
from unsubsvc.services.subscribers import PUBLIC_ID_BYTES, ensure_campaign

#: Rows per statement: well inside SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
#: The most recipients one call may name.
MAX_BATCH = 10_000

T = TypeVar("T")

#: Why an address may not be mailed beyond its choices: it was erased (``services.erasure``).
ERASED: Final = "erased"
#: A verdict on an address: its choices' verdict, or ``"erased"``.
Reason = Verdict | Literal["erased"]


@dataclass(frozen=True)
class Recipient:
    """One row of a batch: an address, and optionally its campaign and topic."""

    email: str
    campaign: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class ListMember:
    """A subscriber as a batch needs it: the row id and the public id tokens carry."""

    id: int
    public_id: str


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Yield ``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def one_of(column: InstrumentedAttribute[str], dialect: str) -> ColumnElement[bool]:
    """Return "``column`` is one of the bound ``values``", in the form each database plans well.

    PostgreSQL gets ``IN (SELECT unnest(:values))``: one array parameter, joined
    through a hash whatever plan it picks. Measured per 500 keys on 10,000 fresh
    subscribers: an IN list of 500 parameters took 110 ms, ``= ANY(:values)``
    4 ms at first and 80 ms once psycopg prepared the statement (a generic plan
    compares every row with every key), the unnest 3 ms throughout. SQLite has
    no arrays; its IN list of parameters uses the index.
    """
    if dialect == "postgresql":
        keys = bindparam("values", type_=postgresql.ARRAY(String()))
        return column.in_(select(func.unnest(keys)))
    return column.in_(bindparam("values", expanding=True))


@cache
def _members_statement(dialect: str) -> Executable:
    """Return the subscribers with the bound address keys, and their row on the bound list."""
    on_list = (Subscription.subscriber_id == Subscriber.id) & (
        Subscription.list_id == bindparam("list_id")
    )
    return (
        select(Subscriber.id, Subscriber.email_key, Subscriber.public_id, Subscription.id)
        .select_from(Subscriber)
        .outerjoin(Subscription, on_list)
        .where(one_of(Subscriber.email_key, dialect))
    )


@cache
def _insert_statements(dialect: str) -> tuple[Any, Any]:
    """Return the INSERT ... ON CONFLICT DO NOTHING of subscribers (RETURNING) and subscriptions."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    subscribers = cast(Table, Subscriber.__table__)
    new_subscribers = (
        insert(subscribers)
        .on_conflict_do_nothing(index_elements=["email_key"])
        .returning(subscribers.c.id, subscribers.c.email_key, subscribers.c.public_id)
    )
    new_subscriptions = insert(cast(Table, Subscription.__table__)).on_conflict_do_nothing(
        index_elements=["list_id", "subscriber_id"]
    )
    return new_subscribers, new_subscriptions


def ensure_recipients(
    session: Session, mailing_list: MailingList, emails: Mapping[str, str], *, now: datetime
) -> dict[str, ListMember]:
    """Return a subscriber on the list for every address, creating the missing ones and rows.

    ``emails`` maps address keys to the addresses as given. Known subscribers
    already on the list cost one read per chunk and no write. Callers leave
    erased addresses out first (``erasure.erased_keys``, one lookup per chunk),
    as ``batch_links`` and the importer do: this stores what it is given.
    """
    dialect = session.get_bind().dialect.name
    members_of = _members_statement(dialect)
    new_subscribers, new_subscriptions = _insert_statements(dialect)
    members: dict[str, ListMember] = {}
    joining: list[int] = []  # subscribers with no row on this list yet

    def read(keys: Sequence[str]) -> None:
        for part in chunks(keys):
            params = {"list_id": mailing_list.id, "values": list(part)}
            for sid, key, public_id, subscription_id in session.execute(members_of, params):
                members[key] = ListMember(sid, public_id)
                if subscription_id is None:
                    joining.append(sid)

    read(sorted(emails))
    missing = [key for key in emails if key not in members]
    for part in chunks(missing):
        rows = [
            {
                "public_id": secrets.token_urlsafe(PUBLIC_ID_BYTES),
                "email": normalize_address(emails[key]),
                "email_key": key,
                "created_at": now,
            }
            for key in part
        ]
        for sid, key, public_id in session.execute(new_subscribers, rows):
            members[key] = ListMember(sid, public_id)
            joining.append(sid)
    # Addresses another transaction inserted between our read and our insert (rare).
    read([key for key in missing if key not in members])
    for ids in chunks(joining):
        session.execute(
            new_subscriptions,
            [
                {
                    "list_id": mailing_list.id,
                    "subscriber_id": sid,
                    "subscribed": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for sid in ids
            ],
        )
    return members


def batch_links(
    session: Session,
    minter: LinkMinter,
    mailing_list: MailingList,
    recipients: Sequence[Recipient],
    *,
    now: datetime,
    keyring: Keyring,
) -> list[RecipientLinks | None]:
    """Return each recipient's links, in order, recording new addresses in one transaction.

    An erased address gets None instead of links, and is not stored; finding
    them costs one indexed lookup per chunk of addresses (``keyring`` hashes them).
    """
    if len(recipients) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} recipients per call")
    topic_ids = {
        slug: find_topic(mailing_list, slug).id for slug in {r.topic for r in recipients if r.topic}
    }
    campaign_ids = {
        key: ensure_campaign(session, mailing_list, key, now=now).id
        for key in {r.campaign for r in recipients if r.campaign}
    }
    keys = [address_key(r.email) for r in recipients]
    erased = erased_keys(session, keyring, keys)
    members = ensure_recipients(
        session,
        mailing_list,
        {key: r.email for key, r in zip(keys, recipients, strict=True) if key not in erased},
        now=now,
    )
    list_id = mailing_list.id
    links = minter.links
    return [
        None
        if key in erased
        else links(
            TokenPayload(
                list_id=list_id,
                subscriber=members[key].public_id,
                topic_id=topic_ids[r.topic] if r.topic else None,
                campaign_id=campaign_ids[r.campaign] if r.campaign else None,
            ),
            now=now,
        )
        for key, r in zip(keys, recipients, strict=True)
    ]


def eligibility(
    session: Session,
    mailing_list: MailingList,
    emails: Sequence[str],
    *,
    now: datetime,
    keyring: Keyring,
    topic: str | None = None,
    cadence: str | None = None,
    transactional: bool = False,
) -> list[tuple[str, Reason]]:
    """Return, for each address in order, whether it may be mailed now and if not why.

    An erased address is never eligible, not even for transactional mail: its
    owner asked to be forgotten, and the answer is ``"erased"`` (one indexed
    lookup per chunk of addresses; nothing is stored by asking).
    """
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
    erased = erased_keys(session, keyring, keys)
    states = states_by_key(session, mailing_list, keys)
    default = RecipientState(frequency=frequencies[0] if frequencies else None)
    return [
        (
            email,
            ERASED
            if key in erased
            else may_mail(
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


@cache
def _states_statement(dialect: str) -> Executable:
    """Return the bound addresses' stored choices on the bound list: a row per opted-out topic."""
    on_list = (Subscription.subscriber_id == Subscriber.id) & (
        Subscription.list_id == bindparam("list_id")
    )
    return (
        select(
            Subscriber.email_key,
            Subscriber.unsubscribed_all_at,
            Subscription.id,
            Subscription.subscribed,
            Subscription.frequency_id,
            Subscription.paused_until,
            Subscription.bounced_at,
            TopicOptOut.topic_id,
        )
        .select_from(Subscriber)
        .outerjoin(Subscription, on_list)
        .outerjoin(TopicOptOut, TopicOptOut.subscription_id == Subscription.id)
        .where(one_of(Subscriber.email_key, dialect))
    )


def states_by_key(
    session: Session, mailing_list: MailingList, keys: Sequence[str]
) -> dict[str, RecipientState]:
    """Return the stored state of every known address on the list, by address key."""
    frequency_slugs = {f.id: f.slug for f in mailing_list.frequencies}
    topic_slugs = {t.id: t.slug for t in mailing_list.topics}
    default_frequency = mailing_list.frequencies[0].slug if mailing_list.frequencies else None
    statement = _states_statement(session.get_bind().dialect.name)
    rows: dict[str, tuple[Any, ...]] = {}
    opt_outs: dict[str, set[str]] = {}
    for part in chunks(sorted(set(keys))):
        params = {"list_id": mailing_list.id, "values": list(part)}
        for key, *stored, topic_id in session.execute(statement, params):
            rows[key] = tuple(stored)
            if topic_id is not None:
                opt_outs.setdefault(key, set()).add(topic_slugs.get(topic_id, ""))
    states: dict[str, RecipientState] = {}
    for key, stored_row in rows.items():
        left_all_at, subscription_id, subscribed, frequency_id, paused_until, bounced_at = (
            stored_row
        )
        unsubscribed_all = left_all_at is not None
        if subscription_id is None:
            states[key] = RecipientState(
                frequency=default_frequency, unsubscribed_all=unsubscribed_all
            )
            continue
        states[key] = RecipientState(
            subscribed=subscribed,
            opted_out_topics=frozenset(opt_outs.get(key, ())),
            frequency=frequency_slugs.get(frequency_id or -1, default_frequency),
            paused_until=paused_until,
            unsubscribed_all=unsubscribed_all,
            bounced=bounced_at is not None,
        )
    return states
