"""Erasing one address, and keeping it suppressed: erased addresses live on only as keyed hashes.

What erasure removes and what it keeps, and why:

- The subscriber row (the address itself), its subscriptions and topic opt-outs,
  and its ``campaign_unsubscriber`` rows: deleted. They say who someone is and
  what they chose; nothing about them is needed once the address is gone.
- Events: kept, as anonymous rows (``subscriber_id`` NULL, ``detail`` reduced
  to the few coded values reports count, free text such as a resubscribe's
  reason dropped). Reports count unsubscribes, complaints and saves per list,
  topic and campaign from these rows; deleting them would rewrite a sender's
  history every time someone exercised a right. An event without a subscriber
  names no one.
- Survey answers: the reason stays (reports total the reasons), the comment
  (free text that may name the person, or hold the address) is deleted.
- Webhook outbox rows of the subscriber (delivered or not) and their attempts:
  deleted. A payload is the address by design (``services.events``); a payload
  without it tells a receiver nothing it could act on.
- Running counters (``campaign_stats``): kept unchanged; they hold counts only.
- The audit log already names recipients by keyed hash, never by address.

Then the keyed hash of the address is recorded (``ErasedAddress``), also for an
address never seen, so that minting, imports, status and eligibility answers
keep it suppressed without storing it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Text, cast, delete, func, inspect, select, update
from sqlalchemy.orm import Session

from unsubsvc.core.addresses import address_key
from unsubsvc.core.errors import Conflict
from unsubsvc.core.keys import Keyring
from unsubsvc.db.models import (
    CampaignUnsubscriber,
    ErasedAddress,
    Event,
    OutgoingMail,
    Subscriber,
    Subscription,
    SurveyResponse,
    TopicOptOut,
    WebhookAttempt,
    WebhookDelivery,
)
from unsubsvc.db.upsert import insert_ignore

#: Hashes per lookup statement: well inside both databases' parameter limits.
_CHUNK = 500
#: Event detail keys whose values are coded (slugs, booleans, times), which reports and
#: the suppression feed read; anything else (free text, raw provider payloads) is dropped.
KEPT_DETAIL_KEYS = frozenset(
    {"scope", "cause", "type", "downgrade", "from", "to", "until", "option"}
)

T = TypeVar("T")


class AddressErased(Conflict):
    """The address was erased at its owner's request: it may not be stored or mailed again."""

    def __init__(self) -> None:
        super().__init__(
            "this address was erased at its owner's request: it may not be mailed, "
            "and nothing about it is stored again"
        )


@dataclass(frozen=True)
class ErasureSummary:
    """What one erasure removed; counts only, so it can be printed and audited."""

    address_hash: str
    #: Whether the address was already erased before this call.
    already_erased: bool
    #: Whether a subscriber row held the address.
    subscriber_found: bool
    subscriptions: int = 0
    topic_opt_outs: int = 0
    campaign_unsubscribers: int = 0
    events_anonymized: int = 0
    survey_comments_removed: int = 0
    webhook_deliveries_deleted: int = 0
    #: Mail unsubsvc was to send or sent to the address (its outbox rows).
    outgoing_mail_deleted: int = 0


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def erased_keys(session: Session, keyring: Keyring, email_keys: Iterable[str]) -> set[str]:
    """Return which of these case-folded addresses were erased (under any configured key).

    One indexed lookup per chunk of 500 addresses (times the number of keys while
    a secret is being rotated), whatever the chunk holds.
    """
    by_hash: dict[str, str] = {}
    for key in email_keys:
        for digest in keyring.address_hashes(key):
            by_hash[digest] = key
    found: set[str] = set()
    for part in _chunks(list(by_hash)):
        rows = session.scalars(
            select(ErasedAddress.address_hash).where(ErasedAddress.address_hash.in_(part))
        )
        found.update(by_hash[digest] for digest in rows)
    return found


def is_erased(session: Session, keyring: Keyring, address: str) -> bool:
    """Return whether ``address`` (any case) was erased."""
    key = address_key(address)
    return bool(erased_keys(session, keyring, [key]))


def refuse_if_erased(session: Session, keyring: Keyring, address: str) -> None:
    """Raise AddressErased if ``address`` was erased."""
    if is_erased(session, keyring, address):
        raise AddressErased()


def scrub_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return an event's detail without anything that could name a person."""
    if not detail:
        return None
    kept = {
        key: value
        for key, value in detail.items()
        if key in KEPT_DETAIL_KEYS
        and (value is None or isinstance(value, bool | int | float) or _coded(value))
    }
    return kept or None


def _coded(value: object) -> bool:
    """Say whether a string looks like a slug or a timestamp rather than free text."""
    return isinstance(value, str) and len(value) <= 64 and "@" not in value and " " not in value


def erase(session: Session, keyring: Keyring, email: str, *, now: datetime) -> ErasureSummary:
    """Remove everything held about ``email`` and keep it suppressed by keyed hash; idempotent."""
    key = address_key(email)
    digest = keyring.address_hash(key)
    already = bool(erased_keys(session, keyring, [key]))
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email_key == key))
    counts: dict[str, int] = {}
    if subscriber_id is not None:
        counts = _remove_subscriber(session, subscriber_id)
    counts["events_anonymized"] = counts.get("events_anonymized", 0) + _scrub_anonymous(
        session, key
    )
    # Queued mail holds the address and a link; it is not sent after an erasure.
    counts["outgoing_mail_deleted"] = counts.get("outgoing_mail_deleted", 0) + _rowcount(
        session.execute(
            delete(OutgoingMail).where(func.lower(OutgoingMail.recipient) == key),
            execution_options={"synchronize_session": False},
        )
    )
    # The current key's hash, even when an older key's is there: lookups stay one probe.
    insert_ignore(
        session,
        ErasedAddress,
        {"address_hash": digest, "erased_at": now},
        conflict_on=["address_hash"],
    )
    session.flush()
    return ErasureSummary(
        address_hash=digest,
        already_erased=already,
        subscriber_found=subscriber_id is not None,
        **counts,
    )


def _remove_subscriber(session: Session, subscriber_id: int) -> dict[str, int]:
    """Delete the subscriber's rows and anonymize its events; return what each step touched."""
    session.flush()
    subscriptions = select(Subscription.id).where(Subscription.subscriber_id == subscriber_id)
    events = select(Event.id).where(Event.subscriber_id == subscriber_id)
    deliveries = select(WebhookDelivery.id).where(
        (WebhookDelivery.subscriber_id == subscriber_id) | WebhookDelivery.event_id.in_(events)
    )
    sync = {"synchronize_session": False}
    counts: dict[str, int] = {}
    subscription_ids = set(session.scalars(subscriptions))
    counts["outgoing_mail_deleted"] = _rowcount(
        session.execute(
            delete(OutgoingMail).where(OutgoingMail.subscriber_id == subscriber_id),
            execution_options=sync,
        )
    )
    session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)),
        execution_options=sync,
    )
    counts["webhook_deliveries_deleted"] = _rowcount(
        session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(deliveries)),
            execution_options=sync,
        )
    )
    counts["survey_comments_removed"] = _rowcount(
        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.event_id.in_(events), SurveyResponse.comment.is_not(None))
            .values(comment=None),
            execution_options=sync,
        )
    )
    for event_id, detail in session.execute(
        select(Event.id, Event.detail).where(
            Event.subscriber_id == subscriber_id, Event.detail.is_not(None)
        )
    ).all():
        scrubbed = scrub_detail(detail)
        if scrubbed != detail:
            session.execute(
                update(Event).where(Event.id == event_id).values(detail=scrubbed),
                execution_options=sync,
            )
    counts["events_anonymized"] = _rowcount(
        session.execute(
            update(Event).where(Event.subscriber_id == subscriber_id).values(subscriber_id=None),
            execution_options=sync,
        )
    )
    counts["campaign_unsubscribers"] = _rowcount(
        session.execute(
            delete(CampaignUnsubscriber).where(CampaignUnsubscriber.subscriber_id == subscriber_id),
            execution_options=sync,
        )
    )
    counts["topic_opt_outs"] = _rowcount(
        session.execute(
            delete(TopicOptOut).where(TopicOptOut.subscription_id.in_(subscriptions)),
            execution_options=sync,
        )
    )
    counts["subscriptions"] = _rowcount(
        session.execute(
            delete(Subscription).where(Subscription.subscriber_id == subscriber_id),
            execution_options=sync,
        )
    )
    session.execute(
        delete(Subscriber).where(Subscriber.id == subscriber_id), execution_options=sync
    )
    # Objects of the deleted rows that this session may hold must not be written back.
    gone: set[tuple[type[Any], Any]] = {(Subscriber, (subscriber_id,))}
    gone |= {(Subscription, (sid,)) for sid in subscription_ids}
    for obj in list(session.identity_map.values()):
        state = inspect(obj)
        if (type(obj), state.identity) in gone or (
            isinstance(obj, TopicOptOut) and state.dict.get("subscription_id") in subscription_ids
        ):
            session.expunge(obj)
    return counts


def _scrub_anonymous(session: Session, key: str) -> int:
    """Scrub events and outbox rows that name no subscriber but whose text holds the address.

    Providers' reports about addresses never seen (a bounce, say) may carry the
    address in their detail. A scan, but erasures are rare and this one reads
    only rows without a subscriber.
    """
    changed = 0
    holds = func.lower(cast(Event.detail, Text)).contains(key, autoescape=True)
    for event_id, detail in session.execute(
        select(Event.id, Event.detail).where(
            Event.subscriber_id.is_(None), Event.detail.is_not(None), holds
        )
    ).all():
        session.execute(
            update(Event).where(Event.id == event_id).values(detail=scrub_detail(detail)),
            execution_options={"synchronize_session": False},
        )
        changed += 1
    owed = select(WebhookDelivery.id).where(
        WebhookDelivery.subscriber_id.is_(None),
        func.lower(WebhookDelivery.payload).contains(key, autoescape=True),
    )
    session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(owed)),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.id.in_(owed)),
        execution_options={"synchronize_session": False},
    )
    return changed


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
