"""A recipient's state on a list, as senders and the CLI read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.keys import Keyring
from unsubsvc.core.preferences import RecipientState
from unsubsvc.core.suppression import BOUNCED
from unsubsvc.db.models import Frequency, MailingList, Subscriber
from unsubsvc.services.erasure import is_erased
from unsubsvc.services.lists import get_list
from unsubsvc.services.subscribers import find_subscriber, find_subscription, opted_out_topic_ids


def recipient_state(
    session: Session, mailing_list: MailingList, subscriber: Subscriber | None
) -> RecipientState:
    """Return the stored choices of a subscriber on a list; defaults for one never seen."""
    default_frequency = mailing_list.frequencies[0].slug if mailing_list.frequencies else None
    subscription = (
        find_subscription(session, mailing_list, subscriber) if subscriber is not None else None
    )
    unsubscribed_all = subscriber is not None and subscriber.unsubscribed_all_at is not None
    if subscription is None:
        return RecipientState(frequency=default_frequency, unsubscribed_all=unsubscribed_all)
    opted_out = opted_out_topic_ids(session, subscription)
    frequency = default_frequency
    if subscription.frequency_id is not None:
        chosen = session.get(Frequency, subscription.frequency_id)
        frequency = chosen.slug if chosen is not None else default_frequency
    return RecipientState(
        subscribed=subscription.subscribed,
        opted_out_topics=frozenset(t.slug for t in mailing_list.topics if t.id in opted_out),
        frequency=frequency,
        paused_until=subscription.paused_until,
        unsubscribed_all=unsubscribed_all,
        bounced=subscription.bounced_at is not None,
    )


def status_document(
    session: Session, list_name: str, address: str, *, now: datetime, keyring: Keyring
) -> dict[str, Any]:
    """Return the contract's status JSON object for an address on a list.

    ``suppressed`` (``"bounced"``) is there only while bounces suppress the address.
    Only reads: an address never seen gets the defaults without a row being
    made, and an erased one (looked up by ``keyring``'s keyed hash) reads as
    not subscribed to anything.
    """
    mailing_list = get_list(session, list_name)
    if is_erased(session, keyring, address):
        return {
            "list": mailing_list.name,
            "email": normalize_address(address),
            "subscribed": False,
            "topics": {t.slug: False for t in mailing_list.topics},
            "frequency": None,
            "paused_until": None,
        }
    subscriber = find_subscriber(session, address)
    state = recipient_state(session, mailing_list, subscriber)
    paused_until = state.active_pause(now)
    document: dict[str, Any] = {
        "list": mailing_list.name,
        "email": subscriber.email if subscriber is not None else normalize_address(address),
        "subscribed": state.receives_mail,
        "topics": state.topic_choices([t.slug for t in mailing_list.topics]),
        "frequency": state.frequency,
        "paused_until": paused_until.isoformat() if paused_until is not None else None,
    }
    if state.bounced:
        # Mail stops though the recipient did not choose it (``core.suppression``).
        document["suppressed"] = BOUNCED
    return document
