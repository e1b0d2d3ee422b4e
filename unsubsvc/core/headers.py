"""The List-Unsubscribe and List-Unsubscribe-Post headers (RFC 2369, RFC 8058).

Header values are built and folded here by hand on purpose: Python's ``email``
package rewrites a long ``List-Unsubscribe`` into an RFC 2047 encoded word,
which mail clients then ignore (RFC 2047 §5: no encoded word in a URI). Lines are folded only after
a comma, never inside ``<...>`` (RFC 2369 §2), and never exceed 998 characters
(RFC 5322 §2.1.1).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
#: RFC 8058 §3.1: the one value List-Unsubscribe-Post may carry.
ONE_CLICK = "List-Unsubscribe=One-Click"

#: RFC 5322 §2.1.1: the hard limit, not counting CRLF.
MAX_LINE_LENGTH = 998
#: RFC 5322 §2.1.1: what a line should not exceed when it can be helped.
RECOMMENDED_LINE_LENGTH = 78

#: A comma between items, not one inside <...>.
_ITEM_SEPARATOR = re.compile(r",(?![^<]*>)")

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
    return f"mailto:{quote(mailbox, safe='@+')}?subject={quote('unsubscribe ' + token)}"


def list_unsubscribe_headers(https_uri: str, mailto: str | None = None) -> list[tuple[str, str]]:
    """Return the two headers, in order, for one recipient.

    RFC 8058 §3.1: exactly one HTTPS URI (listed first, so clients that take
    the first one get the one-click endpoint), optionally a mailto: beside it.
    """
    scheme = urlsplit(https_uri).scheme
    if scheme not in {"https", "http"}:
        raise ValueError(f"the unsubscribe URI must be http(s), not {scheme or 'relative'}")
    uris = [https_uri] + ([mailto] if mailto else [])
    for uri in uris:
        # RFC 2369 §2: the URI sits in <...> and items are comma-separated, so only
        # visible ASCII other than those delimiters may appear (percent-encode the rest).
        if not all(33 <= ord(ch) <= 126 and ch not in "<>," for ch in uri):
            raise ValueError(f"URI cannot go into List-Unsubscribe unescaped: {uri!r}")
    value = ", ".join(f"<{uri}>" for uri in uris)
    return [(LIST_UNSUBSCRIBE, value), (LIST_UNSUBSCRIBE_POST, ONE_CLICK)]


def format_header(
    name: str, value: str, *, max_line_length: int = MAX_LINE_LENGTH, linesep: str = "\r\n"
) -> str:
    """Return ``Name: value`` folded after commas so no line exceeds ``max_line_length``.

    A comma-separated item that cannot fit on a line of its own is left whole
    as long as it fits the RFC 5322 hard limit; beyond that, ValueError.
    """
    items = [item.strip() for item in _ITEM_SEPARATOR.split(value)]
    lines: list[str] = []
    current = f"{name}: {items[0]}"
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
    if any(len(line) > MAX_LINE_LENGTH for line in lines):
        raise ValueError(f"{name} has an item longer than {MAX_LINE_LENGTH} characters")
    return linesep.join(lines)


def _join(base_url: str, path: str, token: str) -> str:
    return base_url.rstrip("/") + path + token
