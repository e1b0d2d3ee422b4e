"""Sign ESP webhook payloads the way SNS and SendGrid do, with keys the tests make.

The providers' documented samples (tests/fixtures/esp/) carry placeholder
signatures; these helpers re-sign them so a test proves verification end to end.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.certificates import self_signed
from unsubsvc.core.esp_ses import canonical_string, parse_sns

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "esp"
CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)


def fixture(name: str) -> Any:
    """Return a sample payload from tests/fixtures/esp/, parsed."""
    return json.loads((FIXTURES / name).read_text())


#: When the tests' SNS certificates start to be valid: the day before the tests'
#: fixed clock (tests.conftest.FIXED_NOW); they last 31 days.
SNS_VALID_FROM = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class SnsSigner:
    """A self-signed certificate and its key, standing in for SNS's."""

    key: rsa.RSAPrivateKey
    pem: bytes

    certificate: x509.Certificate

    @classmethod
    def make(cls) -> SnsSigner:
        """A key whose certificate is valid for the tests' fixed clock (SNS_VALID_FROM on)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self_signed(key, "sns.amazonaws.com", days=31, not_before=SNS_VALID_FROM)
        return cls(key, cert.public_bytes(serialization.Encoding.PEM), cert)

    def sign(self, envelope: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """Return ``envelope`` with SignatureVersion, SigningCertURL (if absent) and Signature."""
        out = {**envelope, "SignatureVersion": version}
        out.setdefault("SigningCertURL", CERT_URL)
        out["Signature"] = "x"
        text = canonical_string(parse_sns(json.dumps(out).encode()))
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
        signature = self.key.sign(text, padding.PKCS1v15(), digest)
        out["Signature"] = base64.b64encode(signature).decode()
        return out


def sns_notification(message: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Return the documented SNS Notification sample carrying ``message`` (SES's JSON)."""
    envelope = fixture("ses_sns_notification.json")
    envelope["Message"] = json.dumps(message)
    envelope.update(overrides)
    return dict(envelope)


@dataclass(frozen=True)
class SendGridSigner:
    """An ECDSA P-256 key pair standing in for a SendGrid account's signed webhook."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls) -> SendGridSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str = "1772443800") -> dict[str, str]:
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
