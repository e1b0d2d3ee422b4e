"""Everything held about one address, as typed rows and as one JSON document (a data-rights export).

An answer to "what do you hold about me?" (GDPR art. 15, art. 20): the
subscriber, its standing on each list, every event about it, its survey
answers, and how many webhook deliveries about it are still owed. Only reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.keys import Keyring
from unsubsvc.db.models import (
    Campaign,
    Event,
    Frequency,
    MailingList,
    OutgoingMail,
    Subscriber,
    Subscription,
    SurveyResponse,
    Topic,
    TopicOptOut,
    WebhookDelivery,
)
from unsubsvc.services.erasure import is_erased

#: Bumped when the document's shape changes.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class HeldSubscriber:
    """The subscriber row: the address as first given and the id links carry."""

    address: str
    public_id: str
    created_at: datetime
    unsubscribed_all_at: datetime | None


@dataclass(frozen=True)
class HeldSubscription:
    """The address's standing on one list."""

    list: str
    list_display_name: str
    subscribed: bool
    #: Each topic of the list: whether the address receives it.
    topics: dict[str, bool]
    frequency: str | None
    paused_until: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class HeldEvent:
    """One entry of the event log about the address."""

    kind: str
    channel: str
    occurred_at: datetime
    list: str | None
    topic: str | None
    campaign: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class HeldSurveyAnswer:
    """An exit-survey answer the address gave."""

    list: str | None
    campaign: str | None
    reason: str | None
    comment: str | None
    created_at: datetime


@dataclass(frozen=True)
class HeldOutgoingMail:
    """A message unsubsvc queued or sent to the address (never its body: it held a link)."""

    kind: str
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True)
class RecipientExport:
    """What is held about one address; ``held`` is False when there is nothing."""

    address: str
    erased: bool
    exported_at: datetime
    subscriber: HeldSubscriber | None = None
    subscriptions: list[HeldSubscription] = field(default_factory=list)
    events: list[HeldEvent] = field(default_factory=list)
    survey_answers: list[HeldSurveyAnswer] = field(default_factory=list)
    #: Webhook deliveries about the address not yet accepted by their endpoint.
    pending_webhook_deliveries: int = 0
    #: Mail unsubsvc itself sent or is to send to the address (sign-in links, confirmations).
    outgoing_mail: list[HeldOutgoingMail] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """Say whether anything at all is stored about the address."""
        return self.subscriber is not None


def export_recipient(
    session: Session, keyring: Keyring, email: str, *, now: datetime
) -> RecipientExport:
    """Return everything held about ``email`` (matched case-insensitively)."""
    address = normalize_address(email)
    erased = is_erased(session, keyring, address)
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.email_key == address_key(address))
    )
    if subscriber is None:
        return RecipientExport(address=address, erased=erased, exported_at=now)
    return RecipientExport(
        address=address,
        erased=erased,
        exported_at=now,
        subscriber=HeldSubscriber(
            subscriber.email,
            subscriber.public_id,
            subscriber.created_at,
            subscriber.unsubscribed_all_at,
        ),
        subscriptions=_subscriptions(session, subscriber.id),
        events=_events(session, subscriber.id),
        survey_answers=_survey_answers(session, subscriber.id),
        outgoing_mail=_outgoing_mail(session, subscriber.id),
        pending_webhook_deliveries=int(
            session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(
                    WebhookDelivery.subscriber_id == subscriber.id,
                    WebhookDelivery.delivered_at.is_(None),
                )
            )
            or 0
        ),
    )


def _outgoing_mail(session: Session, subscriber_id: int) -> list[HeldOutgoingMail]:
    rows = session.execute(
        select(
            OutgoingMail.kind, OutgoingMail.created_at, OutgoingMail.sent_at, OutgoingMail.failed_at
        )
        .where(OutgoingMail.subscriber_id == subscriber_id)
        .order_by(OutgoingMail.id)
    )
    return [HeldOutgoingMail(*row) for row in rows]


def _subscriptions(session: Session, subscriber_id: int) -> list[HeldSubscription]:
    rows = session.execute(
        select(Subscription, MailingList, Frequency.slug)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .outerjoin(Frequency, Frequency.id == Subscription.frequency_id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(MailingList.name)
    ).all()
    opted_out: set[tuple[int, int]] = {
        (subscription_id, topic_id)
        for subscription_id, topic_id in session.execute(
            select(TopicOptOut.subscription_id, TopicOptOut.topic_id)
            .join(Subscription, Subscription.id == TopicOptOut.subscription_id)
            .where(Subscription.subscriber_id == subscriber_id)
        )
    }
    out = []
    for subscription, mailing_list, frequency in rows:
        default = mailing_list.frequencies[0].slug if mailing_list.frequencies else None
        out.append(
            HeldSubscription(
                list=mailing_list.name,
                list_display_name=mailing_list.display_name,
                subscribed=subscription.subscribed,
                topics={
                    t.slug: (subscription.id, t.id) not in opted_out for t in mailing_list.topics
                },
                frequency=frequency or default,
                paused_until=subscription.paused_until,
                created_at=subscription.created_at,
                updated_at=subscription.updated_at,
            )
        )
    return out


def _events(session: Session, subscriber_id: int) -> list[HeldEvent]:
    rows = session.execute(
        select(Event, MailingList.name, Topic.slug, Campaign.key)
        .outerjoin(MailingList, MailingList.id == Event.list_id)
        .outerjoin(Topic, Topic.id == Event.topic_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .where(Event.subscriber_id == subscriber_id)
        .order_by(Event.occurred_at, Event.id)
    ).all()
    return [
        HeldEvent(e.kind, e.channel, e.occurred_at, name, slug, key, e.detail)
        for e, name, slug, key in rows
    ]


def _survey_answers(session: Session, subscriber_id: int) -> list[HeldSurveyAnswer]:
    rows = session.execute(
        select(SurveyResponse, MailingList.name, Campaign.key)
        .join(Event, Event.id == SurveyResponse.event_id)
        .outerjoin(MailingList, MailingList.id == Event.list_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .where(Event.subscriber_id == subscriber_id)
        .order_by(SurveyResponse.created_at, SurveyResponse.id)
    ).all()
    return [
        HeldSurveyAnswer(name, key, answer.reason, answer.comment, answer.created_at)
        for answer, name, key in rows
    ]


def export_document(export: RecipientExport) -> dict[str, Any]:
    """Return the export as a JSON-ready object (times in ISO 8601, UTC)."""
    data = _jsonable(asdict(export))
    return {"format": FORMAT_VERSION, "held": export.held, **data}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
