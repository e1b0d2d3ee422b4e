"""Webhook secrets encrypted at rest (``core.secret_box``): round trip, rotation, legacy rows."""

from __future__ import annotations

import pytest

from unsubsvc.core.keys import Keyring
from unsubsvc.core.secret_box import SecretBox, UnreadableSecret, is_plaintext
from unsubsvc.core.webhooks import new_secret

OLD = "old-secret-key-" + "a" * 40
NEW = "new-secret-key-" + "b" * 40


def box(*secrets: str) -> SecretBox:
    return SecretBox.from_keyring(Keyring(secrets))


def test_round_trip_and_nothing_in_clear() -> None:
    secret = new_secret()
    sealed = box(NEW).seal(secret)
    assert secret not in sealed and not is_plaintext(sealed)
    assert sealed.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    assert box(NEW).open(sealed) == secret
    assert box(NEW).seal(secret) != sealed  # a fresh IV each time
    assert len(sealed) <= 500  # the column's length


def test_a_rotated_configuration_still_opens_old_ciphertexts_and_seals_with_the_newest() -> None:
    secret = new_secret()
    under_old = box(OLD).seal(secret)
    rotated = box(NEW, OLD)
    assert rotated.open(under_old) == secret
    assert not rotated.is_current(under_old)
    resealed = rotated.reseal(under_old)
    assert rotated.is_current(resealed)
    assert box(NEW).open(resealed) == secret  # the old key can go now
    assert box(NEW).open(rotated.seal(secret)) == secret


def test_legacy_plaintext_is_read_as_is_and_resealed() -> None:
    legacy = new_secret()
    assert is_plaintext(legacy)
    assert box(NEW).open(legacy) == legacy
    assert not box(NEW).is_current(legacy)
    resealed = box(NEW).reseal(legacy)
    assert box(NEW).is_current(resealed) and box(NEW).open(resealed) == legacy


@pytest.mark.parametrize(
    "stored", ["gAAAAAnot-a-token", "", "ünïcode"], ids=["garbage", "empty", "non-ascii"]
)
def test_what_no_key_opens_is_an_error(stored: str) -> None:
    with pytest.raises(UnreadableSecret):
        box(NEW).open(stored)
    assert not box(NEW).is_current(stored)


def test_a_removed_key_makes_its_ciphertexts_unreadable() -> None:
    with pytest.raises(UnreadableSecret, match="cannot be decrypted"):
        box(NEW).open(box(OLD).seal(new_secret()))


def test_keys_are_required() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        SecretBox([])
