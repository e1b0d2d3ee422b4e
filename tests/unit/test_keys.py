"""Per-purpose keys: HKDF independence, rotation per purpose, address hashes across rotation."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from unsubsvc.core.keys import KEY_LENGTH, KeyPurpose, Keyring, derive_key

SECRET = "configured-secret-0123456789"
OLD = "older-secret-9876543210"


def test_derive_key_is_hkdf_sha256_of_the_secret_and_purpose() -> None:
    """The key is RFC 5869 HKDF-SHA256 with the purpose in ``info``, 32 bytes."""
    expected = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"unsubsvc key derivation v1",
        info=b"unsubsvc/sessions/v1",
    ).derive(SECRET.encode())
    assert derive_key(SECRET, KeyPurpose.SESSIONS) == expected
    assert len(expected) == KEY_LENGTH


def test_every_purpose_has_a_different_key() -> None:
    """Knowing one purpose's key says nothing of another's: they all differ."""
    keys = [derive_key(SECRET, purpose) for purpose in KeyPurpose]
    assert len(set(keys)) == len(keys) == len(KeyPurpose)


@pytest.mark.parametrize("purpose", list(KeyPurpose), ids=[p.value for p in KeyPurpose])
def test_no_derived_key_is_the_secret_or_a_plain_hash_of_it(purpose: KeyPurpose) -> None:
    """A derived key is neither the secret nor an obvious digest of it."""
    key = derive_key(SECRET, purpose)
    assert key != SECRET.encode()
    assert key not in {hashlib.sha256(SECRET.encode()).digest(), hashlib.sha256(key).digest()}
    for other in KeyPurpose:
        if other is not purpose:
            assert key != derive_key(SECRET, other)


def test_str_and_bytes_secrets_derive_the_same_key() -> None:
    """A secret read from the environment (str) derives as its UTF-8 bytes."""
    assert derive_key("clé", KeyPurpose.UNSUBSCRIBE_LINKS) == derive_key(
        "clé".encode(), KeyPurpose.UNSUBSCRIBE_LINKS
    )


@pytest.mark.parametrize("purpose", list(KeyPurpose), ids=[p.value for p in KeyPurpose])
def test_rotation_per_purpose(purpose: KeyPurpose) -> None:
    """Each purpose's keys follow the secrets, newest first: the first signs, all verify."""
    rotated = Keyring((SECRET, OLD))
    assert rotated.keys(purpose) == (derive_key(SECRET, purpose), derive_key(OLD, purpose))
    assert rotated.current(purpose) == Keyring((SECRET,)).current(purpose)
    assert rotated.keys(purpose)[1] == Keyring((OLD,)).current(purpose)


def test_keys_of_different_purposes_never_coincide_across_secrets() -> None:
    """No purpose's key under one secret equals another purpose's key under any secret."""
    keyring = Keyring((SECRET, OLD))
    for a, b in itertools.combinations(list(KeyPurpose), 2):
        assert not set(keyring.keys(a)) & set(keyring.keys(b))


def test_address_hash_is_keyed_with_the_address_hash_key() -> None:
    """An address hash is HMAC-SHA256 under the ADDRESS_HASH key, not a bare digest."""
    keyring = Keyring((SECRET,))
    key = keyring.current(KeyPurpose.ADDRESS_HASH)
    expected = hmac.new(key, b"ann@example.com", hashlib.sha256).hexdigest()
    assert keyring.address_hash("ann@example.com") == expected
    assert expected != hashlib.sha256(b"ann@example.com").hexdigest()


def test_address_hashes_across_rotation() -> None:
    """After rotation, an address erased under the old secret is still found by its hash."""
    erased_under_old = Keyring((OLD,)).address_hash("ann@example.com")
    rotated = Keyring((SECRET, OLD))
    hashes_now = rotated.address_hashes("ann@example.com")
    assert hashes_now[0] == rotated.address_hash("ann@example.com")
    assert erased_under_old in hashes_now
    assert erased_under_old != rotated.address_hash("ann@example.com")
    assert Keyring((SECRET,)).address_hashes("ann@example.com") == (hashes_now[0],)


@pytest.mark.parametrize(
    "secrets",
    [(), ("",), ("k", "")],
    ids=["none", "empty", "one-empty"],
)
def test_keyring_needs_non_empty_secrets(secrets: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="secret key"):
        Keyring(secrets)


def test_keyring_refuses_a_bare_string() -> None:
    """Keyring("secret") would otherwise be six one-letter secrets."""
    with pytest.raises(TypeError):
        Keyring("secret")  # type: ignore[arg-type]


def test_keyring_keeps_a_list_as_a_tuple() -> None:
    """A list of secrets is accepted and kept immutable."""
    keyring = Keyring([SECRET, OLD])  # type: ignore[arg-type]
    assert keyring.secrets == (SECRET, OLD)


def test_keyring_repr_does_not_show_the_secrets_or_keys() -> None:
    """Secrets and derived keys stay out of reprs (and so out of logs and tracebacks)."""
    keyring = Keyring((SECRET,))
    assert SECRET not in repr(keyring)
    for purpose in KeyPurpose:
        assert repr(keyring.current(purpose)) not in repr(keyring)
