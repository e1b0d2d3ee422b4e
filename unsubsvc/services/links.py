"""Mint a recipient's signed links and the List-Unsubscribe headers that carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from unsubsvc.core.headers import (
    OneClickHeaders,
    format_header,
    list_unsubscribe_headers,
    mailto_uri,
    preferences_url,
    unsubscribe_url,
)
from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import TokenPayload, TokenSigner
from unsubsvc.db.models import MailingList
from unsubsvc.services.lists import find_topic, get_list
from unsubsvc.services.subscribers import ensure_campaign, ensure_subscriber, ensure_subscription


@dataclass(frozen=True)
class LinkMinter:
    """What minting needs: the signer, the public base URL and the optional mailbox."""

    signer: TokenSigner
    base_url: str
    mailto: str | None = None
    # Worked out once from the fields above, so a recipient costs two HMACs and
    # some string joins; None when the base URL or mailbox cannot go into a
    # header, and links() then raises what list_unsubscribe_headers says.
    _headers: OneClickHeaders | None = field(init=False, repr=False, compare=False)
    _unsubscribe: str = field(init=False, repr=False, compare=False)
    _preferences: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            headers: OneClickHeaders | None = OneClickHeaders(self.base_url, self.mailto)
        except ValueError:
            headers = None
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_unsubscribe", unsubscribe_url(self.base_url, ""))
        object.__setattr__(self, "_preferences", preferences_url(self.base_url, ""))

    def links(self, payload: TokenPayload, *, now: datetime | None = None) -> RecipientLinks:
        """Return the signed links and headers for one recipient's payload (no database)."""
        token, preferences = self.signer.sign_recipient(payload, now=now)
        https = self._unsubscribe + token
        headers: tuple[tuple[str, str], ...]
        if self._headers is not None:
            headers = self._headers.headers(token)
        else:
            mailto = mailto_uri(self.mailto, token) if self.mailto else None
            headers = tuple(list_unsubscribe_headers(https, mailto))  # raises
        return RecipientLinks(token, https, self._preferences + preferences, headers)


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
            [format_header(name, value, linesep=linesep) for name, value in self.headers]
        )


def recipient_links(
    session: Session,
    minter: LinkMinter,
    mailing_list: MailingList | str,
    address: str,
    *,
    now: datetime,
    keyring: Keyring,
    campaign: str | None = None,
    topic: str | None = None,
) -> RecipientLinks:
    """Return the links for ``address`` on a list, recording the recipient if new.

    An address already on the list needs no write, only reads; a new one gets
    a subscriber row with a random public id, which is what the token carries.
    An erased address gets no links and is not stored (AddressErased; ``keyring``
    hashes it for the lookup).
    """
    if isinstance(mailing_list, str):
        mailing_list = get_list(session, mailing_list)
    topic_id = find_topic(mailing_list, topic).id if topic else None
    subscriber = ensure_subscriber(session, address, now=now, keyring=keyring)
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
