"""Webhook signing secrets encrypted at rest, under keys that can be rotated.

A copy of the database (a backup, a replica, a leaked dump) must not let
anyone sign webhooks a receiver would trust. Secrets are stored as Fernet
tokens (AES-128-CBC with HMAC-SHA256, cryptography's ``fernet`` module) under
the keyring's ``WEBHOOK_SECRETS`` keys. ``MultiFernet`` encrypts with the
newest key and decrypts with any configured one, so a rotated configuration
still reads what the old key wrote.

Rows written before encryption hold the plaintext ``whsec_...``; a Fernet
token starts with its version byte 0x80 (``gAAAAA`` in base64) and never with
``whsec_``, so ``open`` tells them apart and accepts both.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from unsubsvc.core.keys import KeyPurpose, Keyring
from unsubsvc.core.webhooks import SECRET_PREFIX


class UnreadableSecret(ValueError):
    """A stored secret that no configured key decrypts (the key that wrote it was removed)."""


class SecretBox:
    """Encrypt secrets with the newest key; decrypt with any (and read legacy plaintext)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        # Fernet takes its 32-byte key (signing half, encryption half) in URL-safe base64.
        self._fernets = [Fernet(base64.urlsafe_b64encode(key)) for key in keys]
        self._multi = MultiFernet(self._fernets)

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> SecretBox:
        """Return the box for webhook secrets under ``keyring`` (its newest key first)."""
        return cls(keyring.keys(KeyPurpose.WEBHOOK_SECRETS))

    def seal(self, secret: str) -> str:
        """Return ``secret`` encrypted under the newest key, as ASCII text."""
        return self._multi.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """Return the secret ``stored`` holds: decrypted, or as is if it is legacy plaintext."""
        if is_plaintext(stored):
            return stored
        try:
            return self._multi.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise UnreadableSecret(
                "the webhook secret cannot be decrypted with any configured secret key"
            ) from exc

    def is_current(self, stored: str) -> bool:
        """Return whether ``stored`` is a ciphertext under the newest key (nothing to redo)."""
        if is_plaintext(stored):
            return False
        try:
            self._fernets[0].decrypt(stored.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def reseal(self, stored: str) -> str:
        """Return ``stored`` (plaintext or under any key) encrypted under the newest key."""
        return self.seal(self.open(stored))


def is_plaintext(stored: str) -> bool:
    """Return whether a stored secret predates encryption (a bare ``whsec_...``)."""
    return stored.startswith(SECRET_PREFIX)
