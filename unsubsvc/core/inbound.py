"""Find the unsubscribe token in a message someone mailed to the ``mailto:`` URI.

The ``mailto:`` URI beside the one-click link (RFC 2369 §3.2, RFC 8058 §3.1)
carries the token in its subject as ``unsubscribe <token>``; a mail client that
follows it sends a message whose Subject we read here. Mail clients add
``Re:``/``Fwd:``/``[External]`` prefixes, fold the long line (RFC 5322 §2.2.3)
or turn it into RFC 2047 encoded words, split across several. An MTA set up
for plus-addressing can instead deliver ``<anything>+<token>@domain``, which
shows in ``Delivered-To``/``X-Original-To``/``Envelope-To`` or ``To``.

Nothing here verifies a token: this only finds a string shaped exactly like
one, so that arbitrary text never reaches the verifier.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.tokens import MAX_TOKEN_LENGTH

#: A request to unsubscribe is a few kilobytes; refuse more to protect the MTA pipe.
MAX_MESSAGE_SIZE = 1024 * 1024

#: The word a ``mailto:`` subject starts with (``unsubsvc.core.headers.mailto_uri``).
KEYWORD = "unsubscribe"

#: Headers an MTA writes with the envelope recipient, then the one the sender wrote.
ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")

# ``1.<list>.<public id>.<topic>.<campaign>.<timestamp>.<signature>`` as
# unsubsvc.core.tokens writes it: ids in base36, a public id of URL-safe base64,
# a 4-byte timestamp (6 characters) and an HMAC-SHA256 (43 characters).
_SHAPE = (
    r"1\.[0-9a-z]{1,13}\.[A-Za-z0-9_-]{8,64}\.[0-9a-z]{0,13}\.[0-9a-z]{0,13}"
    r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{43}"
)
_SHAPE_CHAR = r"[A-Za-z0-9_.-]"
_WHOLE_TOKEN = re.compile(_SHAPE, re.ASCII)
#: A token standing on its own, not the middle of a longer run of token characters.
_BOUNDED_TOKEN = re.compile(rf"(?<!{_SHAPE_CHAR})({_SHAPE})(?!{_SHAPE_CHAR})", re.ASCII)
#: ``+<token>@`` in a local part, quoted or not (a token with an empty field has ``..``,
#: which RFC 5322 §3.4.1 allows only inside a quoted local part).
_PLUS_TOKEN = re.compile(rf"\+({_SHAPE})\"?@", re.ASCII)
_KEYWORD = re.compile(rf"(?<![a-z]){KEYWORD}(?![a-z])", re.ASCII | re.IGNORECASE)
#: What people and clients put around a token: brackets, quotes, trailing full stops.
_PUNCTUATION = "<>()[]{}\"'`,;:."
#: How many ``unsubscribe`` words in a subject to look behind, and how far.
_MAX_KEYWORDS = 8
_WINDOW = 4 * MAX_TOKEN_LENGTH
#: How much of a header to decode: a subject is a line or two, and the stdlib's decoder
#: takes seconds on a header of a megabyte.
_MAX_HEADER = 16 * 1024
#: How many copies of one header to read: one Subject, a Delivered-To per hop.
_MAX_COPIES = 8
_PARSER = BytesParser(policy=policy.default)
_HEADER_FACTORY = policy.default.header_factory


class UnreadableMessage(InvalidInput):
    """The input is not a mail message, or it carries no unsubscribe token."""


def find_token(message: bytes) -> str:
    """Return the unsubscribe token a mailed request carries, or raise UnreadableMessage."""
    if len(message) > MAX_MESSAGE_SIZE:
        raise UnreadableMessage(f"the message is larger than {MAX_MESSAGE_SIZE} bytes")
    if not message.strip():
        raise UnreadableMessage("the message is empty")
    parsed = _PARSER.parsebytes(message, headersonly=True)
    if not parsed.keys():
        raise UnreadableMessage("the input is not a mail message: it has no headers")
    # The subject first: that is where the mailto: URI puts the token.
    for subject in _decoded_values(parsed, "Subject"):
        token = _token_in_subject(subject)
        if token is not None:
            return token
    for name in ADDRESS_HEADERS:
        for value in _raw_values(parsed, name):
            found = _PLUS_TOKEN.search(value)
            if found is not None:
                return found.group(1)
    raise UnreadableMessage("the message carries no unsubscribe token")


def _token_in_subject(subject: str) -> str | None:
    """Return the token in a decoded subject, healing a token a client broke with spaces."""
    # Bounded work per keyword and in all, so a subject of a megabyte of keywords stays linear.
    for keyword in itertools.islice(_KEYWORD.finditer(subject), _MAX_KEYWORDS):
        words = subject[keyword.end() : keyword.end() + _WINDOW].split()
        candidate = ""
        for word in words:
            candidate += word
            if _WHOLE_TOKEN.fullmatch(candidate.strip(_PUNCTUATION)):
                return candidate.strip(_PUNCTUATION)
    found = _BOUNDED_TOKEN.search(subject)
    return found.group(1) if found is not None else None


def _decoded_values(message: Message, name: str) -> Iterator[str]:
    """Yield each ``name`` header decoded (RFC 2047) and unfolded, up to ``_MAX_HEADER``."""
    for raw in _raw_values(message, name):
        try:
            yield str(_HEADER_FACTORY(name, raw[:_MAX_HEADER]))
        except Exception:  # a parser bug on hostile input: the raw text may still hold a token
            yield raw


def _raw_values(message: Message, name: str) -> Iterator[str]:
    """Yield the first few ``name`` headers' values as they arrived, unfolded (RFC 5322 §2.2.3)."""
    values = (value for key, value in message.raw_items() if key.lower() == name.lower())
    for value in itertools.islice(values, _MAX_COPIES):
        yield re.sub(r"\r?\n(?=[ \t])", "", str(value)).strip()
