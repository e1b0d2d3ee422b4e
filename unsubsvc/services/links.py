"""Mint a recipient's signed links and the List-Unsubscribe headers that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from unsubsvc.core.headers import (
    format_header,
    list_unsubscribe_headers,
    mailto_uri,
    preferences_url,
    unsubscribe_url,
)
from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner
from unsubsvc.db.models import MailingList
from unsubsvc.services.lists import find_topic, get_list
from unsubsvc.services.subscribers import ensure_campaign, ensure_subscriber, ensure_subscription


@dataclass(frozen=True)
class LinkMinter:
    """What minting needs: the signer, the public base URL and the optional mailbox."""

    signer: TokenSigner
    base_url: str
    mailto: str | None = None

    def links(self, payload: TokenPayload, *, now: datetime | None = None) -> RecipientLinks:
        """Return the signed links and headers for one recipient's payload (no database)."""
        token = self.signer.sign(Purpose.UNSUBSCRIBE, payload, now=now)
        prefs = TokenPayload(payload.list_id, payload.subscriber, campaign_id=payload.campaign_id)
        https = unsubscribe_url(self.base_url, token)
        mailto = mailto_uri(self.mailto, token) if self.mailto else None
        return RecipientLinks(
            token=token,
            unsubscribe_url=https,
            preferences_url=preferences_url(
                self.base_url, self.signer.sign(Purpose.PREFERENCES, prefs, now=now)
            ),
            headers=tuple(list_unsubscribe_headers(https, mailto)),
        )


@dataclass(frozen=True)
class RecipientLinks:
    """A recipient's one-click URI, preference-center URI and the two headers."""

    token: str
    unsubscribe_url: str
    preferences_url: str
    headers: tuple[tuple[str, str], ...]

    def header_lines(self, linesep: str = "\r\n") -> str:
        """Return the headers exactly as they go into a message, without a final newline."""
        return linesep.join(
            format_header(name, value, linesep=linesep) for name, value in self.headers
        )


def recipient_links(
    session: Session,
    minter: LinkMinter,
    mailing_list: MailingList | str,
    address: str,
    *,
    now: datetime,
    campaign: str | None = None,
    topic: str | None = None,
) -> RecipientLinks:
    """Return the links for ``address`` on a list, recording the recipient if new.

    An address already on the list needs no write, only reads; a new one gets
    a subscriber row with a random public id, which is what the token carries.
    """
    if isinstance(mailing_list, str):
        mailing_list = get_list(session, mailing_list)
    topic_id = find_topic(mailing_list, topic).id if topic else None
    subscriber = ensure_subscriber(session, address, now=now)
    ensure_subscription(session, mailing_list, subscriber, now=now)
    campaign_id = ensure_campaign(session, mailing_list, campaign, now=now).id if campaign else None
    session.flush()
    payload = TokenPayload(
        list_id=mailing_list.id,
        subscriber=subscriber.public_id,
        topic_id=topic_id,
        campaign_id=campaign_id,
    )
    return minter.links(payload, now=now)
