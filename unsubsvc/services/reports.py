"""Reports over the counters: one row per campaign, plus exit-survey reasons.

Reads ``campaign_stats`` (kept per event) and the deliveries, never the event
log, so a report costs O(campaigns) however many events there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.preferences import SURVEY_REASONS
from unsubsvc.core.reporting import (
    CohortRow,
    TrendPoint,
    band,
    cohorts,
    complaint_level,
    niche_reading,
    rate,
    timing_split,
    trend,
)
from unsubsvc.db.models import (
    Campaign,
    CampaignStats,
    Delivery,
    Event,
    MailingList,
    Subscription,
    SurveyResponse,
    Topic,
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


def list_overview(session: Session) -> list[dict[str, Any]]:
    """Return one row per list: totals over its campaigns, and its latest send's band."""
    rows = campaign_report(session)
    out = []
    for mailing_list in session.scalars(select(MailingList).order_by(MailingList.name)):
        mine = [r for r in rows if r["list"] == mailing_list.name]
        delivered = sum(r["delivered"] for r in mine)
        unsubscribes = sum(r["unsubscribes"] for r in mine)
        complaints = sum(r["complaints"] for r in mine)
        latest = next((r for r in reversed(mine) if r["delivered"]), None)
        out.append(
            {
                "list": mailing_list.name,
                "display_name": mailing_list.display_name,
                "niche": mailing_list.niche,
                "campaigns": len(mine),
                "delivered": delivered,
                "unsubscribes": unsubscribes,
                "unsubscribe_rate": rate(unsubscribes, delivered),
                "band": _value(band(unsubscribes, delivered)),
                "complaints": complaints,
                "complaint_rate": rate(complaints, delivered),
                "complaint_level": _value(complaint_level(complaints, delivered)),
                "saves": sum(r["saves"] for r in mine),
                "latest_campaign": latest["campaign"] if latest else None,
                "latest_band": latest["band"] if latest else None,
            }
        )
    return out


def list_trend(session: Session, list_name: str) -> list[TrendPoint]:
    """Return the list's per-send rates with the rolling four-send average and spike flags."""
    rows = campaign_report(session, list_name=list_name)
    series = [
        (
            r["campaign"],
            datetime.fromisoformat(r["sent_at"]) if r["sent_at"] else None,
            r["unsubscribes"],
            r["delivered"],
        )
        for r in rows
        if r["delivered"]
    ]
    points = trend(series)
    excused = {r["campaign"] for r in rows if r["excuse"]}
    # An admin-marked campaign (a pivot, an acquired list…) raises no alarm.
    return [
        TrendPoint(p.campaign, p.sent_at, p.rate, p.rolling_average, False)
        if p.campaign in excused
        else p
        for p in points
    ]


def _campaign(session: Session, list_name: str, key: str) -> Campaign:
    campaign = session.scalar(
        select(Campaign)
        .join(MailingList, MailingList.id == Campaign.list_id)
        .where(MailingList.name == list_name, Campaign.key == key)
    )
    if campaign is None:
        raise NotFound(f"list {list_name!r} has no campaign {key!r}")
    return campaign


def set_excuse(session: Session, list_name: str, key: str, text: str | None) -> Campaign:
    """Mark a campaign's spike as expected (a pivot, an acquired list…), or clear the mark."""
    if text is not None and (not text.strip() or len(text) > 200):
        raise InvalidInput("an excuse is 1-200 characters")
    campaign = _campaign(session, list_name, key)
    campaign.excuse = text.strip() if text else None
    session.commit()
    return campaign


def campaign_timing(
    session: Session, list_name: str, key: str, *, buckets: int = 12, bucket_minutes: int = 10
) -> dict[str, Any]:
    """Return when a campaign's unsubscribes came after its send: split, hint and histogram."""
    campaign = _campaign(session, list_name, key)
    sent_at = session.scalar(
        select(func.min(Delivery.sent_at)).where(Delivery.campaign_id == campaign.id)
    )
    moments = list(
        session.scalars(
            select(Event.occurred_at).where(
                Event.campaign_id == campaign.id,
                Event.kind == EventKind.UNSUBSCRIBE.value,
                ~((Event.channel == Channel.PREFERENCE_CENTER.value) & Event.topic_id.is_not(None)),
                func.coalesce(Event.detail["cause"].as_string(), "") != "complaint",
            )
        )
    )
    if sent_at is None:
        return {"sent_at": None, "first_hour": None, "later": None, "hint": None, "histogram": []}
    split = timing_split(sent_at, moments)
    histogram = [0] * (buckets + 1)  # the last bucket holds everything after the window
    for moment in moments:
        minutes = (moment - sent_at).total_seconds() / 60
        if minutes < 0:
            continue
        histogram[min(int(minutes // bucket_minutes), buckets)] += 1
    return {
        "sent_at": sent_at.isoformat(),
        "first_hour": split.first_hour,
        "later": split.later,
        "first_hour_share": split.first_hour_share,
        "hint": split.hint,
        "bucket_minutes": bucket_minutes,
        "histogram": histogram,
    }


def cohort_table(session: Session, list_name: str) -> list[CohortRow]:
    """Return the list's unsubscribe rate by signup month, honeymoon against later sends."""
    mailing_list = session.scalar(select(MailingList).where(MailingList.name == list_name))
    if mailing_list is None:
        raise NotFound(f"unknown list {list_name!r}")
    joins = [
        (sid, joined)
        for sid, joined in session.execute(
            select(Subscription.subscriber_id, Subscription.created_at).where(
                Subscription.list_id == mailing_list.id
            )
        )
    ]
    unsubscribes = [
        (sid, moment)
        for sid, moment in session.execute(
            select(Event.subscriber_id, Event.occurred_at).where(
                Event.list_id == mailing_list.id,
                Event.kind == EventKind.UNSUBSCRIBE.value,
                Event.topic_id.is_(None),
            )
        )
        if sid is not None
    ]
    sends = [
        moment
        for moment in session.scalars(
            select(func.min(Delivery.sent_at))
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.list_id == mailing_list.id, Delivery.sent_at.is_not(None))
            .group_by(Delivery.campaign_id)
        )
        if moment is not None
    ]
    return cohorts(joins, unsubscribes, sends)


def survey_comments(
    session: Session,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    reason: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """Return one page of free-text answers, newest first, and how many there are in all."""
    query = (
        select(SurveyResponse, MailingList.name, Campaign.key)
        .join(Event, Event.id == SurveyResponse.event_id)
        .join(MailingList, MailingList.id == Event.list_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .where(SurveyResponse.comment.is_not(None))
    )
    if list_name is not None:
        query = query.where(MailingList.name == list_name)
    if campaign is not None:
        query = query.where(Campaign.key == campaign)
    if reason is not None:
        query = query.where(SurveyResponse.reason == reason)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = max(page, 1)
    rows = session.execute(
        query.order_by(SurveyResponse.created_at.desc(), SurveyResponse.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return (
        [
            {
                "created_at": answer.created_at.isoformat(),
                "list": list_name_,
                "campaign": campaign_key,
                "reason": answer.reason,
                "comment": answer.comment,
            }
            for answer, list_name_, campaign_key in rows
        ],
        int(total),
    )


BREAKDOWNS = ("list", "segment", "source", "topic")


def breakdown(
    session: Session,
    by: str,
    *,
    list_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return unsubscribe and complaint rates grouped by list, segment, source or topic.

    List, segment and source add up the campaign rows (a campaign delivered to
    several segments counts as "mixed"). Topic counts topic-scoped
    unsubscribes (topic links and preference-center opt-outs) against the
    list's deliveries, since every send reaches every topic's readers.
    """
    if by not in BREAKDOWNS:
        raise InvalidInput(f"--by is one of {', '.join(BREAKDOWNS)}")
    rows = campaign_report(session, list_name=list_name, since=since, until=until)
    groups: dict[str, dict[str, int]] = {}
    if by == "topic":
        delivered_by_list: dict[str, int] = {}
        for row in rows:
            delivered_by_list[row["list"]] = (
                delivered_by_list.get(row["list"], 0) + row["delivered"]
            )
        query = (
            select(MailingList.name, Topic.slug, func.count(distinct(Event.subscriber_id)))
            .join(Topic, Topic.id == Event.topic_id)
            .join(MailingList, MailingList.id == Event.list_id)
            .where(Event.kind == EventKind.UNSUBSCRIBE.value)
            .group_by(MailingList.name, Topic.slug)
        )
        if list_name is not None:
            query = query.where(MailingList.name == list_name)
        if since is not None:
            query = query.where(Event.occurred_at >= since)
        if until is not None:
            query = query.where(Event.occurred_at < until)
        for name, slug, count in session.execute(query):
            groups[f"{name}/{slug}"] = {
                "delivered": delivered_by_list.get(name, 0),
                "unsubscribes": int(count),
                "complaints": 0,
                "campaigns": 0,
            }
    else:
        for row in rows:
            key = row[by] or "(none)"
            group = groups.setdefault(
                key, {"delivered": 0, "unsubscribes": 0, "complaints": 0, "campaigns": 0}
            )
            group["delivered"] += row["delivered"]
            group["unsubscribes"] += row["unsubscribes"]
            group["complaints"] += row["complaints"]
            group["campaigns"] += 1
    return [
        {
            by: key,
            **values,
            "unsubscribe_rate": rate(values["unsubscribes"], values["delivered"]),
            "band": _value(band(values["unsubscribes"], values["delivered"])),
            "complaint_rate": rate(values["complaints"], values["delivered"]),
        }
        for key, values in sorted(groups.items())
    ]


TREND_FIELDS: Sequence[str] = (
    "campaign", "sent_at", "unsubscribe_rate", "rolling_average", "well_above_average",
)  # fmt: skip
COHORT_FIELDS: Sequence[str] = (
    "cohort", "members", "honeymoon_unsubscribes", "honeymoon_rate",
    "later_unsubscribes", "later_rate",
)  # fmt: skip
REASON_FIELDS: Sequence[str] = ("reason", "label", "count", "share")


def trend_rows(session: Session, list_name: str) -> list[dict[str, Any]]:
    """Return the list's trend as rows of TREND_FIELDS, for tables and downloads."""
    return [
        {
            "campaign": p.campaign,
            "sent_at": p.sent_at.isoformat() if p.sent_at else None,
            "unsubscribe_rate": p.rate,
            "rolling_average": p.rolling_average,
            "well_above_average": p.well_above_average,
        }
        for p in list_trend(session, list_name)
    ]


def cohort_rows(session: Session, list_name: str) -> list[dict[str, Any]]:
    """Return the list's cohort table as rows of COHORT_FIELDS."""
    return [
        {
            "cohort": c.cohort,
            "members": c.members,
            "honeymoon_unsubscribes": c.honeymoon_unsubscribes,
            "honeymoon_rate": c.honeymoon_rate,
            "later_unsubscribes": c.later_unsubscribes,
            "later_rate": c.later_rate,
        }
        for c in cohort_table(session, list_name)
    ]
