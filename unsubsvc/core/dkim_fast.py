"""DKIM signatures made by dkimpy's code, with the private-key operation done by OpenSSL.

dkimpy computes RSA in pure Python (``dkim.crypto.RSASSA_PKCS1_v1_5_sign``),
about 80 signatures a second for a 2048-bit key, and has no hook to replace
that one call. ``Signer.signature`` therefore follows ``dkim.DKIM.sign`` and
``DomainSigner.gen_header`` (dkimpy 1.1) step for step, calling dkimpy's own
parser (``rfc822_parse``), canonicalisation (``CanonicalizationPolicy``, its
no-op regex passes skipped by ``dkim_canonical``), header selection and
hashing (``hash_headers``), folding (``fold``) and b= blanking (``RE_BTAG``),
and signs the resulting SHA-256 digest through
``cryptography``: RSASSA-PKCS1-v1_5 (RFC 8017 §8.2, RFC 6376 §3.3.1) or
Ed25519 over the digest (RFC 8463 §3). Both are deterministic, so the field
is byte-for-byte what ``dkim.sign`` writes for the same key and time; the
tests compare the two, and verify every signature with ``dkim.verify``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy

from unsubsvc.core.dkim_canonical import canonical_body, canonical_headers

HEADER_NAME = b"DKIM-Signature"
#: What dkimpy puts in b= while it folds, so that filling in the signature
#: later moves no other tag (dkim.DKIM.sign).
_B_PLACEHOLDER = b"0" * 60
_PREHASHED = Prehashed(hashes.SHA256())
_PKCS1 = padding.PKCS1v15()

Canonicalization = tuple[bytes, bytes]


class ParsedMessage:
    """A message as dkimpy parses it (``rfc822_parse``), with its body hash per canonicalisation.

    Only the fields a signature names are canonicalised: dkimpy's selection
    (``select_headers``) picks by name from the bottom up, so leaving out
    fields of other names selects the same ones.
    """

    def __init__(self, message: bytes) -> None:
        end = message.find(b"\r\n\r\n")
        if end >= 0 and message.count(b"\n") == message.count(b"\r\n"):
            # Every line ends in CRLF, so dkimpy's header section ends at the first
            # empty line and its body, split on line ends and joined with CRLF, is
            # the rest as it stands: parse only the header section.
            self.headers, _ = dkim.rfc822_parse(message[: end + 4])
            self.body = message[end + 4 :]
        else:
            self.headers, self.body = dkim.rfc822_parse(message)
        self._body_hashes: dict[bytes, bytes] = {}

    def body_hash(self, policy: CanonicalizationPolicy) -> bytes:
        """Return the base64 bh= value (RFC 6376 §3.7) under ``policy``'s body algorithm."""
        name: bytes = policy.body_algorithm.name
        known = self._body_hashes.get(name)
        if known is None:
            digest = hashlib.sha256(canonical_body(policy, self.body)).digest()
            known = self._body_hashes[name] = base64.b64encode(digest)
        return known

    def canonical_headers(
        self, policy: CanonicalizationPolicy, include: Sequence[bytes]
    ) -> list[tuple[bytes, bytes]]:
        """Return the fields named in ``include``, in order, canonicalised under ``policy``."""
        names = frozenset(include)
        return canonical_headers(
            policy, (field for field in self.headers if field[0].lower() in names)
        )


@dataclass(frozen=True)
class Signer:
    """One key ready to sign: parsed once, then reused for every message of a run."""

    domain: bytes
    selector: bytes
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    canonicalize: Canonicalization = (b"relaxed", b"relaxed")
    _policy: CanonicalizationPolicy = field(init=False, repr=False, compare=False)

    @property
    def algorithm(self) -> bytes:
        """The a= value the key makes (RFC 6376 §3.3, RFC 8463 §3)."""
        return b"rsa-sha256" if isinstance(self.key, rsa.RSAPrivateKey) else b"ed25519-sha256"

    def __post_init__(self) -> None:
        policy = CanonicalizationPolicy.from_c_value(b"/".join(self.canonicalize))
        object.__setattr__(self, "_policy", policy)

    def signature(
        self,
        message: bytes | ParsedMessage,
        include_headers: Sequence[bytes],
        *,
        timestamp: int | None = None,
    ) -> bytes:
        """Return the ``DKIM-Signature: ...`` field, CRLF-terminated, as ``dkim.sign`` would.

        ``message`` may come parsed (``ParsedMessage``), so that several keys
        signing one message parse it and hash its body once.
        Raises ValueError where dkimpy raises ParameterError: From not in
        ``include_headers``, or a field RFC 6376 §5.4 says not to sign.
        """
        parsed = message if isinstance(message, ParsedMessage) else ParsedMessage(message)
        include = tuple(name.lower() for name in include_headers)
        if b"from" not in include:
            raise ValueError("the From header field must be signed (RFC 6376 §5.4)")
        for name in sorted(set(include).intersection(dkim.DKIM.SHOULD_NOT)):
            raise ValueError(f"the {name.decode()} header field should not be signed")
        policy = self._policy
        algorithm = self.algorithm
        fields = [
            (b"v", b"1"),
            (b"a", algorithm),
            (b"c", policy.to_c_value()),
            (b"d", self.domain),
            (b"i", b"@" + self.domain),
            (b"q", b"dns/txt"),
            (b"s", self.selector),
            (b"t", str(int(time.time()) if timestamp is None else timestamp).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", parsed.body_hash(policy)),
            (b"b", _B_PLACEHOLDER),
        ]
        # RFC 6376 §3.7: the signature field itself is hashed last, with b= empty.
        value = b"; ".join(b"=".join(pair) for pair in fields)
        value = dkim.fold(value, namelen=len(HEADER_NAME), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = hashlib.sha256()
        dkim.hash_headers(
            hasher,
            policy,
            parsed.canonical_headers(policy, include),
            include,
            (HEADER_NAME, b" " + value),
            dict(fields),
        )
        fields[-1] = (b"b", base64.b64encode(self.sign_digest(hasher.digest())))
        value = b"; ".join(b"=".join(pair) for pair in fields) + b"\r\n"
        folded: bytes = dkim.fold(value, namelen=len(HEADER_NAME), linesep=b"\r\n")
        return HEADER_NAME + b": " + folded

    def sign_digest(self, digest: bytes) -> bytes:
        """Return the raw signature of a SHA-256 digest (RFC 6376 §3.3, RFC 8463 §3)."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, _PKCS1, _PREHASHED)
        return self.key.sign(digest)
