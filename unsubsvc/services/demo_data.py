"""A realistic send history for the demo and the benchmarks, written in bulk.

Subscribers join over a year (so cohorts differ), campaigns go out weekly,
each send loses a plausible share of its audience (industry benchmark ranges, with a
few spikes), most unsubscribes come within hours, some people downgrade or
pause instead, a few complain, and some answer the exit survey. Rows are
inserted with executemany and the report counters are rebuilt from them at
the end, so the result is what the live path would have produced. Nothing is
committed here: the caller's unit of work commits the history with the list.
"""

from __future__ import annotations

import bisect
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.preferences import SURVEY_REASONS
from unsubsvc.db.models import (
    Campaign,
    CampaignStats,
    CampaignUnsubscriber,
    Delivery,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    SurveyResponse,
)
from unsubsvc.services import counters

CHUNK = 5_000


@dataclass(frozen=True)
class HistorySize:
    """How much history was written."""

    subscribers: int
    campaigns: int
    events: int


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _bulk(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(_table(model)), rows[start : start + CHUNK])


def _bulk_ids(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows and return their new ids in the same order (the sequence stays in step)."""
    table = _table(model)
    ids: list[int] = []
    for start in range(0, len(rows), CHUNK):
        result = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            rows[start : start + CHUNK],
        )
        ids.extend(result.scalars())
    return ids


def generate_history(
    session: Session,
    mailing_list: MailingList,
    *,
    campaigns: int,
    recipients: int,
    now: datetime,
    events_per_campaign: int | None = None,
    seed: int = 2026,
) -> HistorySize:
    """Write ``campaigns`` weekly sends to ``recipients`` subscribers on the list."""
    rng = random.Random(seed)  # noqa: S311 - made-up history, not secrets
    start = (now - timedelta(weeks=campaigns + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    joins = sorted(start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds()))
                   for _ in range(recipients))  # fmt: skip
    # Half the list was there before the first send, joining over the year before.
    joins = sorted(start - timedelta(days=rng.uniform(1, 365)) if i < recipients // 2 else j
                   for i, j in enumerate(joins))  # fmt: skip
    tag = secrets.token_hex(3)
    ids = _bulk_ids(
        session,
        Subscriber,
        [
            {
                "public_id": secrets.token_urlsafe(12),
                "email": f"reader{i}.{tag}@example.com",
                "email_key": f"reader{i}.{tag}@example.com",
                "created_at": joined,
            }
            for i, joined in enumerate(joins)
        ],
    )
    _bulk(
        session,
        Subscription,
        [
            {
                "list_id": mailing_list.id,
                "subscriber_id": ids[i],
                "subscribed": True,
                "created_at": joined,
                "updated_at": joined,
            }
            for i, joined in enumerate(joins)
        ],
    )
    topics = [t.id for t in mailing_list.topics]
    sources = ["signup-form", "checkout", "webinar", "import"]
    events: list[dict[str, Any]] = []
    surveys: list[tuple[int, dict[str, Any]]] = []
    gone: set[int] = set()
    campaign_rows: list[dict[str, Any]] = []
    for number in range(campaigns):
        sent_at = start + timedelta(weeks=number, hours=9)
        campaign_rows.append(
            {"list_id": mailing_list.id, "key": f"weekly-{number + 1:04d}", "created_at": sent_at}
        )
    session.execute(insert(_table(Campaign)), campaign_rows)
    campaign_ids = dict(
        session.execute(
            select(Campaign.key, Campaign.id).where(Campaign.list_id == mailing_list.id)
        ).all()
    )
    deliveries = []
    for number, row in enumerate(campaign_rows):
        campaign_id = campaign_ids[row["key"]]
        sent_at = row["created_at"]
        # Everyone who had joined by now (joins are sorted), less those already gone.
        audience = bisect.bisect_right(joins, sent_at)
        # With a fixed number of events per send (benchmarks), people may leave more
        # than once, so the audience is not thinned.
        active = audience if events_per_campaign else audience - len(gone)
        deliveries.append(
            {
                "campaign_id": campaign_id,
                "count": active,
                "sent_at": sent_at,
                "segment": "all",
                "source": sources[number % len(sources)],
                "created_at": sent_at,
            }
        )
        if active <= 0:
            continue
        spike = rng.random() < 0.08
        share = rng.uniform(0.0012, 0.0045) * (3 if spike else 1)
        wanted = events_per_campaign or max(1, round(active * share))
        picks = rng.sample(range(audience), min(wanted, audience))
        for position, sid in enumerate(ids[i] for i in picks):
            minutes = rng.expovariate(1 / (25 if spike else 240))
            moment = sent_at + timedelta(minutes=minutes)
            roll = rng.random()
            base = {
                "occurred_at": moment,
                "subscriber_id": sid,
                "list_id": mailing_list.id,
                "campaign_id": campaign_id,
                "topic_id": None,
                "detail": None,
            }
            if events_per_campaign is None and sid in gone:
                continue
            if roll < 0.12:  # kept: less mail instead of none
                kind = rng.choice([EventKind.PAUSE, EventKind.FREQUENCY_CHANGE])
                detail = (
                    {"until": (moment + timedelta(days=30)).isoformat(), "option": "1m"}
                    if kind is EventKind.PAUSE
                    else {"from": "weekly", "to": "monthly", "downgrade": True}
                )
                events.append(
                    {
                        **base,
                        "kind": kind.value,
                        "channel": Channel.PREFERENCE_CENTER.value,
                        "detail": detail,
                    }
                )  # noqa: E501
                continue
            if roll < 0.16 and topics:
                events.append({**base, "kind": EventKind.UNSUBSCRIBE.value,
                               "channel": Channel.PREFERENCE_CENTER.value,
                               "topic_id": rng.choice(topics)})  # fmt: skip
                continue
            if roll < 0.19:
                events.append(
                    {**base, "kind": EventKind.COMPLAINT.value, "channel": Channel.API.value}
                )
            channel = rng.choice([Channel.ONE_CLICK, Channel.ONE_CLICK, Channel.LANDING_PAGE])
            events.append({**base, "kind": EventKind.UNSUBSCRIBE.value, "channel": channel.value})
            gone.add(sid)
            if position % 4 == 0:
                reason, _label = rng.choice(SURVEY_REASONS)
                surveys.append((len(events) - 1, {"reason": reason, "created_at": moment}))
    _bulk(session, Delivery, deliveries)
    for event, event_id in zip(events, _bulk_ids(session, Event, events), strict=True):
        event["id"] = event_id
    _bulk(
        session,
        SurveyResponse,
        [
            {
                "event_id": events[index]["id"],
                "reason": answer["reason"],
                "comment": "Too much about launches, not enough how-tos."
                if index % 7 == 0
                else None,
                "created_at": answer["created_at"],
            }
            for index, answer in surveys
        ],
    )
    gone_now = list(gone)
    for part in range(0, len(gone_now), CHUNK):
        session.execute(
            _table(Subscription)
            .update()
            .where(
                _table(Subscription).c.list_id == mailing_list.id,
                _table(Subscription).c.subscriber_id.in_(gone_now[part : part + CHUNK]),
            )
            .values(subscribed=False)
        )
    rebuild_counters(session)
    session.flush()
    return HistorySize(recipients, campaigns, len(events))


def rebuild_counters(session: Session) -> None:
    """Replace the report counters with a recount from the event log (after bulk loads)."""
    session.execute(delete(_table(CampaignStats)))
    session.execute(delete(_table(CampaignUnsubscriber)))
    fresh = counters.recount(session)
    _bulk(
        session,
        CampaignStats,
        [{"campaign_id": cid, "shard": 0, **values} for cid, values in fresh.items()],
    )
    pairs = session.execute(
        select(Event.campaign_id, Event.subscriber_id)
        .where(
            counters.lost_unsubscribe_clause(),
            Event.campaign_id.is_not(None),
            Event.subscriber_id.is_not(None),
        )
        .distinct()
    ).all()
    _bulk(session, CampaignUnsubscriber, [{"campaign_id": c, "subscriber_id": s} for c, s in pairs])
