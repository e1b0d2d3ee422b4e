"""Independent keys per purpose, derived from the configured secrets with HKDF.

One configured secret must not be one key for everything: a key recovered
from one public unsubscribe link would then forge an admin session. Each
purpose gets its own 256-bit key, HKDF-SHA256 (RFC 5869) of the secret with
the purpose in ``info``, so knowing one derived key tells nothing of another.
Rotation works per purpose: every configured secret yields a key for every
purpose, newest first; new signatures use the first, checks accept any.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_LENGTH = 32
#: RFC 5869 §3.1: a salt is optional, and a fixed one still separates this
#: application's keys from any other use of the same secret.
_SALT = b"unsubsvc key derivation v1"


class KeyPurpose(StrEnum):
    """What a derived key is for; each value is part of its HKDF ``info``."""

    UNSUBSCRIBE_LINKS = "unsubscribe-links"
    PREFERENCE_LINKS = "preference-links"
    #: The admin session cookie and CSRF tokens (Flask's ``SECRET_KEY``).
    SESSIONS = "sessions"
    #: Encrypting webhook signing secrets at rest.
    WEBHOOK_SECRETS = "webhook-secrets"
    #: Keyed hashes of addresses (erased addresses stay suppressed by hash).
    ADDRESS_HASH = "address-hash"
    #: Short-lived links unsubsvc mails or shows itself: undo, resubscribe
    #: confirmation, /manage sign-in (``core.action_links``; a salt per kind).
    ACTION_LINKS = "action-links"


def derive_key(secret: str | bytes, purpose: KeyPurpose) -> bytes:
    """Return the 32-byte key for ``purpose`` derived from ``secret``."""
    material = secret.encode() if isinstance(secret, str) else secret
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LENGTH,
        salt=_SALT,
        info=f"unsubsvc/{purpose.value}/v1".encode(),
    ).derive(material)


@dataclass(frozen=True)
class Keyring:
    """The configured secrets (newest first) and every key derived from them."""

    #: Out of the repr, like the derived keys: a repr ends up in logs and tracebacks.
    secrets: tuple[str, ...] = field(repr=False)
    _keys: dict[KeyPurpose, tuple[bytes, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if isinstance(self.secrets, str | bytes):
            # Keyring("secret") would otherwise be six one-letter secrets.
            raise TypeError("secrets is a sequence of secrets, not one secret")
        object.__setattr__(self, "secrets", tuple(self.secrets))
        if not self.secrets or not all(self.secrets):
            raise ValueError("at least one secret key is required, and none may be empty")
        for purpose in KeyPurpose:
            self._keys[purpose] = tuple(derive_key(s, purpose) for s in self.secrets)

    def keys(self, purpose: KeyPurpose) -> tuple[bytes, ...]:
        """Return the keys for ``purpose``, newest first (the first signs, any verifies)."""
        return self._keys[purpose]

    def current(self, purpose: KeyPurpose) -> bytes:
        """Return the key new signatures and ciphertexts for ``purpose`` use."""
        return self._keys[purpose][0]

    def address_hash(self, email_key: str) -> str:
        """Return the keyed hash of a case-folded address under the newest key.

        Kept instead of the address when it is erased: the address can be
        recognised when it comes back, and cannot be read back from the hash.
        """
        return _address_hash(self.current(KeyPurpose.ADDRESS_HASH), email_key)

    def address_hashes(self, email_key: str) -> tuple[str, ...]:
        """Return the address's hash under every key, to look it up across a rotation."""
        return tuple(_address_hash(k, email_key) for k in self.keys(KeyPurpose.ADDRESS_HASH))


def _address_hash(key: bytes, email_key: str) -> str:
    return hmac.new(key, email_key.encode(), hashlib.sha256).hexdigest()
