"""``dkim_canonical`` gives exactly dkimpy's canonical bytes, whichever passes it skips."""

from __future__ import annotations

import pytest
from dkim.canonicalization import CanonicalizationPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

from unsubsvc.core.dkim_canonical import canonical_body, canonical_headers

POLICIES = [
    CanonicalizationPolicy.from_c_value(c)
    for c in (b"relaxed/relaxed", b"simple/simple", b"relaxed/simple", b"simple/relaxed")
]
#: Pieces that exercise every pass: runs of spaces and tabs, spaces before line ends,
#: lone CR and LF, folds, and trailing empty lines.
_PIECES = st.sampled_from(["a", "Z", "0", ";", " ", "  ", "\t", " \t", "\r\n", "\r\n ", "\n", "\r"])
_TEXT = st.lists(_PIECES, max_size=40).map("".join).map(str.encode)
_NAME = st.sampled_from([b"Subject", b"subject", b"X-Tag", b"FROM"])


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(body=_TEXT, policy=st.sampled_from(POLICIES))
def test_body_is_dkimpys(body: bytes, policy: CanonicalizationPolicy) -> None:
    assert canonical_body(policy, body) == policy.canonicalize_body(body)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    fields=st.lists(st.tuples(_NAME, _TEXT.map(lambda v: v + b"\r\n")), max_size=5),
    policy=st.sampled_from(POLICIES),
)
def test_headers_are_dkimpys(
    fields: list[tuple[bytes, bytes]], policy: CanonicalizationPolicy
) -> None:
    theirs = [tuple(field) for field in policy.canonicalize_headers([list(f) for f in fields])]
    assert canonical_headers(policy, fields) == theirs


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"plain words only\r\n\r\n\r\n", b"plain words only\r\n"),  # every pass skipped
        (b"two  spaces\tand tab \r\nend\r\n", b"two spaces and tab\r\nend\r\n"),
        (b"\r\n", b""),  # RFC 6376 §3.4.4: an empty body hashes as nothing
    ],
)
def test_relaxed_body_examples(body: bytes, canonical: bytes) -> None:
    assert canonical_body(POLICIES[0], body) == canonical
