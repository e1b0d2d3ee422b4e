"""E-mail address checks and the key that matches an address case-insensitively."""

from __future__ import annotations

from unsubsvc.core.errors import InvalidInput

#: RFC 5321 §4.5.3.1.3: a path holds at most 256 octets, so an address at most 254.
MAX_ADDRESS_LENGTH = 254


def normalize_address(address: str) -> str:
    """Return the address as given, trimmed, or raise InvalidInput if it is not one."""
    value = address.strip()
    if not value or len(value) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(f"not an e-mail address: {address!r}")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or "." not in domain.strip(".") or "@" in local:
        raise InvalidInput(f"not an e-mail address: {address!r}")
    if any(ch.isspace() or ord(ch) < 32 or ch in "<>,;" for ch in value):
        raise InvalidInput(f"not an e-mail address: {address!r}")
    return value


def address_key(address: str) -> str:
    """Return the matching key: the whole address, case-folded.

    Local parts are case-sensitive in theory (RFC 5321 §2.4) but not in any
    mailbox provider people use, and a recipient who typed their address with a
    capital letter must not end up subscribed twice.
    """
    return normalize_address(address).casefold()


def mask_address(address: str) -> str:
    """Return the address with most of its local part hidden, for pages a link may be forwarded to.

    ``ann.lee@example.com`` becomes ``a•••••e@example.com``: enough for the owner
    to recognise, too little to harvest.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        return "•" * len(address)
    if len(local) <= 2:
        hidden = local[:1] + "•" * (len(local) - 1)
    else:
        hidden = local[0] + "•" * (len(local) - 2) + local[-1]
    return f"{hidden}@{domain}"
