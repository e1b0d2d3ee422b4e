"""``UNSUBSVC_SMTP_URL``: where and how unsubsvc's own mail is sent, parsed once.

``smtp://`` is plain SMTP, ``smtp+starttls://`` requires STARTTLS, ``smtps://`` is TLS
from the start (RFC 8314); user and password, URL-encoded, go before the host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

#: The schemes, with the port each uses when the URL names none.
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, parsed from the URL."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        """Describe the target for logs: no credentials."""
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """Return the target ``url`` names; user and password are URL-decoded."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an SMTP URL is smtp://, smtp+starttls:// or smtps://HOST[:PORT]")
    return SmtpTarget(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
