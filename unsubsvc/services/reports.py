"""Reports over the counters: campaigns, lists, groups, trends, cohorts, timing, the survey.

Reads ``campaign_stats`` (kept per event) and the deliveries, never the event
log, so a campaign report costs O(campaigns) however many events there are;
filters (list, campaign, time) are applied in SQL. Every report returns typed
rows (``core.report_rows``, ``core.reporting``), whose fields are the columns
the CLI and the admin console write out through ``core.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, distinct, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.events import EventKind
from unsubsvc.core.preferences import SURVEY_REASONS
from unsubsvc.core.report_rows import (
    BreakdownRow,
    CampaignRow,
    CampaignTiming,
    CommentRow,
    ListOverviewRow,
    ReasonRow,
)
from unsubsvc.core.reporting import (
    ROLLING_WINDOW,
    CohortRow,
    Rates,
    TrendPoint,
    cohorts,
    needs_a_look,
    niche_reading,
    timing_split,
    trend,
)
from unsubsvc.db.models import (
    Campaign,
    Delivery,
    Event,
    MailingList,
    Subscription,
    SurveyResponse,
    Topic,
)
from unsubsvc.services import counters
from unsubsvc.services.counters import lost_unsubscribe_clause

_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _within(
    query: _Query,
    moment: ColumnElement[datetime] | QueryableAttribute[datetime],
    since: datetime | None,
    until: datetime | None,
) -> _Query:
    """Keep rows whose ``moment`` is at or after ``since`` and before ``until`` (each optional)."""
    if since is not None:
        query = query.where(moment >= since)
    if until is not None:
        query = query.where(moment < until)
    return query


def _one_or_mixed(value: str | None, distinct_values: int | None) -> str | None:
    """Return a campaign's one segment (or source), "mixed" if its parts went to several."""
    return "mixed" if (distinct_values or 0) > 1 else value


def campaign_report(
    session: Session,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[CampaignRow]:
    """Return one row per campaign (oldest send first) with rates, bands and counters.

    A campaign's moment is its earliest send time, or when it was first seen if
    no send time was recorded; ``since``/``until`` select on it.
    """
    segment = case((Delivery.segment != "", Delivery.segment))
    source = case((Delivery.source != "", Delivery.source))
    sends = (
        select(
            Delivery.campaign_id,
            func.min(Delivery.sent_at).label("sent_at"),
            func.min(segment).label("segment"),
            func.count(distinct(segment)).label("segments"),
            func.min(source).label("source"),
            func.count(distinct(source)).label("sources"),
        )
        .group_by(Delivery.campaign_id)
        .subquery()
    )
    moment = func.coalesce(sends.c.sent_at, Campaign.created_at)
    sums = counters.totals()
    query = (
        select(
            Campaign,
            MailingList.name,
            MailingList.niche,
            *(func.coalesce(sums.c[c], 0) for c in counters.COUNTER_COLUMNS),
            sends,
        )
        .join(MailingList, MailingList.id == Campaign.list_id)
        .outerjoin(sums, sums.c.campaign_id == Campaign.id)
        .outerjoin(sends, sends.c.campaign_id == Campaign.id)
        .order_by(moment, Campaign.id)
    )
    if list_name is not None:
        query = query.where(MailingList.name == list_name)
    if campaign is not None:
        query = query.where(Campaign.key == campaign)
    rows = []
    width = len(counters.COUNTER_COLUMNS)
    for found, name, niche, *parts in session.execute(_within(query, moment, since, until)):
        delivered, unsubscribes, complaints, bounces, saves, resubscribes = (
            int(n) for n in parts[:width]
        )
        _, sent_at, one_segment, segments, one_source, sources = parts[width:]
        rates = Rates(delivered, unsubscribes, complaints)
        rows.append(
            CampaignRow(
                campaign=found.key,
                list=name,
                rates=rates,
                complaint_level=rates.complaint_level,
                sent_at=sent_at,
                segment=_one_or_mixed(one_segment, segments),
                source=_one_or_mixed(one_source, sources),
                bounces=bounces,
                saves=saves,
                resubscribes=resubscribes,
                excuse=found.excuse,
                benchmark=niche_reading(niche or "", rates.unsubscribe_rate),
            )
        )
    return rows


def find_campaign(session: Session, list_name: str, key: str) -> CampaignRow:
    """Return one campaign's report row; NotFound if the list has no such campaign."""
    for row in campaign_report(session, list_name=list_name, campaign=key):
        return row
    raise NotFound(f"list {list_name!r} has no campaign {key!r}")


def list_overview(
    session: Session, campaigns: Sequence[CampaignRow] | None = None
) -> list[ListOverviewRow]:
    """Return one row per list: totals over its campaigns, and its latest send's band.

    ``campaigns`` is the campaign report over every list, when the caller has it already.
    """
    mine: dict[str, list[CampaignRow]] = {}
    for row in campaign_report(session) if campaigns is None else campaigns:
        mine.setdefault(row.list, []).append(row)
    out = []
    for mailing_list in session.scalars(select(MailingList).order_by(MailingList.name)):
        sends = mine.get(mailing_list.name, [])
        rates = Rates(
            sum(r.rates.delivered for r in sends),
            sum(r.rates.unsubscribes for r in sends),
            sum(r.rates.complaints for r in sends),
        )
        latest = next((r for r in reversed(sends) if r.rates.delivered), None)
        out.append(
            ListOverviewRow(
                list=mailing_list.name,
                display_name=mailing_list.display_name,
                niche=mailing_list.niche,
                campaigns=len(sends),
                rates=rates,
                complaint_level=rates.complaint_level,
                saves=sum(r.saves for r in sends),
                latest_campaign=latest.campaign if latest else None,
                latest_band=latest.rates.band if latest else None,
            )
        )
    return out


def attention(campaigns: Sequence[CampaignRow]) -> list[tuple[str, list[CampaignRow]]]:
    """Return, per list (by name), its recent delivered sends that need a look.

    Recent is the rolling window (the last four sends); what needs a look is
    ``core.reporting.needs_a_look``.
    """
    sends: dict[str, list[CampaignRow]] = {}
    for row in campaigns:
        if row.rates.delivered:
            sends.setdefault(row.list, []).append(row)
    out = []
    for name in sorted(sends):
        alarms = [
            row
            for row in sends[name][-ROLLING_WINDOW:]
            if needs_a_look(row.rates.band, row.complaint_level, excused=bool(row.excuse))
        ]
        if alarms:
            out.append((name, alarms))
    return out


def trend_of(campaigns: Sequence[CampaignRow]) -> list[TrendPoint]:
    """Return one list's per-send rates with the rolling four-send average and spike flags."""
    series = [
        (r.campaign, r.sent_at, r.rates.unsubscribes, r.rates.delivered)
        for r in campaigns
        if r.rates.delivered
    ]
    excused = {r.campaign for r in campaigns if r.excuse}
    # An admin-marked campaign (a pivot, an acquired list…) raises no alarm.
    return [
        replace(p, well_above_average=False) if p.campaign in excused else p for p in trend(series)
    ]


def list_trend(session: Session, list_name: str) -> list[TrendPoint]:
    """Return the list's per-send rates with the rolling four-send average and spike flags."""
    return trend_of(campaign_report(session, list_name=list_name))


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
    session.flush()
    return campaign


def campaign_timing(
    session: Session, list_name: str, key: str, *, buckets: int = 12, bucket_minutes: int = 10
) -> CampaignTiming:
    """Return when a campaign's unsubscribes came after its send: split, hint and histogram."""
    campaign = _campaign(session, list_name, key)
    sent_at = session.scalar(
        select(func.min(Delivery.sent_at)).where(Delivery.campaign_id == campaign.id)
    )
    if sent_at is None:
        return CampaignTiming(None, None, None, None, None, bucket_minutes, ())
    moments = list(
        session.scalars(
            select(Event.occurred_at).where(
                Event.campaign_id == campaign.id, lost_unsubscribe_clause()
            )
        )
    )
    split = timing_split(sent_at, moments)
    histogram = [0] * (buckets + 1)  # the last bucket holds everything after the window
    for moment in moments:
        minutes = (moment - sent_at).total_seconds() / 60
        if minutes < 0:
            continue
        histogram[min(int(minutes // bucket_minutes), buckets)] += 1
    return CampaignTiming(
        sent_at=sent_at,
        first_hour=split.first_hour,
        later=split.later,
        first_hour_share=split.first_hour_share,
        hint=split.hint,
        bucket_minutes=bucket_minutes,
        histogram=tuple(histogram),
    )


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
    # Leaving the whole list, however it happened: a cohort counts members gone.
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


def survey_reasons(
    session: Session,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ReasonRow]:
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
    query = _within(query, SurveyResponse.created_at, since, until)
    counts = {reason: int(n) for reason, n in session.execute(query)}
    total = sum(counts.values())
    labels = [*SURVEY_REASONS, (None, "No reason given (comment only)")]
    return [
        ReasonRow(
            reason=key,
            label=label,
            count=counts.get(key, 0),
            share=round(counts.get(key, 0) / total * 100, 1) if total else None,
        )
        for key, label in labels
    ]


def survey_comments(
    session: Session,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    reason: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[CommentRow], int]:
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
            CommentRow(answer.created_at, name, key, answer.reason, answer.comment)
            for answer, name, key in rows
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
) -> list[BreakdownRow]:
    """Return unsubscribe and complaint rates grouped by list, segment, source or topic.

    List, segment and source add up the campaign rows (a campaign delivered to
    several segments counts as "mixed"). Topic counts topic-scoped
    unsubscribes (topic links and preference-center opt-outs) against the
    list's deliveries, since every send reaches every topic's readers.
    """
    if by not in BREAKDOWNS:
        raise InvalidInput(f"--by is one of {', '.join(BREAKDOWNS)}")
    rows = campaign_report(session, list_name=list_name, since=since, until=until)
    # Per group: campaigns, delivered, unsubscribes, complaints.
    groups: dict[str, tuple[int, int, int, int]] = {}
    if by == "topic":
        delivered_by_list: dict[str, int] = {}
        for row in rows:
            delivered_by_list[row.list] = delivered_by_list.get(row.list, 0) + row.rates.delivered
        query = (
            select(MailingList.name, Topic.slug, func.count(distinct(Event.subscriber_id)))
            .join(Topic, Topic.id == Event.topic_id)
            .join(MailingList, MailingList.id == Event.list_id)
            .where(Event.kind == EventKind.UNSUBSCRIBE.value)
            .group_by(MailingList.name, Topic.slug)
        )
        if list_name is not None:
            query = query.where(MailingList.name == list_name)
        query = _within(query, Event.occurred_at, since, until)
        for name, slug, count in session.execute(query):
            groups[f"{name}/{slug}"] = (0, delivered_by_list.get(name, 0), int(count), 0)
    else:
        for row in rows:
            key = getattr(row, by) or "(none)"
            campaigns, delivered, unsubscribes, complaints = groups.get(key, (0, 0, 0, 0))
            groups[key] = (
                campaigns + 1,
                delivered + row.rates.delivered,
                unsubscribes + row.rates.unsubscribes,
                complaints + row.rates.complaints,
            )
    return [
        BreakdownRow(key, campaigns, Rates(delivered, unsubscribes, complaints))
        for key, (campaigns, delivered, unsubscribes, complaints) in sorted(groups.items())
    ]
