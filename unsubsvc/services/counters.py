"""Per-campaign report counters, updated in the same transaction as each event.

A report then reads a few rows per campaign, however long the event log grows.
Each campaign has up to ``SHARDS`` rows and each change adds to one picked at
random, so concurrent unsubscribes of one send rarely wait on the same row lock
(the sharded-counter technique, as in Google's "Sharding counters" article for
App Engine); a report sums them.
``recount`` rebuilds the same numbers from the log with plain aggregates, so
tests (and an admin in doubt) can check the running totals. What counts as a
save or a lost unsubscribe is ``core.reporting``'s rule; the SQL predicates
here are its one mirror in the database, for every query that needs it.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, distinct, func, not_, or_, select
from sqlalchemy.orm import Session

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.reporting import COMPLAINT_CAUSE, is_lost_unsubscribe, is_save
from unsubsvc.db.models import CampaignStats, CampaignUnsubscriber, Delivery, Event
from unsubsvc.db.upsert import increment, insert_ignore


def topic_save_clause() -> ColumnElement[bool]:
    """Return SQL for a topic opt-out in the preference center (a save, not a loss)."""
    return and_(
        Event.kind == EventKind.UNSUBSCRIBE.value,
        Event.channel == Channel.PREFERENCE_CENTER.value,
        Event.topic_id.is_not(None),
    )


def save_clause() -> ColumnElement[bool]:
    """Return SQL for ``core.reporting.is_save``: a pause, a downgrade or a topic opt-out."""
    return or_(
        Event.kind == EventKind.PAUSE.value,
        and_(
            Event.kind == EventKind.FREQUENCY_CHANGE.value,
            Event.detail["downgrade"].as_boolean().is_(True),
        ),
        topic_save_clause(),
    )


def lost_unsubscribe_clause() -> ColumnElement[bool]:
    """Return SQL for ``core.reporting.is_lost_unsubscribe``: the unsubscribes reports count."""
    after_complaint = func.coalesce(Event.detail["cause"].as_string(), "") == COMPLAINT_CAUSE
    return and_(
        Event.kind == EventKind.UNSUBSCRIBE.value,
        not_(topic_save_clause()),
        not_(after_complaint),
    )


#: Rows per campaign. Two writers of one campaign meet on a row 1 time in SHARDS.
SHARDS = 16

#: Every counter column, in the order reports and ``recount`` use.
COUNTER_COLUMNS = ("delivered", "unsubscribes", "complaints", "bounces", "saves", "resubscribes")


def _add(session: Session, campaign_id: int, column: str, amount: int) -> None:
    shard = random.randrange(SHARDS)  # noqa: S311 - spreading writes, not a secret
    increment(
        session, CampaignStats, {"campaign_id": campaign_id, "shard": shard}, {column: amount}
    )


def totals() -> Subquery:
    """Return a subquery of every campaign's counters (its shard rows summed), by campaign_id."""
    return (
        select(
            CampaignStats.campaign_id,
            *(func.sum(getattr(CampaignStats, c)).label(c) for c in COUNTER_COLUMNS),
        )
        .group_by(CampaignStats.campaign_id)
        .subquery()
    )


def count_event(session: Session, event: Event) -> None:
    """Add an event to its campaign's counters (events without a campaign count nowhere)."""
    if event.campaign_id is None:
        return
    column = None
    scoped = event.topic_id is not None
    if is_save(event.kind, event.channel, topic_scoped=scoped, detail=event.detail):
        column = "saves"
    elif is_lost_unsubscribe(event.kind, event.channel, topic_scoped=scoped, detail=event.detail):
        # One recipient unsubscribing twice through a campaign counts once.
        if event.subscriber_id is not None and insert_ignore(
            session,
            CampaignUnsubscriber,
            {"campaign_id": event.campaign_id, "subscriber_id": event.subscriber_id},
            conflict_on=["campaign_id", "subscriber_id"],
        ):
            column = "unsubscribes"
    elif event.kind == EventKind.COMPLAINT:
        column = "complaints"
    elif event.kind == EventKind.BOUNCE:
        column = "bounces"
    elif event.kind == EventKind.RESUBSCRIBE:
        column = "resubscribes"
    if column is not None:
        _add(session, event.campaign_id, column, 1)


def count_delivery(session: Session, campaign_id: int, count: int) -> None:
    """Add delivered messages to a campaign's counters."""
    _add(session, campaign_id, "delivered", count)


def recount(session: Session) -> dict[int, dict[str, int]]:
    """Return every campaign's counters computed afresh from the event log and deliveries."""
    lost = lost_unsubscribe_clause()

    def total(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rows = session.execute(
        select(
            Event.campaign_id,
            func.count(distinct(case((lost, Event.subscriber_id)))),
            total(Event.kind == EventKind.COMPLAINT.value),
            total(Event.kind == EventKind.BOUNCE.value),
            total(save_clause()),
            total(Event.kind == EventKind.RESUBSCRIBE.value),
        )
        .where(Event.campaign_id.is_not(None))
        .group_by(Event.campaign_id)
    ).all()
    out: dict[int, dict[str, int]] = {}
    names = ("unsubscribes", "complaints", "bounces", "saves", "resubscribes")
    for campaign_id, *values in rows:
        out[campaign_id] = {
            "delivered": 0,
            **{n: int(v or 0) for n, v in zip(names, values, strict=True)},
        }
    for campaign_id, delivered in session.execute(
        select(Delivery.campaign_id, func.sum(Delivery.count)).group_by(Delivery.campaign_id)
    ):
        empty = dict.fromkeys(names, 0)
        out.setdefault(campaign_id, {"delivered": 0, **empty})["delivered"] = int(delivered or 0)
    return out


def stored(session: Session) -> dict[int, dict[str, int]]:
    """Return every campaign's running counters as stored."""
    sums = totals()
    return {
        row.campaign_id: {c: int(getattr(row, c)) for c in COUNTER_COLUMNS}
        for row in session.execute(select(sums))
    }
