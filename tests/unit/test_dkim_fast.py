"""The OpenSSL fast path: dkimpy verifies it, and it writes exactly what ``dkim.sign`` writes."""

from __future__ import annotations

import functools
import io
import itertools
import mailbox
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import dkim
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unsubsvc.core import bulk_signing
from unsubsvc.core import dkim_signing as ds
from unsubsvc.core.bulk_signing import KeySpec, SigningPlan

MESSAGE = (Path(__file__).resolve().parents[1] / "data" / "message.eml").read_bytes()
DOMAIN = "example.com"
ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]
CANONICALIZATIONS = [
    (b"relaxed", b"relaxed"),
    (b"simple", b"simple"),
    (b"relaxed", b"simple"),
    (b"simple", b"relaxed"),
]


@functools.cache
def key(algorithm: ds.Algorithm) -> tuple[bytes, ds.DnsFunc]:
    """One key per algorithm for the whole module, and a DNS answering with its record."""
    pem, txt = ds.keygen(algorithm)
    return pem, ds.dns_func_from_txt({ds.dns_record_name("s1", DOMAIN): txt})


def include(message: bytes) -> list[bytes]:
    return [name.encode("ascii") for name in ds.signed_header_names(message)]


def plain_dkim_sign(
    message: bytes, algorithm: ds.Algorithm, canonicalize: tuple[bytes, bytes]
) -> bytes:
    """Return the field ``dkim.sign`` writes at the time the fast path is given (1_767_225_600)."""
    pem, _ = key(algorithm)
    # dkim.DKIM.sign takes no timestamp: it reads time.time() through its module.
    with mock.patch.object(dkim.time, "time", lambda: 1_767_225_600.75):
        field: bytes = dkim.sign(
            message,
            b"s1",
            DOMAIN.encode(),
            ds.load_key(pem, algorithm),
            canonicalize=canonicalize,
            signature_algorithm=algorithm.encode(),
            include_headers=include(message),
            linesep=b"\r\n",
        )
    return field


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fast_signature_verifies_and_a_change_breaks_it(algorithm: ds.Algorithm) -> None:
    pem, dns = key(algorithm)
    signed = ds.sign(MESSAGE, domain=DOMAIN, selector="s1", private_key=pem, algorithm=algorithm)
    assert dkim.verify(signed, dnsfunc=dns)
    assert not dkim.verify(signed.replace(b"Subject: ", b"Subject: Re: "), dnsfunc=dns)
    assert not dkim.verify(signed + b"P.S.\r\n", dnsfunc=dns)


@pytest.mark.parametrize("canonicalize", CANONICALIZATIONS, ids=lambda c: b"/".join(c).decode())
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_field_is_byte_for_byte_what_dkim_sign_writes(
    algorithm: ds.Algorithm, canonicalize: tuple[bytes, bytes]
) -> None:
    pem, _ = key(algorithm)
    message = ds.to_crlf(MESSAGE)
    fast = ds.signer(DOMAIN, "s1", pem, algorithm, canonicalize)
    ours = fast.signature(message, include(message), timestamp=1_767_225_600)
    assert ours == plain_dkim_sign(message, algorithm, canonicalize)


def test_the_key_is_parsed_once_per_process() -> None:
    pem, _ = key("rsa-sha256")
    assert ds.signer(DOMAIN, "s1", pem, "rsa-sha256") is ds.signer(DOMAIN, "s1", pem, "rsa-sha256")


def test_fast_path_refuses_what_dkimpy_refuses() -> None:
    pem, _ = key("rsa-sha256")
    signer = ds.signer(DOMAIN, "s1", pem, "rsa-sha256")
    with pytest.raises(ValueError, match="From header field must be signed"):
        signer.signature(ds.to_crlf(MESSAGE), [b"subject"])
    with pytest.raises(ValueError, match="received header field should not be signed"):
        signer.signature(ds.to_crlf(MESSAGE), [b"from", b"received"])


_NAMES = st.sampled_from(
    ["Subject", "To", "Cc", "Reply-To", "Date", "Message-ID", "X-Tag", "Content-Type"]
)
# Header values: printable ASCII with runs of spaces and tabs, and folds (RFC 5322 §2.2.3).
_VALUE = (
    st.lists(st.sampled_from([*"abcXYZ019 \t;:=<>@.,\"'()", "\r\n "]), min_size=1, max_size=60)
    .map("".join)
    .filter(lambda v: v.strip(" \t\r\n") != "" and not v.startswith("\r\n"))
)
_BODY_LINE = st.lists(st.sampled_from([*"abc XYZ\t.>-=", "From "]), max_size=40).map("".join)


def _message(headers: list[tuple[str, str]], body: list[str], trailing_blank_lines: int) -> bytes:
    lines = ["From: Sender <news@example.com>"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (
        "\r\n".join(body) + "\r\n" * (trailing_blank_lines + 1)
    ).encode()


#: Random messages: From, up to eight other fields, up to twelve body lines, blank lines after.
_MESSAGES = st.builds(
    _message,
    st.lists(st.tuples(_NAMES, _VALUE), max_size=8),
    st.lists(_BODY_LINE, max_size=12),
    st.integers(0, 3),
)
_RANDOM = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_RANDOM
@given(
    message=_MESSAGES,
    canonicalize=st.sampled_from(CANONICALIZATIONS),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_random_messages_are_signed_as_dkim_sign_does_and_verify(
    message: bytes, canonicalize: tuple[bytes, bytes], algorithm: ds.Algorithm
) -> None:
    """The skipped regex passes and the header-only parse change no byte, whatever the input."""
    pem, dns = key(algorithm)
    signer = ds.signer(DOMAIN, "s1", pem, algorithm, canonicalize)
    signed = ds.sign_message(message, [signer], timestamp=1_767_225_600)
    assert signed == plain_dkim_sign(message, algorithm, canonicalize) + message
    assert dkim.verify(signed, dnsfunc=dns)
    assert not dkim.verify(signed.replace(b"From: Sender", b"From: Sendor", 1), dnsfunc=dns)


def test_two_keys_both_verify_rsa_on_top() -> None:
    (rsa_pem, rsa_dns), (ed_pem, ed_dns) = key("rsa-sha256"), key("ed25519-sha256")
    signers = [
        ds.signer(DOMAIN, "s1", rsa_pem, "rsa-sha256"),
        ds.signer(DOMAIN, "s1", ed_pem, "ed25519-sha256"),
    ]
    signed = ds.sign_message(MESSAGE, signers)
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert dkim.DKIM(signed).verify(idx=0, dnsfunc=rsa_dns)
    assert dkim.DKIM(signed).verify(idx=1, dnsfunc=ed_dns)


@pytest.mark.parametrize("workers", [1, 2])
def test_sign_all_keeps_order_and_reports_the_bad_message(workers: int) -> None:
    pem, dns = key("ed25519-sha256")
    plan = SigningPlan(DOMAIN, (KeySpec("s1", pem, "ed25519-sha256"),))
    messages = [MESSAGE.replace(b"Subject: ", f"Subject: {n} ".encode()) for n in range(100)]
    signed = list(bulk_signing.sign_all(messages, plan, workers=workers))
    assert [s.endswith(ds.to_crlf(m)) for s, m in zip(signed, messages, strict=True)] == [
        True
    ] * 100
    assert all(dkim.verify(s, dnsfunc=dns) for s in signed)
    steps: list[int] = []
    broken = [*messages[:3], b"Subject: no sender\r\n\r\nbody\r\n"]
    with pytest.raises(ValueError, match="message 4: the message must have exactly one From"):
        list(bulk_signing.sign_all(broken, plan, workers=workers, progress=steps.append))
    assert steps == [1, 1, 1]


def test_a_pool_streams_its_input_and_serves_batch_after_batch() -> None:
    """A million-message run holds a bounded window in memory, not the whole input."""
    pem, dns = key("ed25519-sha256")
    plan = SigningPlan(DOMAIN, (KeySpec("s1", pem, "ed25519-sha256"),))
    taken: list[int] = []

    def endless() -> Iterator[bytes]:
        for n in itertools.count():
            taken.append(n)
            yield MESSAGE.replace(b"Subject: ", f"Subject: {n} ".encode())

    with bulk_signing.SigningPool(plan, workers=2) as pool:
        first = list(itertools.islice(pool.sign(endless()), 10))
        window = bulk_signing.CHUNK * bulk_signing.IN_FLIGHT * 2
        assert window <= len(taken) <= window + bulk_signing.CHUNK
        again = list(pool.sign([MESSAGE]))  # the same workers, a second batch
    assert [b"Subject: %d " % n in s for n, s in enumerate(first)] == [True] * 10
    assert all(dkim.verify(s, dnsfunc=dns) for s in [*first, *again])


def test_mboxrd_round_trip_through_pythons_mailbox_reader(tmp_path: Path) -> None:
    pem, dns = key("rsa-sha256")
    body = b"Hi,\r\nFrom here on: news.\r\n>From a quote\r\n>>From deeper\r\n"
    message = ds.to_crlf(MESSAGE).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body
    signed = ds.sign(message, domain=DOMAIN, selector="s1", private_key=pem)
    buffer = io.BytesIO()
    for _ in range(2):
        bulk_signing.write_mboxrd(buffer, b"From news@example.com Mon Mar  2 09:30:00 2026", signed)
    raw = buffer.getvalue()
    assert b"\r\n>From here on" in raw and b"\r\n>>From a quote" in raw
    assert b"\r\n>>>From deeper" in raw
    path = tmp_path / "out.mbox"
    path.write_bytes(raw)
    box = mailbox.mbox(path, create=False)
    try:
        assert len(box) == 2
        for stored in box.keys():
            read = bulk_signing.mboxrd_unescape(box.get_bytes(stored))
            assert read == signed
            assert dkim.verify(read, dnsfunc=dns)
    finally:
        box.close()


def test_mboxrd_refuses_a_bad_envelope() -> None:
    with pytest.raises(ValueError, match="not an mbox 'From ' line"):
        bulk_signing.write_mboxrd(io.BytesIO(), b"Subject: x", MESSAGE)


def test_fast_signing_time_is_now_by_default() -> None:
    pem, _ = key("ed25519-sha256")
    before = int(time.time())
    signed = ds.sign(
        MESSAGE, domain=DOMAIN, selector="s1", private_key=pem, algorithm="ed25519-sha256"
    )
    stamp = int(
        dkim.util.parse_tag_value(ds.header_values(signed, "DKIM-Signature")[0].encode())[b"t"]
    )
    assert before <= stamp <= int(time.time())
