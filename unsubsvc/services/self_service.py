"""Self-service by e-mail: mail a sign-in link, follow it once, manage every list of the address.

The flow (``web.manage`` drives it):

1. ``request_link`` looks the address up. Only a known subscriber that was
   not erased gets mail (a ``ManageLink`` with a random nonce, in the outbox);
   for any other address nothing is stored and nothing is sent, and the caller
   answers exactly as it does for a known one, so the form cannot be used to
   learn who is subscribed.
2. ``consume`` records the link's nonce (as a SHA-256, in ``UsedLink``) the
   first time it is followed; a second use raises ``LinkUsed``. The link is a
   credential sitting in a mailbox: single use bounds what a leaked copy does.
3. The followed link becomes a ``ManageSession`` token, reusable until it
   expires, which the page carries in its URL (no cookie).

Resubscribing from the manage page counts as confirmed: following the mailed
link proved the address, so the event records ``confirmed_by: manage-link``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from unsubsvc.core.action_links import ActionLinks, ManageLink, ManageSession, expiry
from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import NotFound, UnsubsvcError
from unsubsvc.core.keys import Keyring
from unsubsvc.core.outgoing_mail import MailContent
from unsubsvc.core.preferences import RecipientState
from unsubsvc.db.models import MailingList, Subscriber, Subscription, UsedLink
from unsubsvc.db.upsert import insert_ignore
from unsubsvc.services import outbox
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.erasure import is_erased
from unsubsvc.services.events import Target
from unsubsvc.services.subscribers import find_subscriber
from unsubsvc.settings import Settings

#: 16 random bytes: a nonce nobody can guess, so a used link cannot be predicted either.
NONCE_BYTES = 16
#: What a resubscribe from the manage page records as its proof of the address.
CONFIRMED_BY = {"confirmed_by": "manage-link"}


class LinkUsed(UnsubsvcError):
    """The sign-in link was already followed once (RFC 9110 §15.5.11: gone for good)."""

    status = 410


@dataclass(frozen=True)
class ListState:
    """One list of the subscriber and the stored choices on it, for the manage page."""

    target: Target
    state: RecipientState

    @property
    def mailing_list(self) -> MailingList:
        return self.target.mailing_list


def manageable_subscriber(session: Session, keyring: Keyring, address: str) -> Subscriber | None:
    """Return the known, not erased subscriber with ``address``, else None."""
    address = normalize_address(address)
    if is_erased(session, keyring, address):
        return None
    return find_subscriber(session, address)


def new_manage_link(subscriber: Subscriber, *, now: datetime, max_age: int) -> ManageLink:
    """Return a fresh single-use sign-in link for ``subscriber``."""
    return ManageLink(
        subscriber=subscriber.public_id,
        nonce=secrets.token_urlsafe(NONCE_BYTES),
        expires_at=expiry(now, max_age),
    )


def request_link(
    session: Session,
    address: str,
    *,
    keyring: Keyring,
    links: ActionLinks,
    settings: Settings,
    now: datetime,
    content_for: Callable[[Subscriber, str], MailContent],
) -> bool:
    """Queue a sign-in link for ``address`` if it is a known subscriber; say whether one was.

    ``content_for(subscriber, token)`` renders the message (templates are the
    web layer's). The caller must answer the same whatever this returns.
    """
    subscriber = manageable_subscriber(session, keyring, address)
    if subscriber is None:
        return False
    link = new_manage_link(subscriber, now=now, max_age=settings.manage_link_max_age)
    content = content_for(subscriber, links.sign(link))
    outbox.enqueue(session, content, settings=settings, now=now, subscriber_id=subscriber.id)
    return True


def nonce_hash(nonce: str) -> str:
    """Return what ``UsedLink`` stores for a nonce."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def is_used(session: Session, link: ManageLink) -> bool:
    """Return whether ``link`` was already followed (reads only: for GET)."""
    return session.get(UsedLink, nonce_hash(link.nonce)) is not None


def consume(session: Session, link: ManageLink, *, now: datetime) -> None:
    """Mark ``link`` used, or raise LinkUsed if it already was (safe against a race)."""
    fresh = insert_ignore(
        session,
        UsedLink,
        {
            "nonce_hash": nonce_hash(link.nonce),
            "used_at": now,
            "expires_at": datetime.fromtimestamp(link.expires_at, UTC),
        },
        conflict_on=["nonce_hash"],
    )
    if not fresh:
        raise LinkUsed("This link was already used. Ask for a new one below.")


def open_session(link: ManageLink, *, now: datetime, max_age: int) -> ManageSession:
    """Return the manage page's own short-lived credential for a followed link."""
    return ManageSession(subscriber=link.subscriber, expires_at=expiry(now, max_age))


def subscriber_of(session: Session, public_id: str) -> Subscriber:
    """Return the subscriber a verified link names, or raise NotFound (erased since)."""
    found = session.scalar(select(Subscriber).where(Subscriber.public_id == public_id))
    if found is None:
        raise NotFound("We have no subscriber for this link.")
    return found


def lists_of(session: Session, subscriber: Subscriber) -> list[ListState]:
    """Return every list the subscriber has a subscription on, by display name."""
    rows = session.execute(
        select(MailingList, Subscription)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == subscriber.id)
        .order_by(MailingList.display_name, MailingList.id)
    ).all()
    out = []
    for mailing_list, subscription in rows:
        target = Target(mailing_list, subscriber, None, None, subscription=subscription)
        out.append(ListState(target, prefs.stored_state(session, target)))
    return out


def list_target(session: Session, subscriber: Subscriber, list_id: int) -> Target:
    """Return the target for one of the subscriber's lists, or raise NotFound."""
    for each in lists_of(session, subscriber):
        if each.mailing_list.id == list_id:
            return each.target
    raise NotFound("This list is not one of yours.")


@dataclass(frozen=True)
class ListChoice:
    """What the manage page's form for one list asks for."""

    subscribed: bool
    topics: Iterable[str] | None = None
    frequency: str | None = None
    #: A ``PAUSE_OPTIONS`` key, ``resume``, or None for no change.
    pause: str | None = None


def apply_choice(session: Session, target: Target, choice: ListChoice, *, now: datetime) -> bool:
    """Store ``choice`` for one list through the preference services; say whether it changed."""
    changed = False
    detail: dict[str, Any] = dict(CONFIRMED_BY)
    if choice.subscribed:
        changed |= svc.resubscribe(
            session, target, channel=prefs.CENTER, now=now, detail=detail
        ).changed
    if choice.subscribed and choice.topics is not None and target.mailing_list.topics:
        changed |= prefs.set_topics(session, target, choice.topics, now=now).changed
    if choice.subscribed and choice.frequency and len(target.mailing_list.frequencies) > 1:
        changed |= prefs.set_frequency(session, target, choice.frequency, now=now).changed
    if choice.subscribed and choice.pause == "resume":
        changed |= prefs.resume(session, target, now=now).changed
    elif choice.subscribed and choice.pause:
        changed |= prefs.pause(session, target, choice.pause, now=now).changed
    if not choice.subscribed:
        changed |= svc.unsubscribe(session, target, channel=prefs.CENTER, now=now).changed
    return changed


def leave_everything(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Leave every list of the sender at once; say whether it changed."""
    lists = lists_of(session, subscriber)
    if not lists:
        return False
    return prefs.unsubscribe_all(session, lists[0].target, now=now).changed


def come_back(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Undo leaving everything (the address is proven by the followed link)."""
    lists = lists_of(session, subscriber)
    if not lists:
        return False
    return prefs.resubscribe_all(session, lists[0].target, now=now).changed
