"""dkimpy's canonicalisation (RFC 6376 §3.4), without the regex passes that would change nothing.

dkimpy's relaxed algorithm runs its regular expressions over every header
value and the whole body even when they match nothing but single spaces:
``compress_whitespace`` replaces each lone space with a space, which costs more
than hashing the body. Here each of dkimpy's own steps runs only when a
substring test (done in C) shows it could change something, so the bytes are
those of ``dkim.canonicalization`` in every case; ``tests/unit/test_dkim_canonical.py``
compares the two over random input. Simple canonicalisation goes straight to dkimpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dkim.canonicalization import (
    CanonicalizationPolicy,
    Relaxed,
    compress_whitespace,
    correct_empty_body,
    strip_trailing_lines,
    strip_trailing_whitespace,
    unfold_header_value,
)

#: A header field as dkimpy's ``rfc822_parse`` gives it: name, and value with its CRLFs.
Field = Sequence[bytes]


def canonical_body(policy: CanonicalizationPolicy, body: bytes) -> bytes:
    """Return ``policy.canonicalize_body(body)``."""
    if policy.body_algorithm is not Relaxed:
        result: bytes = policy.canonicalize_body(body)
        return result
    # Relaxed.canonicalize_body, step by step (RFC 6376 §3.4.4).
    if b" \r\n" in body or b"\t\r\n" in body:
        body = strip_trailing_whitespace(body)
    if b"\t" in body or b"  " in body:
        body = compress_whitespace(body)
    canonical: bytes = correct_empty_body(strip_trailing_lines(body))
    return canonical


def canonical_headers(
    policy: CanonicalizationPolicy, fields: Iterable[Field]
) -> list[tuple[bytes, bytes]]:
    """Return ``policy.canonicalize_headers(fields)`` as (name, value) pairs."""
    if policy.header_algorithm is not Relaxed:
        return [(name, value) for name, value in policy.canonicalize_headers(list(fields))]
    return [_relaxed_field(name, value) for name, value in fields]


def _relaxed_field(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """Relaxed.canonicalize_headers for one field (RFC 6376 §3.4.2)."""
    if value.endswith(b"\r\n") and value.count(b"\n") == 1:
        unfolded = value[:-2]  # the field's own line end is its only one: nothing to unfold
    else:
        unfolded = unfold_header_value(value)
    if b"\t" in unfolded or b"  " in unfolded:
        unfolded = compress_whitespace(unfolded)
    return name.lower().rstrip(), unfolded.strip() + b"\r\n"
