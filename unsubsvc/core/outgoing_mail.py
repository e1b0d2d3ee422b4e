"""Mail unsubsvc sends itself: sign-in links and resubscribe confirmations, composed to RFC 5322.

These messages are transactional: the person asked for each one (a sign-in
link from /manage, a confirmation of their own resubscribe). They carry no
``List-Unsubscribe``/``List-Unsubscribe-Post``: RFC 2369 and RFC 8058 describe
leaving a list, and there is no list to leave here. For the same reason they
go even to an address that unsubscribed from everything: suppressing them
would lock that person out of changing their mind (Gmail's and Yahoo's 2024
sender rules likewise exempt transactional mail from one-click unsubscribe).
``Auto-Submitted: auto-generated`` (RFC 3834 §5) keeps auto-responders quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

#: What a use case may send.
KINDS = frozenset({"manage-link", "resubscribe-confirm"})


@dataclass(frozen=True)
class MailContent:
    """What a use case wants to say to one address."""

    kind: str
    to: str
    subject: str
    #: The text/plain body (required: some readers show nothing else).
    text: str
    #: An optional text/html alternative.
    html: str | None = None
    #: The From display name (the list's brand); None: the installation's sender name.
    sender_name: str | None = None
    #: Content-Language (RFC 3282).
    locale: str = "en"


def domain_of(address: str) -> str:
    """Return the domain part of ``address`` (for Message-ID, RFC 5322 §3.6.4)."""
    local, at, domain = address.rpartition("@")
    return domain if at and domain else "localhost"


def compose(
    content: MailContent,
    *,
    mail_from: str,
    default_sender_name: str,
    now: datetime,
    message_id_domain: str,
) -> bytes:
    """Return the whole message for ``content`` as it goes on the wire (CRLF line ends).

    ``policy.SMTP`` folds headers at 78 characters and encodes non-ASCII display
    names and subjects as RFC 2047 encoded words; the bodies get a transfer
    encoding that keeps every line within RFC 5322's 998-character limit.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    message = EmailMessage(policy=policy.SMTP)
    local, _, domain = mail_from.rpartition("@")
    message["From"] = Address(
        display_name=content.sender_name or default_sender_name, username=local, domain=domain
    )
    message["To"] = content.to
    message["Subject"] = content.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=message_id_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(content.text, subtype="plain", charset="utf-8")
    if content.html is not None:
        message.add_alternative(content.html, subtype="html", charset="utf-8")
    # After the bodies: making the multipart moves Content-* headers into the first part.
    message["Content-Language"] = content.locale
    return message.as_bytes(policy=policy.SMTP)
