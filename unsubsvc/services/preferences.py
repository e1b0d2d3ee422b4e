"""The preference center's use cases: frequency, topics, pause, leaving everything, the survey.

Each call writes the change and its events together (the request commits them),
and a call that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.preferences import RecipientState, check_survey, is_downgrade, pause_end
from unsubsvc.db.models import (
    Event,
    Frequency,
    Subscriber,
    Subscription,
    SurveyResponse,
    TopicOptOut,
)
from unsubsvc.services.events import Outcome, Target, record_event
from unsubsvc.services.subscribers import ensure_subscription, opted_out_topic_ids
from unsubsvc.services.unsubscribe import resubscribe as resubscribe_scope
from unsubsvc.services.unsubscribe import unsubscribe as unsubscribe_scope

CENTER = Channel.PREFERENCE_CENTER

# Statements the pages run on every view, built once (only parameters vary).
_OPTED_OUT = select(TopicOptOut.topic_id).where(
    TopicOptOut.subscription_id == bindparam("subscription_id")
)
_SUBSCRIPTION_WITH_OPT_OUTS = (
    select(
        Subscription.subscribed,
        Subscription.frequency_id,
        Subscription.paused_until,
        TopicOptOut.topic_id,
    )
    .select_from(Subscription)
    .outerjoin(TopicOptOut, TopicOptOut.subscription_id == Subscription.id)
    .where(
        Subscription.list_id == bindparam("list_id"),
        Subscription.subscriber_id == bindparam("subscriber_id"),
    )
)
_LAST_UNSUBSCRIBE = (
    select(Event.id, SurveyResponse)
    .select_from(Event)
    .outerjoin(SurveyResponse, SurveyResponse.event_id == Event.id)
    .where(
        Event.subscriber_id == bindparam("subscriber_id"),
        Event.list_id == bindparam("list_id"),
        Event.kind == EventKind.UNSUBSCRIBE.value,
    )
    .order_by(Event.id.desc())
    .limit(1)
)


def stored_state(session: Session, target: Target) -> RecipientState:
    """Return the recipient's stored choices on the target's list, in at most one statement.

    The subscription row comes with the target when its loader found one; then
    only the topic opt-outs are read, and only if the list has topics.
    """
    mailing_list = target.mailing_list
    frequencies = mailing_list.frequencies
    topics = mailing_list.topics
    default_frequency = frequencies[0].slug if frequencies else None
    unsubscribed_all = target.subscriber.unsubscribed_all_at is not None
    subscription = target.subscription
    if subscription is not None:
        subscribed = subscription.subscribed
        frequency_id = subscription.frequency_id
        paused_until = subscription.paused_until
        opted_out = (
            set(session.scalars(_OPTED_OUT, {"subscription_id": subscription.id}))
            if topics
            else set()
        )
    else:
        rows = session.execute(
            _SUBSCRIPTION_WITH_OPT_OUTS,
            {"list_id": mailing_list.id, "subscriber_id": target.subscriber.id},
        ).all()
        if not rows:
            return RecipientState(frequency=default_frequency, unsubscribed_all=unsubscribed_all)
        subscribed, frequency_id, paused_until, _ = rows[0]
        opted_out = {row.topic_id for row in rows if row.topic_id is not None}
    return RecipientState(
        subscribed=subscribed,
        opted_out_topics=frozenset(t.slug for t in topics if t.id in opted_out),
        frequency=next((f.slug for f in frequencies if f.id == frequency_id), default_frequency),
        paused_until=paused_until,
        unsubscribed_all=unsubscribed_all,
    )


def _locked_subscription(session: Session, target: Target, now: datetime) -> Subscription:
    """Return the subscription row, locked until commit so two saves do not interleave."""
    subscription = ensure_subscription(session, target.mailing_list, target.subscriber, now=now)
    locked = session.scalar(
        select(Subscription).where(Subscription.id == subscription.id).with_for_update()
    )
    return locked if locked is not None else subscription


def _frequency_slug(target: Target, subscription: Subscription) -> str | None:
    frequencies = target.mailing_list.frequencies
    for frequency in frequencies:
        if frequency.id == subscription.frequency_id:
            return frequency.slug
    return frequencies[0].slug if frequencies else None


def set_frequency(session: Session, target: Target, slug: str, *, now: datetime) -> Outcome:
    """Receive mail at the cadence ``slug``, one of the list's frequencies."""
    chosen: Frequency | None = next(
        (f for f in target.mailing_list.frequencies if f.slug == slug), None
    )
    if chosen is None:
        raise InvalidInput(f"{target.mailing_list.display_name} has no frequency {slug!r}")
    subscription = _locked_subscription(session, target, now)
    old = _frequency_slug(target, subscription)
    if old == slug:
        return Outcome(False)
    subscription.frequency_id = chosen.id
    subscription.updated_at = now
    order = [f.slug for f in target.mailing_list.frequencies]
    event_id = record_event(
        session,
        target,
        EventKind.FREQUENCY_CHANGE,
        CENTER,
        now,
        {"from": old, "to": slug, "downgrade": is_downgrade(order, old, slug)},
    )
    return Outcome(True, event_id)


def set_topics(
    session: Session, target: Target, wanted: Iterable[str], *, now: datetime
) -> Outcome:
    """Receive exactly the topics in ``wanted``; one event per topic that changes."""
    wanted = set(wanted)
    known = {t.slug for t in target.mailing_list.topics}
    unknown = wanted - known
    if unknown:
        raise InvalidInput(f"unknown topic(s): {', '.join(sorted(unknown))}")
    changed = False
    subscription = _locked_subscription(session, target, now)
    opted_out = opted_out_topic_ids(session, subscription)
    for topic in target.mailing_list.topics:
        topic_target = Target(target.mailing_list, target.subscriber, topic, target.campaign_id)
        if topic.slug in wanted and topic.id in opted_out:
            changed |= resubscribe_scope(session, topic_target, channel=CENTER, now=now).changed
        elif topic.slug not in wanted and topic.id not in opted_out:
            changed |= unsubscribe_scope(session, topic_target, channel=CENTER, now=now).changed
    return Outcome(changed)


def pause(session: Session, target: Target, option: str, *, now: datetime) -> Outcome:
    """Pause mail for one of the offered periods; it resumes by itself when the date passes."""
    until = pause_end(option, now)
    subscription = _locked_subscription(session, target, now)
    subscription.paused_until = until
    subscription.updated_at = now
    event_id = record_event(
        session,
        target,
        EventKind.PAUSE,
        CENTER,
        now,
        {"until": until.isoformat(), "option": option},
    )
    return Outcome(True, event_id)


def resume(session: Session, target: Target, *, now: datetime) -> Outcome:
    """End a pause in force now."""
    subscription = _locked_subscription(session, target, now)
    if subscription.paused_until is None or subscription.paused_until <= now:
        return Outcome(False)
    subscription.paused_until = None
    subscription.updated_at = now
    event_id = record_event(session, target, EventKind.RESUME, CENTER, now)
    return Outcome(True, event_id)


def unsubscribe_all(
    session: Session, target: Target, *, channel: Channel = CENTER, now: datetime
) -> Outcome:
    """Leave every list of this sender, now and later; the event names the list it came from."""
    return _set_unsubscribed_all(session, target, channel, now, leave=True)


def resubscribe_all(
    session: Session,
    target: Target,
    *,
    channel: Channel = CENTER,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Outcome:
    """Undo leaving every list; each list's own choices apply again."""
    return _set_unsubscribed_all(session, target, channel, now, leave=False, detail=detail)


def _set_unsubscribed_all(
    session: Session,
    target: Target,
    channel: Channel,
    now: datetime,
    *,
    leave: bool,
    detail: dict[str, Any] | None = None,
) -> Outcome:
    column = Subscriber.unsubscribed_all_at
    flipped = session.execute(
        update(Subscriber.__table__)  # type: ignore[arg-type]
        .where(
            Subscriber.__table__.c.id == target.subscriber.id,
            column.is_(None) if leave else column.is_not(None),
        )
        .values(unsubscribed_all_at=now if leave else None)
        .returning(Subscriber.__table__.c.id)
    ).first()
    session.expire(target.subscriber)
    if flipped is None:
        return Outcome(False)
    kind = EventKind.UNSUBSCRIBE if leave else EventKind.RESUBSCRIBE
    no_topic = Target(target.mailing_list, target.subscriber, None, target.campaign_id)
    event_id = record_event(
        session, no_topic, kind, channel, now, {"scope": "all", **(detail or {})}
    )
    return Outcome(True, event_id)


@dataclass(frozen=True)
class LastUnsubscribe:
    """The subscriber's newest unsubscribe on a list, and the survey answer given to it."""

    event_id: int
    answer: SurveyResponse | None


def last_unsubscribe(session: Session, target: Target) -> LastUnsubscribe | None:
    """Return the subscriber's newest unsubscribe on this list with its answer (one SELECT)."""
    row = session.execute(
        _LAST_UNSUBSCRIBE,
        {"subscriber_id": target.subscriber.id, "list_id": target.mailing_list.id},
    ).first()
    return LastUnsubscribe(row[0], row[1]) if row is not None else None


def record_survey(
    session: Session, target: Target, reason: str | None, comment: str | None, *, now: datetime
) -> SurveyResponse | None:
    """Attach an exit-survey answer to the newest unsubscribe; answering again replaces it.

    The survey is optional: an empty answer stores nothing (and keeps an earlier one).
    """
    reason, comment = check_survey(reason, comment)
    if reason is None and comment is None:
        return None
    last = last_unsubscribe(session, target)
    if last is None:
        raise NotFound("There is no unsubscribe to give a reason for.")
    answer = last.answer
    if answer is None:
        answer = SurveyResponse(event_id=last.event_id, created_at=now)
        session.add(answer)
    answer.reason = reason
    answer.comment = comment
    return answer
