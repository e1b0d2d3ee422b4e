"""The message checker: each RFC 8058 rule as a named check (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest

from unsubsvc.core import dkim_signing as ds
from unsubsvc.core.headers import ONE_CLICK
from unsubsvc.core.message_check import Report, Status, check_message

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (ROOT / "tests" / "data" / "message.eml").read_bytes()
DOMAIN = "example.com"
URI = "https://unsub.example.com/u/" + "AbC-d_9" * 12
GOOD = f"List-Unsubscribe: <{URI}>\nList-Unsubscribe-Post: {ONE_CLICK}\n"
EVERY_CHECK = [
    "message-format",
    "list-unsubscribe",
    "list-unsubscribe-uri",
    "list-unsubscribe-not-encoded",
    "list-unsubscribe-post",
    "dkim-covers-list-headers",
    "dkim-oversigned",
    "dkim-verifies",
    "dkim-rsa",
    "dkim-aligned",
    "body-unsubscribe-link",
]

Keys = dict[str, tuple[bytes, str]]


@pytest.fixture(scope="module")
def keys() -> Keys:
    """One key pair per algorithm for the whole module."""
    return {
        "rsa-sha256": ds.keygen("rsa-sha256"),
        "ed25519-sha256": ds.keygen("ed25519-sha256"),
    }


def lookup(keys: Keys) -> ds.DnsFunc:
    return ds.dns_func_from_txt(
        {
            ds.dns_record_name("rsa", DOMAIN): keys["rsa-sha256"][1],
            ds.dns_record_name("ed", DOMAIN): keys["ed25519-sha256"][1],
        }
    )


def sign(keys: Keys, message: bytes, algorithm: str = "rsa-sha256") -> bytes:
    """Sign whatever headers ``message`` has, as ``unsubsvc sign`` would."""
    selector = "rsa" if algorithm == "rsa-sha256" else "ed"
    return ds.sign(
        message,
        domain=DOMAIN,
        selector=selector,
        private_key=keys[algorithm][0],
        algorithm=algorithm,  # type: ignore[arg-type]
    )


def with_headers(lines: str) -> bytes:
    return lines.encode() + MESSAGE


def python_folded_list_unsubscribe() -> bytes:
    """What Python's email package makes of a long List-Unsubscribe (an RFC 2047 encoded word)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "news@example.com"
    message["List-Unsubscribe"] = f"<{URI}{'x' * 40}>"
    message["List-Unsubscribe-Post"] = ONE_CLICK
    message.set_content("hello")
    return message.as_bytes()


def test_a_correctly_signed_message_passes(keys: Keys) -> None:
    report = check_message(sign(keys, with_headers(GOOD)), lookup(keys))
    assert [c.name for c in report.checks] == EVERY_CHECK
    assert {c.status for c in report.checks} == {Status.PASSED}, report.render()
    assert report.ok
    assert report.failed == ()


def test_without_records_verification_is_skipped(keys: Keys) -> None:
    report = check_message(sign(keys, with_headers(GOOD)))
    assert report["dkim-verifies"].status is Status.SKIPPED
    assert report.ok


@pytest.mark.parametrize(
    ("message", "failed"),
    [
        (MESSAGE, {"list-unsubscribe", "list-unsubscribe-post"}),
        (
            with_headers(
                f"List-Unsubscribe: <{URI.replace('https', 'http')}>\n"
                f"List-Unsubscribe-Post: {ONE_CLICK}\n"
            ),
            {"list-unsubscribe-uri"},
        ),
        (
            with_headers(f"List-Unsubscribe: <{URI}>\n{GOOD}"),
            {"list-unsubscribe"},
        ),
        (
            python_folded_list_unsubscribe(),
            {"list-unsubscribe-uri", "list-unsubscribe-not-encoded"},
        ),
        (
            with_headers(
                f"List-Unsubscribe: <mailto:u@example.com>\nList-Unsubscribe-Post: {ONE_CLICK}\n"
            ),
            {"list-unsubscribe-uri"},
        ),
        (
            with_headers(
                f"List-Unsubscribe: <{URI}>, <{URI}2>\nList-Unsubscribe-Post: {ONE_CLICK}\n"
            ),
            {"list-unsubscribe-uri"},
        ),
        (
            with_headers(f"List-Unsubscribe: {URI}\nList-Unsubscribe-Post: {ONE_CLICK}\n"),
            {"list-unsubscribe-uri"},
        ),
        (
            with_headers(
                f"List-Unsubscribe: <https://unsub.example.com/u/\n abc>\n"
                f"List-Unsubscribe-Post: {ONE_CLICK}\n"
            ),
            {"list-unsubscribe-uri"},
        ),
        (
            with_headers(f"List-Unsubscribe: <{URI}>\nList-Unsubscribe-Post: One-Click\n"),
            {"list-unsubscribe-post"},
        ),
        (
            with_headers(f"{GOOD}List-Unsubscribe-Post: {ONE_CLICK}\n"),
            {"list-unsubscribe-post"},
        ),
    ],
    ids=[
        "no-headers",
        "http-uri",
        "two-list-unsubscribe",
        "encoded-word",
        "mailto-only",
        "two-https",
        "no-angle-brackets",
        "folded-inside-brackets",
        "wrong-post-value",
        "two-post",
    ],
)
def test_a_broken_message_fails_the_named_checks(
    keys: Keys, message: bytes, failed: set[str]
) -> None:
    report = check_message(sign(keys, message), lookup(keys))
    assert set(report.failed) == failed, report.render()
    assert not report.ok


def test_an_http_uri_says_how_to_get_https(keys: Keys) -> None:
    """A demo's http:// link fails, and the report says what to set for real mail."""
    message = with_headers(
        f"List-Unsubscribe: <{URI.replace('https', 'http')}>\nList-Unsubscribe-Post: {ONE_CLICK}\n"
    )
    report = check_message(sign(keys, message), lookup(keys))
    assert "set UNSUBSVC_BASE_URL to an https:// address for real mail" in report.render()


def test_h_without_list_unsubscribe_post_fails(keys: Keys) -> None:
    """dkimpy's default header list signs List-Unsubscribe but not List-Unsubscribe-Post."""
    message = with_headers(GOOD)
    signature = dkim.sign(message, b"rsa", DOMAIN.encode(), keys["rsa-sha256"][0])
    report = check_message(signature + message, lookup(keys))
    assert report.failed == ("dkim-covers-list-headers",)
    assert "list-unsubscribe-post" in report["dkim-covers-list-headers"].message
    assert report["dkim-oversigned"].status is Status.WARNING
    assert report["dkim-verifies"].status is Status.PASSED


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda m: m.replace(b"/u/AbC", b"/u/XbC", 1), "do not match"),
        (lambda m: m.replace(b"Three new", b"Four new", 1), "body hash mismatch"),
    ],
    ids=["header", "body"],
)
def test_a_tampered_message_fails_verification(
    keys: Keys, tamper: Callable[[bytes], bytes], reason: str
) -> None:
    report = check_message(tamper(sign(keys, with_headers(GOOD))), lookup(keys))
    assert report.failed == ("dkim-verifies",)
    assert reason in report["dkim-verifies"].message


def test_an_added_copy_fails_count_and_verification(keys: Keys) -> None:
    message = b"List-Unsubscribe: <https://evil.example/u/x>\r\n" + sign(keys, with_headers(GOOD))
    report = check_message(message, lookup(keys))
    assert set(report.failed) == {"list-unsubscribe", "dkim-verifies"}


def test_a_missing_record_is_named(keys: Keys) -> None:
    report = check_message(sign(keys, with_headers(GOOD)), ds.dns_func_from_txt({}))
    assert report.failed == ("dkim-verifies",)
    assert "no TXT record at rsa._domainkey.example.com" in report["dkim-verifies"].message


def test_only_ed25519_warns(keys: Keys) -> None:
    report = check_message(sign(keys, with_headers(GOOD), "ed25519-sha256"), lookup(keys))
    assert report.ok
    assert report["dkim-rsa"].status is Status.WARNING
    assert "Gmail" in report["dkim-rsa"].message
    assert report["dkim-verifies"].status is Status.PASSED


def test_rsa_beside_ed25519_passes(keys: Keys) -> None:
    message = sign(keys, sign(keys, with_headers(GOOD), "ed25519-sha256"))
    report = check_message(message, lookup(keys))
    assert {c.status for c in report.checks} == {Status.PASSED}, report.render()
    assert "signature 2" in report["dkim-verifies"].message


def test_not_oversigned_warns(keys: Keys) -> None:
    message = with_headers(GOOD)
    signature = dkim.sign(
        message,
        b"rsa",
        DOMAIN.encode(),
        keys["rsa-sha256"][0],
        include_headers=[b"from", b"list-unsubscribe", b"list-unsubscribe-post"],
    )
    report = check_message(signature + message, lookup(keys))
    assert report.ok
    oversigned = report["dkim-oversigned"]
    assert oversigned.status is Status.WARNING
    assert "from, list-unsubscribe, list-unsubscribe-post" in oversigned.message


@pytest.mark.parametrize(
    ("domain", "status"),
    [
        ("example.com", Status.PASSED),
        ("mail.example.com", Status.PASSED),
        ("esp.example", Status.WARNING),
    ],
    ids=["same", "subdomain", "third-party"],
)
def test_alignment_of_d_with_from(keys: Keys, domain: str, status: Status) -> None:
    message = with_headers(GOOD)
    signature = ds.sign(message, domain=domain, selector="rsa", private_key=keys["rsa-sha256"][0])
    report = check_message(signature)
    assert report["dkim-aligned"].status is status
    assert report.ok


def test_an_unparsable_message_fails_message_format() -> None:
    report = check_message(b"this is not\na message\n\nbody")
    assert report.failed == ("message-format",)


def test_an_mbox_envelope_line_is_tolerated(keys: Keys) -> None:
    message = b"From news@example.com Mon Mar  2 09:30:00 2026\n" + sign(keys, with_headers(GOOD))
    assert check_message(message, lookup(keys)).ok


def test_report_to_dict_is_json() -> None:
    report = check_message(MESSAGE)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["failed"] == list(report.failed)
    assert [c["name"] for c in data["checks"]] == EVERY_CHECK
    assert {c["status"] for c in data["checks"]} <= {"passed", "failed", "skipped", "warning"}


def test_render_has_a_line_per_check_and_a_verdict() -> None:
    lines = check_message(MESSAGE).render().splitlines()
    assert len(lines) == len(EVERY_CHECK) + 1
    assert lines[1].startswith("FAIL  list-unsubscribe ")
    assert lines[-1] == (
        "FAILED: list-unsubscribe, list-unsubscribe-post, dkim-covers-list-headers"
    )


def test_report_lookup_of_an_unknown_check() -> None:
    with pytest.raises(KeyError):
        Report(())["nope"]


# -- judged as receivers judge (OpenDKIM, Mail::DKIM, Gmail) ---------------------------------


def test_dual_signed_without_the_ed25519_key_passes_on_rsa(keys: Keys) -> None:
    """Receivers pass on any one valid signature; an unpublished ed25519 key is information."""
    message = sign(keys, sign(keys, with_headers(GOOD), "ed25519-sha256"))
    only_rsa = ds.dns_func_from_txt({ds.dns_record_name("rsa", DOMAIN): keys["rsa-sha256"][1]})
    report = check_message(message, only_rsa)
    assert report.ok, report.render()
    verifies = report["dkim-verifies"]
    assert verifies.status is Status.PASSED
    assert "a=ed25519-sha256) does not verify: no TXT record at ed._domainkey" in verifies.message


def test_a_broken_rsa_signature_fails_even_beside_a_good_ed25519(keys: Keys) -> None:
    message = sign(keys, sign(keys, with_headers(GOOD), "ed25519-sha256"))
    only_ed = ds.dns_func_from_txt({ds.dns_record_name("ed", DOMAIN): keys["ed25519-sha256"][1]})
    report = check_message(message, only_ed)
    assert report.failed == ("dkim-verifies",)
    assert "no rsa-sha256 signature verifies" in report["dkim-verifies"].message


def rsa_sha1_signed(keys: Keys) -> bytes:
    message = with_headers(GOOD)
    headers = [b"from", b"list-unsubscribe", b"list-unsubscribe-post"] * 2
    signature: bytes = dkim.sign(
        message,
        b"rsa",
        DOMAIN.encode(),
        keys["rsa-sha256"][0],
        include_headers=headers,
        signature_algorithm=b"rsa-sha1",
    )
    return signature + message


@pytest.mark.parametrize("with_dns", [True, False], ids=["dns", "no-dns"])
def test_rsa_sha1_only_fails(keys: Keys, with_dns: bool) -> None:
    """RFC 8301 §3.1: verifiers must not accept rsa-sha1, however well it verifies."""
    report = check_message(rsa_sha1_signed(keys), lookup(keys) if with_dns else None)
    assert set(report.failed) == {"dkim-verifies", "dkim-rsa"}
    assert "RFC 8301" in report["dkim-verifies"].message


@pytest.mark.parametrize(
    "field",
    [
        f"List-Unsubscribe-Post:  {ONE_CLICK}",  # two spaces
        f"List-Unsubscribe-Post: {ONE_CLICK} ",  # a trailing space
        f"List-Unsubscribe-Post:{ONE_CLICK}",  # none
        "List-Unsubscribe-Post: \tList-Unsubscribe=One-Click",
    ],
    ids=["two-spaces", "trailing-space", "no-space", "tab"],
)
def test_list_unsubscribe_post_must_be_exact(keys: Keys, field: str) -> None:
    message = with_headers(f"List-Unsubscribe: <{URI}>\n{field}\n")
    report = check_message(sign(keys, message), lookup(keys))
    post = report["list-unsubscribe-post"]
    assert post.status is Status.FAILED
    assert "white space" in post.message


def test_exact_list_unsubscribe_post_passes(keys: Keys) -> None:
    report = check_message(sign(keys, with_headers(GOOD)), lookup(keys))
    assert report["list-unsubscribe-post"].status is Status.PASSED


FOOTER = b"Change your preferences or unsubscribe:\nhttps://news.example.com/preferences\n"
NO_LINK = MESSAGE.replace(FOOTER, b"Read more at https://example.com/blog\n")


def test_a_body_without_an_unsubscribe_link_warns(keys: Keys) -> None:
    assert NO_LINK != MESSAGE
    report = check_message(sign(keys, GOOD.encode() + NO_LINK), lookup(keys))
    link = report["body-unsubscribe-link"]
    assert link.status is Status.WARNING
    assert report.ok  # a warning, not a failure


def html_message(anchor: str) -> bytes:
    message = EmailMessage()
    message["From"] = "news@example.com"
    message["To"] = "ann@example.com"
    message.set_content("Hello")
    message.add_alternative(f"<p>Hello</p><p>{anchor}</p>", subtype="html")
    return GOOD.encode() + message.as_bytes()


@pytest.mark.parametrize(
    ("anchor", "status"),
    [
        ('<a href="https://example.com/leave">Unsubscribe</a>', Status.PASSED),
        (f'<a href="{URI}">here</a>', Status.PASSED),  # the header's own host
        ('<a href="https://example.com/x">Abmelden</a>', Status.PASSED),
        ('<a href="https://example.com/blog">Our blog</a>', Status.WARNING),
    ],
    ids=["words", "same-host", "german", "unrelated"],
)
def test_an_html_part_link_counts(anchor: str, status: Status) -> None:
    assert check_message(html_message(anchor))["body-unsubscribe-link"].status is status


def test_reasons_carry_no_python_bytes_reprs(keys: Keys) -> None:
    signed = sign(keys, with_headers(GOOD))
    report = check_message(signed.replace(b"Three new", b"Four new", 1), lookup(keys))
    for check in report.checks:
        assert "b'" not in check.message and 'b"' not in check.message, check
    assert "body hash mismatch" in report["dkim-verifies"].message
