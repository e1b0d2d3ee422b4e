"""Address checks, the case-insensitive matching key, and masking for display."""

from __future__ import annotations

import pytest

from unsubsvc.core.addresses import (
    MAX_ADDRESS_LENGTH,
    address_key,
    mask_address,
    normalize_address,
)
from unsubsvc.core.errors import InvalidInput

DOMAIN = "@example.com"

VALID = {
    "simple": ("ann@example.com", "ann@example.com"),
    "dotted-local": ("ann.lee@example.com", "ann.lee@example.com"),
    "plus-tag": ("ann+news@example.com", "ann+news@example.com"),
    "subdomain": ("ann@mail.example.co.uk", "ann@mail.example.co.uk"),
    "mixed-case-kept": ("Ann.Lee@Example.COM", "Ann.Lee@Example.COM"),
    "surrounding-space-trimmed": ("  ann@example.com\t\n", "ann@example.com"),
    "internationalized": ("josé@exämple.com", "josé@exämple.com"),
    "one-letter-parts": ("a@b.c", "a@b.c"),
    "max-length": ("a" * (MAX_ADDRESS_LENGTH - len(DOMAIN)) + DOMAIN, None),
}


@pytest.mark.parametrize(("address", "expected"), list(VALID.values()), ids=list(VALID))
def test_valid_address_is_returned_trimmed(address: str, expected: str | None) -> None:
    """A valid address comes back as given, only trimmed."""
    assert normalize_address(address) == (expected if expected is not None else address)


INVALID = {
    "empty": "",
    "blank": "   ",
    "no-at": "ann.example.com",
    "no-local-part": "@example.com",
    "no-domain": "ann@",
    "dotless-domain": "ann@localhost",
    "domain-only-dots": "ann@...",
    "leading-dot-domain": "ann@.com",
    "trailing-dot-domain": "ann@example.",
    "space-inside": "ann lee@example.com",
    "tab-inside": "ann\t@example.com",
    "newline-inside": "ann@example.com\nBcc: x@example.com",
    "nul": "ann\x00@example.com",
    "escape-char": "ann\x1b@example.com",
    "angle-brackets": "Ann <ann@example.com>",
    "comma-list": "ann@example.com,bob@example.com",
    "semicolon-list": "ann@example.com;bob@example.com",
    "too-long": "a" * (MAX_ADDRESS_LENGTH - len(DOMAIN) + 1) + DOMAIN,
}


@pytest.mark.parametrize("address", list(INVALID.values()), ids=list(INVALID))
def test_invalid_address_is_refused(address: str) -> None:
    """Anything that is not one plain address raises InvalidInput."""
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        normalize_address(address)


def test_double_at_is_refused() -> None:
    """'ann@@example.com' is not an address (the local part would hold a bare '@')."""
    with pytest.raises(InvalidInput):
        normalize_address("ann@@example.com")


def test_length_limit_counts_after_trimming() -> None:
    """Surrounding whitespace does not count towards the 254-character limit."""
    address = "a" * (MAX_ADDRESS_LENGTH - len(DOMAIN)) + DOMAIN
    assert len(address) == MAX_ADDRESS_LENGTH
    assert normalize_address(f"  {address}  ") == address


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ann@example.com", "ANN@EXAMPLE.COM"),
        ("Ann.Lee@example.com", "ann.lee@Example.Com"),
        ("ann+News@example.com", "ANN+news@EXAMPLE.com"),
        (" ann@example.com ", "Ann@Example.com"),
        ("STRASSE@example.com", "straße@example.com"),
    ],
    ids=["all-caps", "mixed-both-parts", "plus-tag", "whitespace", "casefold-eszett"],
)
def test_address_key_ignores_case_everywhere(first: str, second: str) -> None:
    """The key is the same however the local part and the domain are capitalised."""
    assert address_key(first) == address_key(second)


def test_address_key_value() -> None:
    """The key is the whole trimmed address, case-folded."""
    assert address_key("  Ann.Lee+X@Mail.Example.COM ") == "ann.lee+x@mail.example.com"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ann@example.com", "anne@example.com"),
        ("ann@example.com", "ann@example.org"),
        ("ann.lee@example.com", "annlee@example.com"),
        ("ann+a@example.com", "ann+b@example.com"),
    ],
    ids=["local-differs", "domain-differs", "dot-matters", "tag-matters"],
)
def test_address_key_distinguishes_different_addresses(first: str, second: str) -> None:
    """Only case is ignored: different addresses keep different keys."""
    assert address_key(first) != address_key(second)


def test_address_key_refuses_invalid_address() -> None:
    """A key is only made for a valid address."""
    with pytest.raises(InvalidInput):
        address_key("not an address")


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("ann.lee@example.com", "a•••••e@example.com"),
        ("ann@example.com", "a•n@example.com"),
        ("ab@example.com", "a•@example.com"),
        ("a@example.com", "a@example.com"),
        ("@example.com", "@example.com"),
        ("x@y@example.com", "x•y@example.com"),
        ("no-at-sign", "••••••••••"),
        ("", ""),
    ],
    ids=["long", "three", "two", "one", "empty-local", "last-at-splits", "no-at", "empty"],
)
def test_mask_address(address: str, masked: str) -> None:
    """Masking keeps the first and last character of the local part and the whole domain."""
    assert mask_address(address) == masked


def test_mask_hides_the_middle_of_the_local_part() -> None:
    """No character from the middle of a long local part survives masking."""
    masked = mask_address("jonathan.smith@example.com")
    local, _, domain = masked.partition("@")
    assert domain == "example.com"
    assert local == "j" + "•" * 12 + "h"
    assert "onathan" not in masked
