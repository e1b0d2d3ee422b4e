"""Self-signed certificates the tests make for themselves (SMTP over TLS, webhooks, SNS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    common_name: str,
    *,
    days: int = 2,
    names: Sequence[x509.GeneralName] = (),
    ca: bool = False,
    not_before: datetime | None = None,
) -> x509.Certificate:
    """Return a certificate for ``common_name`` signed by ``key`` itself, valid for ``days``
    from ``not_before`` (default: yesterday).

    ``names`` go into subjectAltName (what TLS clients check); ``ca`` lets a client
    trust it as its own CA file.
    """
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - timedelta(days=1) if not_before is None else not_before
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(key, hashes.SHA256())
