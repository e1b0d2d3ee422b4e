"""The List-Unsubscribe and List-Unsubscribe-Post headers (RFC 2369, RFC 8058).

Header values are built and folded here by hand on purpose: Python's ``email``
package rewrites a long ``List-Unsubscribe`` into an RFC 2047 encoded word,
which mail clients then ignore (RFC 2047 §5: no encoded word in a URI). Lines are folded only after
a comma, never inside ``<...>`` (RFC 2369 §2), and never exceed 998 characters
(RFC 5322 §2.1.1).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

from unsubsvc.core.errors import InvalidInput

LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
#: RFC 8058 §3.1: the one value List-Unsubscribe-Post may carry.
ONE_CLICK = "List-Unsubscribe=One-Click"
_ONE_CLICK_POST = (LIST_UNSUBSCRIBE_POST, ONE_CLICK)

#: RFC 5322 §2.1.1: the hard limit, not counting CRLF.
MAX_LINE_LENGTH = 998
#: RFC 5322 §2.1.1: what a line should not exceed when it can be helped.
RECOMMENDED_LINE_LENGTH = 78

#: A comma between items, not one inside <...>.
_ITEM_SEPARATOR = re.compile(r",(?![^<]*>)")

#: RFC 2369 §2: a URI sits in <...> and items are comma-separated, so only visible
#: ASCII (33-126) other than "<", ">" and "," may appear; the rest must be percent-encoded.
_HEADER_URI = re.compile(r"[!-+\--;=?-~]*")
#: What ``quote`` leaves as it is (RFC 3986 §2.3 unreserved characters, and "/").
_QUOTE_UNCHANGED = re.compile(r"[A-Za-z0-9_.~/-]*")
#: A token that can follow a checked URI prefix as it is: it needs no escaping in
#: a URI path or a mailto: subject, and cannot break out of <...>.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")

#: Where the one-click endpoint lives under the base URL.
UNSUBSCRIBE_PATH = "/u/"
PREFERENCES_PATH = "/p/"


def unsubscribe_url(base_url: str, token: str) -> str:
    """Return the one-click URI for a token under the service's public base URL."""
    return _join(base_url, UNSUBSCRIBE_PATH, token)


def preferences_url(base_url: str, token: str) -> str:
    """Return the preference-center URI for a preferences token."""
    return _join(base_url, PREFERENCES_PATH, token)


def mailto_uri(mailbox: str, token: str) -> str:
    """Return the ``mailto:`` URI that unsubscribes by mail; the token rides in the subject."""
    subject = f"unsubscribe%20{token}" if _QUOTE_UNCHANGED.fullmatch(token) else _subject(token)
    return f"mailto:{_quote_mailbox(mailbox)}?subject={subject}"


def list_unsubscribe_headers(https_uri: str, mailto: str | None = None) -> list[tuple[str, str]]:
    """Return the two headers, in order, for one recipient.

    RFC 8058 §3.1: exactly one HTTPS URI (listed first, so clients that take
    the first one get the one-click endpoint), optionally a mailto: beside it.
    """
    # RFC 3986 §3.1: the scheme is what precedes the first ":", case-insensitive.
    # urlsplit only when that says no (for the message), or for what it checks
    # beyond the scheme: a bracketed host (RFC 3986 §3.2.2), non-ASCII text.
    scheme, colon, _ = https_uri.partition(":")
    if (
        not colon
        or scheme.lower() not in {"https", "http"}
        or "[" in https_uri
        or "]" in https_uri
        or not https_uri.isascii()
    ):
        scheme = urlsplit(https_uri).scheme
        if scheme not in {"https", "http"}:
            raise ValueError(f"the unsubscribe URI must be http(s), not {scheme or 'relative'}")
    for uri in (https_uri, mailto) if mailto else (https_uri,):
        if _HEADER_URI.fullmatch(uri) is None:
            raise ValueError(f"URI cannot go into List-Unsubscribe unescaped: {uri!r}")
    value = f"<{https_uri}>, <{mailto}>" if mailto else f"<{https_uri}>"
    return [(LIST_UNSUBSCRIBE, value), _ONE_CLICK_POST]


class OneClickHeaders:
    """Build the two headers for many tokens under one base URL and mailbox.

    The URI prefixes are checked once, here, as ``list_unsubscribe_headers``
    checks a whole URI; per token only the token's characters are checked, so a
    recipient's headers cost little more than joining strings. ``headers(token)``
    equals ``list_unsubscribe_headers(unsubscribe_url(base_url, token),
    mailto_uri(mailbox, token))``.
    """

    __slots__ = ("_mailto", "_unsubscribe")

    def __init__(self, base_url: str, mailbox: str | None = None) -> None:
        self._unsubscribe = unsubscribe_url(base_url, "")
        self._mailto = mailto_uri(mailbox, "") if mailbox else None
        # Check the prefixes by the same rules, with a token of the plain alphabet.
        list_unsubscribe_headers(
            self._unsubscribe + "t", self._mailto + "t" if self._mailto else None
        )

    def headers(self, token: str) -> tuple[tuple[str, str], tuple[str, str]]:
        """Return the two headers, in order, for one recipient's unsubscribe token."""
        if _PLAIN_TOKEN.fullmatch(token) is None:
            raise ValueError(f"token cannot follow a URI prefix unescaped: {token!r}")
        if self._mailto is None:
            value = f"<{self._unsubscribe}{token}>"
        else:
            value = f"<{self._unsubscribe}{token}>, <{self._mailto}{token}>"
        return ((LIST_UNSUBSCRIBE, value), _ONE_CLICK_POST)


def format_header(
    name: str, value: str, *, max_line_length: int = MAX_LINE_LENGTH, linesep: str = "\r\n"
) -> str:
    """Return ``Name: value`` folded after commas so no line exceeds ``max_line_length``.

    A comma-separated item that cannot fit on a line of its own is left whole
    as long as it fits the RFC 5322 hard limit; an item too long to follow the
    field name starts on the next line (folding white space may come before a
    field's value, RFC 5322 §3.2.2). An item that cannot fit 998 octets even
    alone is HeaderTooLong.
    """
    if "," in value:
        items = [item.strip() for item in _ITEM_SEPARATOR.split(value)]
    else:
        items = [value.strip()]
    unfolded = f"{name}: {', '.join(items)}"
    if len(unfolded) <= max_line_length and len(unfolded) <= MAX_LINE_LENGTH:
        # It all fits: the loop below would fold nowhere and give this line.
        return unfolded
    # On a line of its own an item takes a leading space, and a comma unless it is the last.
    needs = [len(item) + 1 + (index < len(items) - 1) for index, item in enumerate(items)]
    if max(needs) > MAX_LINE_LENGTH:
        raise HeaderTooLong(
            f"{name} would need a line of {max(needs)} octets for one URI; "
            f"RFC 5322 §2.1.1 allows {MAX_LINE_LENGTH}: use a shorter base URL or mailbox"
        )
    lines: list[str] = []
    current = f"{name}: {items[0]}"
    if len(current) + (1 if len(items) > 1 else 0) > MAX_LINE_LENGTH:
        lines.append(f"{name}:")
        current = f" {items[0]}"
    for index, item in enumerate(items[1:], start=2):
        candidate = f"{current}, {item}"
        # Reserve a character for the comma a later fold would append to this line.
        needed = len(candidate) + (1 if index < len(items) else 0)
        if needed <= max_line_length:
            current = candidate
        else:
            lines.append(current + ",")
            current = f" {item}"
    lines.append(current)
    return linesep.join(lines)


class HeaderTooLong(InvalidInput, ValueError):
    """A header item that no folding can fit into an RFC 5322 line (998 octets)."""


def _join(base_url: str, path: str, token: str) -> str:
    return base_url.rstrip("/") + path + token


@lru_cache(maxsize=64)
def _quote_mailbox(mailbox: str) -> str:
    # Cached: a service mints every mailto: URI for the same one or two mailboxes.
    return quote(mailbox, safe="@+")


def _subject(token: str) -> str:
    return quote("unsubscribe " + token)
