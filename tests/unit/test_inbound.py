"""Finding the unsubscribe token in a message mailed to the mailto: URI."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from tests.unit.test_pure_core import FORBIDDEN, loaded_after_import
from unsubsvc.core import inbound
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.inbound import MAX_MESSAGE_SIZE, UnreadableMessage, find_token
from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SIGNER = TokenSigner(Keyring(("inbound-test-key",)))
#: Every field filled in: a topic and a campaign.
TOKEN = SIGNER.sign(
    Purpose.UNSUBSCRIBE,
    TokenPayload(list_id=7, subscriber="Xy3_-AbCdEfGh012", topic_id=3, campaign_id=42),
    now=NOW,
)
#: Empty topic and campaign fields: ``..`` in the token, so a local part needs quotes.
BARE = SIGNER.sign(Purpose.UNSUBSCRIBE, TokenPayload(list_id=7, subscriber="Q9x-_zzz"), now=NOW)
HEAD, TAIL = TOKEN[:40], TOKEN[40:]


def message(*headers: str, body: str = "Please take me off this list.\n", eol: str = "\n") -> bytes:
    """Return a message with ``headers`` (given folded with LF) and ``body``, in ``eol`` lines."""
    text = "\n".join(headers) + "\n\n" + body
    return text.replace("\n", eol).encode("utf-8")


def b_words(text: str, split: int) -> str:
    """Return ``text`` as two RFC 2047 B-encoded words on two lines, as clients fold it."""
    raw = text.encode("ascii")
    first, second = (base64.b64encode(part).decode() for part in (raw[:split], raw[split:]))
    return f"=?UTF-8?B?{first}?=\n =?UTF-8?B?{second}?="


def q_word(text: str) -> str:
    """Return ``text`` as one RFC 2047 Q-encoded word (``_`` is a space there, so encode it)."""
    body = "".join(ch if ch.isalnum() or ch in ".-" else f"={ord(ch):02X}" for ch in text)
    return f"=?utf-8?q?{body.replace('=20', '_')}?="


def python_folded() -> bytes:
    """Return a message as Python's own generator folds the long subject (into encoded words)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Ann <ann@example.com>"
    msg["To"] = "unsubscribe@mail.example.com"
    msg["Subject"] = f"Re: unsubscribe {TOKEN} (envoyé depuis mon téléphone)"
    msg.set_content("désabonnez-moi\n")
    return msg.as_bytes()


FOUND: list[Any] = [
    pytest.param(message(f"Subject: unsubscribe {TOKEN}"), TOKEN, id="plain-subject"),
    pytest.param(
        message(f"Subject: {b_words('unsubscribe ' + TOKEN, 30)}"), TOKEN, id="encoded-word-subject"
    ),
    pytest.param(message(f"Subject: {q_word('unsubscribe ' + TOKEN)}"), TOKEN, id="q-encoded"),
    pytest.param(message(f"Subject: Re: unsubscribe {TOKEN}"), TOKEN, id="re-prefix"),
    pytest.param(
        message(f"Subject: [External] Fwd: AW: Unsubscribe {TOKEN}"), TOKEN, id="stacked-prefixes"
    ),
    pytest.param(
        message(f"Subject:   UNSUBSCRIBE  \t {TOKEN}   "), TOKEN, id="case-and-whitespace"
    ),
    pytest.param(
        message(f"Subject: unsubscribe\n {TOKEN}", eol="\r\n"), TOKEN, id="folded-subject"
    ),
    pytest.param(
        message(f"Subject: unsubscribe {HEAD}\n\t{TAIL} thanks"),
        TOKEN,
        id="token-wrapped-by-client",
    ),
    pytest.param(message(f"Subject: Unsubscribe: <{TOKEN}>."), TOKEN, id="punctuation"),
    pytest.param(message(f"Subject: unsubscribe unsubscribe {TOKEN}"), TOKEN, id="keyword-twice"),
    pytest.param(message(f"Subject: {TOKEN}"), TOKEN, id="token-without-keyword"),
    pytest.param(
        message(f"Subject: désinscription / unsubscribe {TOKEN}"), TOKEN, id="utf8-raw-subject"
    ),
    pytest.param(python_folded(), TOKEN, id="python-folded"),
    pytest.param(
        message("Subject: Unsubscribe", f"To: Unsubscribe <unsubscribe+{TOKEN}@mail.example.com>"),
        TOKEN,
        id="plus-address-local-part",
    ),
    pytest.param(
        message("Subject: remove me", f'To: "unsubscribe+{BARE}"@mail.example.com'),
        BARE,
        id="quoted-local-part",
    ),
    pytest.param(
        message(
            f"Delivered-To: unsubscribe+{BARE}@mail.example.com",
            "To: list-owner@example.com",
            "Subject: stop",
        ),
        BARE,
        id="delivered-to",
    ),
    pytest.param(
        message(f"X-Original-To: unsubscribe+{TOKEN}@mail.example.com", "Subject: stop"),
        TOKEN,
        id="x-original-to",
    ),
    pytest.param(
        message(f"Envelope-To: unsubscribe+{TOKEN}@mail.example.com", "Subject: stop"),
        TOKEN,
        id="exim-envelope-to",
    ),
    pytest.param(
        message(
            "From ann@example.com  Mon Mar  2 09:31:07 2026",
            "Return-Path: <ann@example.com>",
            f"Subject: unsubscribe {TOKEN}",
            eol="\r\n",
        ),
        TOKEN,
        id="from-line-and-crlf",
    ),
    pytest.param(
        message(f"Subject: unsubscribe {TOKEN}", f"To: unsubscribe+{BARE}@mail.example.com"),
        TOKEN,
        id="subject-before-address",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), FOUND)
def test_finds_the_token(raw: bytes, expected: str) -> None:
    assert find_token(raw) == expected


NOT_A_MESSAGE = [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b" \r\n\r\n\t", "empty", id="whitespace"),
    pytest.param(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "no headers", id="junk-bytes"
    ),
    pytest.param(b"hello, please unsubscribe me\n", "no headers", id="plain-text"),
    pytest.param(
        message(f"Subject: unsubscribe {TOKEN}", body="x" * MAX_MESSAGE_SIZE),
        "larger than",
        id="oversized",
    ),
    pytest.param(
        message("Subject: unsubscribe", body=f"unsubscribe {TOKEN}\n"),
        "no unsubscribe token",
        id="no-token",
    ),
]


@pytest.mark.parametrize(("raw", "reason"), NOT_A_MESSAGE)
def test_refuses_what_is_no_request(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMessage, match=reason):
        find_token(raw)


def _swap(field: int, value: str) -> str:
    parts = TOKEN.split(".")
    parts[field] = value
    return ".".join(parts)


GARBAGE = [
    pytest.param(TOKEN[:-1], id="signature-short"),
    pytest.param(TOKEN + "A", id="signature-long"),
    pytest.param(_swap(5, "aaTTA"), id="timestamp-short"),
    pytest.param(_swap(0, "2"), id="other-version"),
    pytest.param(_swap(1, "7A"), id="list-id-not-base36"),
    pytest.param(_swap(2, "short"), id="public-id-short"),
    pytest.param(_swap(3, "x" * 14), id="topic-id-too-long"),
    pytest.param("x" + TOKEN, id="glued-to-a-word"),
    pytest.param(TOKEN[:-1] + "а", id="cyrillic-lookalike"),
    pytest.param(TOKEN.replace(".", ":"), id="wrong-separator"),
    pytest.param("1.7.Xy3_-AbCdEfGh012.3.16", id="payload-only"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_token_like_garbage_is_not_a_token(garbage: str) -> None:
    """A string almost shaped like a token, in the subject or an address, never comes out."""
    raw = message(f"Subject: unsubscribe {garbage}", f"To: unsubscribe+{garbage}@example.com")
    with pytest.raises(UnreadableMessage, match="no unsubscribe token"):
        find_token(raw)


def test_a_message_of_exactly_the_limit_is_read() -> None:
    head = message(f"Subject: unsubscribe {TOKEN}", body="")
    assert find_token(head + b"x" * (MAX_MESSAGE_SIZE - len(head))) == TOKEN


def test_plus_address_without_the_domain_is_not_taken() -> None:
    """``+<token>`` must end the local part: the ``@`` comes right after it."""
    raw = message("Subject: hi", f"To: unsubscribe+{TOKEN}x@example.com, +{TOKEN} <a@example.com>")
    with pytest.raises(UnreadableMessage):
        find_token(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: " + b"unsubscribe " * 87_000 + b"\n\n",
        b"Subject: " + b"=?utf-8?q?unsubscribe_1.1.?= " * 35_000 + b"\n\n",
        b"Subject: unsubscribe x\n" * 45_000 + b"\n",
        b"To: " + b"+1.1.aaaaaaaa...aaaaaa." * 45_000 + b"\n\n",
    ],
    ids=["keyword-flood", "encoded-word-flood", "header-flood", "address-flood"],
)
def test_hostile_input_is_refused_quickly(raw: bytes) -> None:
    """A megabyte built to make the search or the stdlib's decoder slow costs well under a second.

    Unbounded, the first of these took over two minutes.
    """
    assert len(raw) <= MAX_MESSAGE_SIZE
    started = time.perf_counter()
    with pytest.raises(UnreadableMessage):
        find_token(raw)
    assert time.perf_counter() - started < 5


def test_a_header_the_parser_chokes_on_is_read_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the stdlib's header parser raise, the raw header is searched instead."""

    def choke(name: str, value: str) -> str:
        raise IndexError("parser bug")

    monkeypatch.setattr(inbound, "_HEADER_FACTORY", choke)
    assert find_token(message(f"Subject: unsubscribe\n {TOKEN}")) == TOKEN


def test_the_error_is_an_invalid_input() -> None:
    """The web and CLI layers map InvalidInput already; UnreadableMessage is one."""
    assert issubclass(UnreadableMessage, InvalidInput)


def test_the_module_is_pure() -> None:
    """Importing the parser loads no web, database or CLI framework."""
    assert loaded_after_import(["unsubsvc.core.inbound"], FORBIDDEN) == []
