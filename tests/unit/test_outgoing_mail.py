"""Composing the mail unsubsvc sends itself: headers, encodings, parts, line lengths."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from unsubsvc.core.outgoing_mail import MailContent, compose, domain_of
from unsubsvc.core.smtp_url import parse_smtp_url

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LINK = "https://unsub.example.com/manage/s/" + "x" * 300


def build(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "kind": "manage-link",
        "to": "ann@example.com",
        "subject": "Your sign-in link",
        "text": f"Open this link to manage your mail:\n{LINK}\n",
    }
    fields.update(overrides)
    return compose(
        MailContent(**fields),  # type: ignore[arg-type]
        mail_from="no-reply@mail.example.com",
        default_sender_name="unsubsvc",
        now=NOW,
        message_id_domain="mail.example.com",
    )


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_headers_of_a_plain_message() -> None:
    raw = build()
    message = parse(raw)
    assert message["From"] == "unsubsvc <no-reply@mail.example.com>"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Your sign-in link"
    assert message["Date"] == "Mon, 02 Mar 2026 09:30:00 +0000"
    assert message["Message-ID"].endswith("@mail.example.com>")
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == "en"
    assert message["Auto-Submitted"] == "auto-generated"  # RFC 3834 §5
    assert message.get_content_type() == "text/plain"
    assert LINK in message.get_content()


def test_transactional_mail_carries_no_list_headers() -> None:
    """A mail the person asked for is not list mail: no RFC 2369/8058 headers."""
    raw = build(html="<p>hi</p>")
    message = parse(raw)
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        assert name not in message
    assert b"List-Unsubscribe" not in raw


def test_lines_end_in_crlf_and_stay_short() -> None:
    raw = build(html=f'<p><a href="{LINK}">{LINK}</a></p>', subject="S" * 200)
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78  # RFC 5322 §2.1.1 recommends
    assert LINK in parse(raw).get_body(("html",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sender", "subject", "locale"),
    [
        ("Müller & Söhne", "Ihr Anmeldelink – bitte öffnen", "de"),
        ("Café Français", "Votre lien de connexion", "fr"),
        ("Niño", "Su enlace de acceso ✉", "es"),
    ],
    ids=["de", "fr", "es"],
)
def test_non_ascii_names_and_subjects_are_encoded(sender: str, subject: str, locale: str) -> None:
    raw = build(sender_name=sender, subject=subject, locale=locale, text="Grüße, ¡hola!")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 2047 encoded words, no raw 8-bit headers
    assert b"=?utf-8?" in head
    message = parse(raw)
    assert message["From"].addresses[0].display_name == sender
    assert message["From"].addresses[0].addr_spec == "no-reply@mail.example.com"
    assert message["Subject"] == subject
    assert message["Content-Language"] == locale
    assert message.get_content().splitlines() == ["Grüße, ¡hola!"]


def test_html_makes_a_multipart_alternative_text_first() -> None:
    message = parse(build(html="<p>Open <a href='https://x.example/'>this</a></p>"))
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # RFC 2046 §5.1.4: the preferred one last
    assert message["Content-Language"] == "en"  # on the message, not moved into a part


def test_the_brand_name_replaces_the_default_sender_name() -> None:
    assert parse(build(sender_name="Example News"))["From"] == (
        "Example News <no-reply@mail.example.com>"
    )


def test_message_ids_are_unique() -> None:
    assert parse(build())["Message-ID"] != parse(build())["Message-ID"]


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        compose(
            MailContent("manage-link", "a@example.com", "s", "t"),
            mail_from="a@example.com",
            default_sender_name="x",
            now=datetime(2026, 1, 1),  # noqa: DTZ001
            message_id_domain="example.com",
        )


def test_domain_of() -> None:
    assert domain_of("no-reply@mail.example.com") == "mail.example.com"
    assert domain_of("nobody") == "localhost"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", ("smtp", "127.0.0.1", 2525, None, None)),
        ("smtp://mail.example.com", ("smtp", "mail.example.com", 25, None, None)),
        (
            "smtp+starttls://me%40example.com:p%3Ass%2Fw@mx.example.com",
            ("smtp+starttls", "mx.example.com", 587, "me@example.com", "p:ss/w"),
        ),
        (
            "smtps://u:s3cret@mx.example.com:4465",
            ("smtps", "mx.example.com", 4465, "u", "s3cret"),
        ),
    ],
    ids=["plain", "default-port", "decoded-credentials", "smtps"],
)
def test_smtp_urls(url: str, expected: tuple[object, ...]) -> None:
    target = parse_smtp_url(url)
    assert (target.scheme, target.host, target.port, target.username, target.password) == expected
    assert target.password is None or target.password not in repr(target)
    assert str(target) == f"{target.scheme}://{target.host}:{target.port}"


def test_bad_smtp_url() -> None:
    with pytest.raises(ValueError, match="smtp"):
        parse_smtp_url("http://mail.example.com")
