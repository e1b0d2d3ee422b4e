"""DKIM signing of raw messages: header insertion, List-Id, keys, oversigning (no network)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable
from email.header import decode_header, make_header
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from unsubsvc.core import dkim_signing as ds
from unsubsvc.core.headers import format_header, list_unsubscribe_headers

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (ROOT / "tests" / "data" / "message.eml").read_bytes()
DOMAIN = "example.com"
SELECTOR = "s2026"
URI = "https://unsub.example.com/u/" + "AbC-d_9" * 12
HEADERS = list_unsubscribe_headers(URI)
ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]

Keys = dict[str, tuple[bytes, str]]


@pytest.fixture(scope="module")
def keys() -> Keys:
    """One key pair per algorithm for the whole module (RSA generation is the slow part)."""
    return {algorithm: ds.keygen(algorithm) for algorithm in ALGORITHMS}  # type: ignore[arg-type]


def records(txt: str, selector: str = SELECTOR) -> ds.DnsFunc:
    return ds.dns_func_from_txt({ds.dns_record_name(selector, DOMAIN): txt})


def signed(keys: Keys, algorithm: str = "rsa-sha256", message: bytes = MESSAGE) -> bytes:
    pem, _ = keys[algorithm]
    return ds.sign(
        ds.add_headers(message, HEADERS),
        domain=DOMAIN,
        selector=SELECTOR,
        private_key=pem,
        algorithm=algorithm,  # type: ignore[arg-type]
    )


def h_tag(message: bytes) -> list[str]:
    value = ds.header_values(message, "DKIM-Signature")[0]
    found = re.search(r"(?:^|;)\s*h=([^;]*)", value)
    assert found is not None
    return [name.strip() for name in "".join(found.group(1).split()).split(":")]


def verifies(message: bytes, txt: str) -> bool:
    return bool(dkim.verify(message, dnsfunc=records(txt)))


# -- add_headers -----------------------------------------------------------------------------


def test_add_headers_puts_crlf_lines_on_top() -> None:
    result = ds.add_headers(MESSAGE, HEADERS)
    expected = "".join(format_header(n, v) + "\r\n" for n, v in HEADERS).encode()
    assert result.startswith(expected)
    assert re.search(rb"(?<!\r)\n", result) is None
    assert result.endswith(b"\r\n")
    assert result[len(expected) :] == MESSAGE.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "bare-cr"])
def test_add_headers_normalises_line_endings(ending: bytes) -> None:
    message = MESSAGE.replace(b"\n", ending)
    assert ds.add_headers(message, HEADERS) == ds.add_headers(MESSAGE, HEADERS)


@pytest.mark.parametrize(
    "present",
    [
        "List-Unsubscribe: <https://old.example/u/x>",
        "list-unsubscribe-post: List-Unsubscribe=One-Click",
    ],
    ids=["list-unsubscribe", "list-unsubscribe-post-lowercase"],
)
def test_add_headers_refuses_a_second_copy(present: str) -> None:
    with pytest.raises(ValueError, match="already has"):
        ds.add_headers(present.encode() + b"\n" + MESSAGE, [("X-Other", "1")])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nBcc: victim@example.net"),
        ("X-Evil", "a\nb"),
        ("X-Name", "café"),
        ("Bad Name", "x"),
        ("Bad:Name", "x"),
    ],
    ids=["crlf-injection", "lf-injection", "non-ascii", "space-in-name", "colon-in-name"],
)
def test_add_headers_refuses_unsafe_fields(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        ds.add_headers(MESSAGE, [(name, value)])


def test_long_list_unsubscribe_is_neither_encoded_nor_refolded() -> None:
    uri = "https://unsub.example.com/u/" + "x" * 300
    result = ds.add_headers(MESSAGE, list_unsubscribe_headers(uri))
    assert result.startswith(f"List-Unsubscribe: <{uri}>\r\n".encode())
    assert b"=?" not in result


def test_header_past_998_folds_after_a_comma_only() -> None:
    mailto = "mailto:unsubscribe@example.com?subject=" + "y" * 700
    headers = list_unsubscribe_headers("https://unsub.example.com/u/" + "x" * 400, mailto)
    result = ds.add_headers(MESSAGE, headers)
    first, second = result.split(b"\r\n")[:2]
    assert first.endswith(b">,")
    assert second == f" <{mailto}>".encode()


def test_add_headers_keeps_a_quoted_comma_unchanged() -> None:
    result = ds.add_headers(MESSAGE, [ds.list_id_header("News, weekly", "news", DOMAIN)])
    assert result.startswith(b'List-Id: "News, weekly" <news.example.com>\r\n')


@pytest.mark.parametrize(
    "message",
    [b"", b"\r\nbody only", b"From someone Mon Mar 2\nFrom: a@example.com\n\nx", b" folded\n\nx"],
    ids=["empty", "no-headers", "mbox-from-line", "starts-folded"],
)
def test_add_headers_refuses_what_is_not_a_message(message: bytes) -> None:
    with pytest.raises(ValueError):
        ds.add_headers(message, HEADERS)


def test_split_message_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="header line 2"):
        ds.split_message(b"From: a@example.com\nnot a header\n\nbody")


def test_headers_only_message_gets_headers() -> None:
    result = ds.add_headers(b"From: a@example.com\nSubject: x", HEADERS)
    assert result.endswith(b"From: a@example.com\r\nSubject: x\r\n")


# -- List-Id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("News from Example", "News from Example <news.example.com>"),
        ("  News   from  Example ", "News from Example <news.example.com>"),
        ("News (weekly)", '"News (weekly)" <news.example.com>'),
        ('He said "hi" \\ ok', r'"He said \"hi\" \\ ok" <news.example.com>'),
        ("", "<news.example.com>"),
    ],
    ids=["atoms", "whitespace", "specials-quoted", "escapes", "no-phrase"],
)
def test_list_id_header(display: str, expected: str) -> None:
    assert ds.list_id_header(display, "news", "Example.COM") == ("List-Id", expected)


@pytest.mark.parametrize(
    "display",
    ["Café crème", "Nouvelles de l'été — " * 6, "日本のニュース"],
    ids=["latin", "long", "cjk"],
)
def test_list_id_non_ascii_phrase_is_encoded_words(display: str) -> None:
    name, value = ds.list_id_header(display, "news", DOMAIN)
    phrase, _, label = value.rpartition(" ")
    assert label == "<news.example.com>"
    assert value.isascii()
    words = phrase.split(" ")
    assert all(len(word) <= ds.ENCODED_WORD_LENGTH for word in words)
    assert all(word.startswith("=?utf-8?b?") and word.endswith("?=") for word in words)
    assert str(make_header(decode_header(phrase))) == " ".join(display.split())


@pytest.mark.parametrize(
    ("list_name", "domain"),
    [("news", "exämple.com"), ("news", "example..com"), ("news", "-x.com"), ("bad name", "x.com")],
    ids=["idn-domain", "empty-label", "leading-hyphen", "space-in-list"],
)
def test_list_id_refuses_bad_parts(list_name: str, domain: str) -> None:
    with pytest.raises(ValueError):
        ds.list_id_header("News", list_name, domain)


def test_list_id_refuses_control_characters() -> None:
    with pytest.raises(ValueError, match="control"):
        ds.list_id_header("News\x07", "news", DOMAIN)


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=["rsa", "ed25519"])
def test_signed_message_verifies(keys: Keys, algorithm: str) -> None:
    message = signed(keys, algorithm)
    assert message.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    assert verifies(message, keys[algorithm][1])


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=["rsa", "ed25519"])
def test_h_covers_usual_fields_and_oversigns(keys: Keys, algorithm: str) -> None:
    names = h_tag(signed(keys, algorithm))
    for name in ("from", "list-unsubscribe", "list-unsubscribe-post"):
        assert names.count(name) == 2, name
    for name in ("to", "subject", "date", "message-id", "mime-version", "content-type"):
        assert names.count(name) == 1, name
    assert "reply-to" not in names  # absent fields are not signed (only the oversigned ones)
    assert "c=relaxed/relaxed" in ds.header_values(signed(keys, algorithm), "DKIM-Signature")[0]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"/u/AbC", b"/u/XbC", 1),
        lambda m: m.replace(b"One-Click", b"One-Clack", 1),
        lambda m: m.replace(b"List-Unsubscribe:", b"X-Unsubscribe:", 1),
        lambda m: b"List-Unsubscribe: <https://evil.example/u/x>\r\n" + m,
        lambda m: m + b"List-Unsubscribe: <https://evil.example/u/x>\r\n",
        lambda m: b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" + m,
        lambda m: b"From: Evil <evil@example.net>\r\n" + m,
        lambda m: m.replace(b"Three new", b"Four new", 1),
    ],
    ids=[
        "changed-uri",
        "changed-post",
        "removed-header",
        "second-list-unsubscribe-on-top",
        "second-list-unsubscribe-in-body",
        "second-post",
        "second-from",
        "changed-body",
    ],
)
def test_tampering_breaks_the_signature(keys: Keys, tamper: Callable[[bytes], bytes]) -> None:
    message = signed(keys)
    assert not verifies(tamper(message), keys["rsa-sha256"][1])


def test_unsigned_added_header_still_verifies(keys: Keys) -> None:
    """The control: the tampering test is not failing for an unrelated reason."""
    message = b"X-Mailer: relay\r\n" + signed(keys)
    assert verifies(message, keys["rsa-sha256"][1])


def test_signing_once_would_let_a_forged_copy_through(keys: Keys) -> None:
    """Why oversign: with each list header signed once, a copy added on top still verifies."""
    pem, txt = keys["rsa-sha256"]
    message = ds.add_headers(MESSAGE, HEADERS)
    signature = dkim.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"list-unsubscribe", b"list-unsubscribe-post"],
    )
    forged = b"List-Unsubscribe: <https://evil.example/u/x>\r\n" + signature + message
    assert verifies(forged, txt)


def test_sign_keeps_existing_line_endings_consistent(keys: Keys) -> None:
    lf = ds.add_headers(MESSAGE, HEADERS).replace(b"\r\n", b"\n")
    pem, txt = keys["rsa-sha256"]
    result = ds.sign(lf, domain=DOMAIN, selector=SELECTOR, private_key=pem)
    assert re.search(rb"(?<!\r)\n", result) is None
    assert verifies(result, txt)


def test_both_signatures_verify_independently(keys: Keys) -> None:
    ed_pem, ed_txt = keys["ed25519-sha256"]
    rsa_pem, rsa_txt = keys["rsa-sha256"]
    message = ds.add_headers(MESSAGE, HEADERS)
    message = ds.sign(
        message, domain=DOMAIN, selector="ed", private_key=ed_pem, algorithm="ed25519-sha256"
    )
    message = ds.sign(message, domain=DOMAIN, selector="rsa", private_key=rsa_pem)
    lookup = ds.dns_func_from_txt(
        {ds.dns_record_name("ed", DOMAIN): ed_txt, ds.dns_record_name("rsa", DOMAIN): rsa_txt}
    )
    verifier = dkim.DKIM(message)
    assert verifier.verify(idx=0, dnsfunc=lookup)
    assert verifier.signature_fields[b"a"] == b"rsa-sha256"
    assert dkim.DKIM(message).verify(idx=1, dnsfunc=lookup)


def test_sign_accepts_pkcs8_rsa_and_raw_ed25519_seed(keys: Keys) -> None:
    rsa_key = serialization.load_pem_private_key(keys["rsa-sha256"][0], password=None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    pkcs8 = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    message = ds.add_headers(MESSAGE, HEADERS)
    result = ds.sign(message, domain=DOMAIN, selector=SELECTOR, private_key=pkcs8)
    assert verifies(result, keys["rsa-sha256"][1])

    ed_key = serialization.load_pem_private_key(keys["ed25519-sha256"][0], password=None)
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    seed = base64.b64encode(ed_key.private_bytes_raw()) + b"\n"
    result = ds.sign(
        message, domain=DOMAIN, selector=SELECTOR, private_key=seed, algorithm="ed25519-sha256"
    )
    assert verifies(result, keys["ed25519-sha256"][1])


@pytest.mark.parametrize(
    ("key", "algorithm", "match"),
    [
        ("rsa-sha256", "ed25519-sha256", "needs an Ed25519"),
        ("ed25519-sha256", "rsa-sha256", "needs an RSA"),
        ("rsa-sha256", "rsa-sha1", "unknown DKIM algorithm"),
        ("garbage", "rsa-sha256", "not a PEM"),
        ("garbage-pem", "rsa-sha256", "cannot be read"),
        ("encrypted", "rsa-sha256", "encrypted"),
        ("short-seed", "ed25519-sha256", "not a PEM"),
    ],
    ids=[
        "rsa-as-ed25519",
        "ed25519-as-rsa",
        "sha1",
        "garbage",
        "garbage-pem",
        "encrypted",
        "short-seed",
    ],
)
def test_sign_refuses_bad_keys(keys: Keys, key: str, algorithm: str, match: str) -> None:
    if key in keys:
        private = keys[key][0]
    elif key == "encrypted":
        loaded = serialization.load_pem_private_key(keys["rsa-sha256"][0], password=None)
        private = loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    else:
        private = {
            "garbage": b"not a key",
            "garbage-pem": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "short-seed": base64.b64encode(b"x" * 16),
        }[key]
    with pytest.raises(ValueError, match=match):
        ds.sign(
            ds.add_headers(MESSAGE, HEADERS),
            domain=DOMAIN,
            selector=SELECTOR,
            private_key=private,
            algorithm=algorithm,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    "message",
    [b"To: a@example.com\n\nx", b"From: a@example.com\nFrom: b@example.com\n\nx"],
    ids=["no-from", "two-from"],
)
def test_sign_needs_exactly_one_from(keys: Keys, message: bytes) -> None:
    with pytest.raises(ValueError, match="exactly one From"):
        ds.sign(message, domain=DOMAIN, selector=SELECTOR, private_key=keys["rsa-sha256"][0])


@pytest.mark.parametrize(
    ("domain", "selector"),
    [("example.com", "bad selector"), ("exa mple.com", "s1"), ("", "s1")],
    ids=["selector", "domain", "empty-domain"],
)
def test_sign_refuses_bad_names(keys: Keys, domain: str, selector: str) -> None:
    with pytest.raises(ValueError):
        ds.sign(MESSAGE, domain=domain, selector=selector, private_key=keys["rsa-sha256"][0])


# -- keys and DNS --------------------------------------------------------------------------


def test_keygen_rsa(keys: Keys) -> None:
    pem, txt = keys["rsa-sha256"]
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert txt.startswith("v=DKIM1; k=rsa; p=")
    public = serialization.load_der_public_key(base64.b64decode(txt.split("p=")[1]))
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048


def test_keygen_ed25519(keys: Keys) -> None:
    pem, txt = keys["ed25519-sha256"]
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert txt.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(txt.split("p=")[1])) == 32


@pytest.mark.parametrize(
    ("algorithm", "bits"),
    [("rsa-sha256", 512), ("rsa-sha256", 8192), ("dsa", 2048)],
    ids=["too-small", "too-big", "unknown-algorithm"],
)
def test_keygen_refuses(algorithm: str, bits: int) -> None:
    with pytest.raises(ValueError):
        ds.keygen(algorithm, bits)  # type: ignore[arg-type]


def test_dns_record_name() -> None:
    assert ds.dns_record_name("S2026", "Mail.Example.com") == "s2026._domainkey.mail.example.com"


def test_dns_func_answers_any_spelling() -> None:
    lookup = ds.dns_func_from_txt({"S1._domainkey.Example.com.": "v=DKIM1; p=x"})
    assert lookup(b"s1._domainkey.example.com.", timeout=5) == b"v=DKIM1; p=x"
    assert lookup("S1._DOMAINKEY.EXAMPLE.COM") == b"v=DKIM1; p=x"
    assert lookup(b"s2._domainkey.example.com.") is None


def test_txt_strings_split_at_255() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 400
    chunks = ds.txt_strings(value)
    assert [len(c) for c in chunks] == [255, 163]
    assert "".join(chunks) == value


def test_parse_txt_records() -> None:
    text = (
        "# published 2026-03-02\n"
        "\n"
        "s1._domainkey.example.com v=DKIM1; k=rsa; p=AAAA\n"
        's2._domainkey.example.com. 3600 IN TXT "v=DKIM1; k=ed25519; " "p=BBBB"\n'
        's3._domainkey.example.com. TXT ( "v=DKIM1; p=\\"C" )\n'
        's4._domainkey.example.com.\t300\tIN\tTXT\t"v=DKIM1; p=D"\n'
    )
    assert ds.parse_txt_records(text) == {
        "s1._domainkey.example.com": "v=DKIM1; k=rsa; p=AAAA",
        "s2._domainkey.example.com": "v=DKIM1; k=ed25519; p=BBBB",
        "s3._domainkey.example.com": 'v=DKIM1; p="C',
        "s4._domainkey.example.com": "v=DKIM1; p=D",
    }


def test_parse_txt_records_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        ds.parse_txt_records("a v=DKIM1\nlonely-name\n")


# -- recipients ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("To: Ann Lee <ann@example.com>", "ann@example.com"),
        ('To: "Lee, Bob" <bob@example.org>, carol@example.net', "bob@example.org"),
        ("To: Ann Lee\n <ann@example.com>", "ann@example.com"),
        ("Cc: ann@example.com", None),
        ("To: undisclosed-recipients:;", None),
        ("To: a@example.com\nTo: b@example.com", None),
    ],
    ids=["display-name", "first-of-two", "folded", "no-to", "group-no-address", "two-to"],
)
def test_recipient_address(headers: str, expected: str | None) -> None:
    message = f"From: x@example.com\n{headers}\n\nbody\n".encode()
    assert ds.recipient_address(message) == expected


# -- purity --------------------------------------------------------------------------------


def test_modules_import_no_framework() -> None:
    probe = (
        "import json, sys\n"
        "import unsubsvc.core.dkim_signing, unsubsvc.core.message_check\n"
        "print(json.dumps(sorted(m for m in ('flask', 'sqlalchemy', 'click', 'flask_sqlalchemy')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
