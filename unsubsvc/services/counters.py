"""Per-campaign report counters, updated in the same transaction as each event.

A report then reads one row per campaign, however long the event log grows.
``recount`` rebuilds the same numbers from the log with plain aggregates, so
tests (and an admin in doubt) can check the running totals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, distinct, func, not_, select
from sqlalchemy.orm import Session

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.db.models import CampaignStats, CampaignUnsubscriber, Delivery, Event
from unsubsvc.db.upsert import increment, insert_ignore


def _is_save(event: Event) -> bool:
    """Return whether an event kept a subscriber with less mail rather than losing them."""
    if event.kind == EventKind.PAUSE:
        return True
    if event.kind == EventKind.FREQUENCY_CHANGE:
        return bool((event.detail or {}).get("downgrade"))
    return (
        event.kind == EventKind.UNSUBSCRIBE
        and event.channel == Channel.PREFERENCE_CENTER
        and event.topic_id is not None
    )


def _after_complaint(event: Event) -> bool:
    """Return whether an unsubscribe only follows a spam complaint.

    RATE-FACTS: a complaint is not an unsubscribe in the accounting (it is
    counted as a complaint), though the address must not be mailed again.
    """
    return (event.detail or {}).get("cause") == "complaint"


def count_event(session: Session, event: Event) -> None:
    """Add an event to its campaign's counters (events without a campaign count nowhere)."""
    if event.campaign_id is None:
        return
    column = None
    if _is_save(event):
        column = "saves"
    elif event.kind == EventKind.UNSUBSCRIBE and not _after_complaint(event):
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
        increment(session, CampaignStats, {"campaign_id": event.campaign_id}, {column: 1})


def count_delivery(session: Session, campaign_id: int, count: int) -> None:
    """Add delivered messages to a campaign's counters."""
    increment(session, CampaignStats, {"campaign_id": campaign_id}, {"delivered": count})


def recount(session: Session) -> dict[int, dict[str, int]]:
    """Return every campaign's counters computed afresh from the event log and deliveries."""
    topic_save = and_(
        Event.kind == EventKind.UNSUBSCRIBE.value,
        Event.channel == Channel.PREFERENCE_CENTER.value,
        Event.topic_id.is_not(None),
    )
    downgrade = and_(
        Event.kind == EventKind.FREQUENCY_CHANGE.value,
        Event.detail["downgrade"].as_boolean().is_(True),
    )
    after_complaint = func.coalesce(Event.detail["cause"].as_string(), "") == "complaint"
    lost = and_(Event.kind == EventKind.UNSUBSCRIBE.value, not_(topic_save), not_(after_complaint))

    def total(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rows = session.execute(
        select(
            Event.campaign_id,
            func.count(distinct(case((lost, Event.subscriber_id)))),
            total(Event.kind == EventKind.COMPLAINT.value),
            total(Event.kind == EventKind.BOUNCE.value),
            total(topic_save) + total(downgrade) + total(Event.kind == EventKind.PAUSE.value),
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
    return {
        row.campaign_id: {
            "delivered": row.delivered,
            "unsubscribes": row.unsubscribes,
            "complaints": row.complaints,
            "bounces": row.bounces,
            "saves": row.saves,
            "resubscribes": row.resubscribes,
        }
        for row in session.scalars(select(CampaignStats))
    }
