"""Reports over the counters: one row per campaign, plus exit-survey reasons.

Reads ``campaign_stats`` (kept per event) and the deliveries, never the event
log, so a report costs O(campaigns) however many events there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from unsubsvc.core.preferences import SURVEY_REASONS
from unsubsvc.core.reporting import band, complaint_level, niche_reading, rate
from unsubsvc.db.models import (
    Campaign,
    CampaignStats,
    Delivery,
    Event,
    MailingList,
    SurveyResponse,
)

#: The columns of a campaign report, in order (the contract's fields first).
CAMPAIGN_FIELDS: Sequence[str] = (
    "campaign",
    "list",
    "delivered",
    "unsubscribes",
    "unsubscribe_rate",
    "band",
    "complaints",
    "complaint_rate",
    "complaint_level",
    "sent_at",
    "segment",
    "source",
    "bounces",
    "saves",
    "resubscribes",
    "excuse",
    "benchmark",
)


def _one_or_mixed(values: list[str | None]) -> str | None:
    distinct = {v for v in values if v}
    if not distinct:
        return None
    return distinct.pop() if len(distinct) == 1 else "mixed"


def campaign_report(
    session: Session,
    *,
    list_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return one row per campaign (oldest send first) with rates, bands and counters."""
    query = (
        select(Campaign, MailingList, CampaignStats)
        .join(MailingList, MailingList.id == Campaign.list_id)
        .outerjoin(CampaignStats, CampaignStats.campaign_id == Campaign.id)
    )
    if list_name is not None:
        query = query.where(MailingList.name == list_name)
    rows = session.execute(query).all()
    parts: dict[int, list[Delivery]] = {}
    ids = [campaign.id for campaign, _, _ in rows]
    for start in range(0, len(ids), 500):
        for delivery in session.scalars(
            select(Delivery).where(Delivery.campaign_id.in_(ids[start : start + 500]))
        ):
            parts.setdefault(delivery.campaign_id, []).append(delivery)
    ordered: list[tuple[tuple[datetime, int], dict[str, Any]]] = []
    for campaign, mailing_list, stats in rows:
        deliveries = parts.get(campaign.id, [])
        sent_times = [d.sent_at for d in deliveries if d.sent_at is not None]
        sent_at = min(sent_times) if sent_times else None
        moment = sent_at or campaign.created_at
        if (since is not None and moment < since) or (until is not None and moment >= until):
            continue
        delivered = stats.delivered if stats else 0
        unsubscribes = stats.unsubscribes if stats else 0
        complaints = stats.complaints if stats else 0
        unsubscribe_rate = rate(unsubscribes, delivered)
        ordered.append(
            (
                (moment, campaign.id),
                {
                    "campaign": campaign.key,
                    "list": mailing_list.name,
                    "delivered": delivered,
                    "unsubscribes": unsubscribes,
                    "unsubscribe_rate": unsubscribe_rate,
                    "band": _value(band(unsubscribes, delivered)),
                    "complaints": complaints,
                    "complaint_rate": rate(complaints, delivered),
                    "complaint_level": _value(complaint_level(complaints, delivered)),
                    "sent_at": sent_at.isoformat() if sent_at else None,
                    "segment": _one_or_mixed([d.segment for d in deliveries]),
                    "source": _one_or_mixed([d.source for d in deliveries]),
                    "bounces": stats.bounces if stats else 0,
                    "saves": stats.saves if stats else 0,
                    "resubscribes": stats.resubscribes if stats else 0,
                    "excuse": campaign.excuse,
                    "benchmark": niche_reading(mailing_list.niche or "", unsubscribe_rate),
                },
            )
        )
    ordered.sort(key=lambda pair: pair[0])
    return [row for _, row in ordered]


def _value(member: Any) -> str | None:
    return None if member is None else str(member.value)


def survey_reasons(
    session: Session,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return how often each exit-survey reason was given, in the offered order."""
    query = (
        select(SurveyResponse.reason, func.count())
        .join(Event, Event.id == SurveyResponse.event_id)
        .join(MailingList, MailingList.id == Event.list_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .group_by(SurveyResponse.reason)
    )
    if list_name is not None:
        query = query.where(MailingList.name == list_name)
    if campaign is not None:
        query = query.where(Campaign.key == campaign)
    if since is not None:
        query = query.where(SurveyResponse.created_at >= since)
    if until is not None:
        query = query.where(SurveyResponse.created_at < until)
    counts = {reason: int(n) for reason, n in session.execute(query)}
    total = sum(counts.values())
    labels = [*SURVEY_REASONS, (None, "No reason given (comment only)")]
    return [
        {
            "reason": key,
            "label": label,
            "count": counts.get(key, 0),
            "share": round(counts.get(key, 0) / total * 100, 1) if total else None,
        }
        for key, label in labels
    ]
