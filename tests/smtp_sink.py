"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping what it receives.

Optional STARTTLS or implicit TLS (a certificate made by ``make_certificate``),
AUTH with one user, and scripted answers to DATA (``replies``: e.g. a 451 first).
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    """One message as the server got it: envelope and the exact bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


def make_certificate(folder: Path) -> Path:
    """Write a self-signed certificate and key for 127.0.0.1/localhost; return the PEM path.

    The one file holds the certificate then the key: ``load_cert_chain`` reads
    both from it, and clients trust it as a CA file (``cafile`` or SSL_CERT_FILE).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.certificates import self_signed

    key = ec.generate_private_key(ec.SECP256R1())
    addresses = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = self_signed(key, "localhost", days=3, names=addresses, ca=True)
    path = folder / "smtp-cert.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.sink._lock:
            self.sink.attempts += 1
            if self.sink.replies:
                return self.sink.replies.pop(0)
            raw = bytes(envelope.original_content or envelope.content)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.sink.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), raw, parsed)
            )
            self.sink._arrived.notify_all()
        return "250 2.0.0 OK"


class _Controller(Controller):
    """aiosmtpd's Controller on port 0: learn the port the system chose before first use."""

    def factory(self) -> Any:
        # AUTH without STARTTLS (loopback, implicit TLS) is meant here: quiet aiosmtpd's warning.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()  # type: ignore[no-untyped-call]

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class SmtpSink:
    """A running SMTP server; ``url`` is what UNSUBSVC_SMTP_URL takes."""

    tls: str | None = None  # None, "starttls" or "smtps"
    certificate: Path | None = None
    user: str | None = None
    password: str | None = None
    #: Answers to DATA, used up first to last before messages are accepted.
    replies: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    logins: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller: _Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self.received]

    @property
    def url(self) -> str:
        scheme = {None: "smtp", "starttls": "smtp+starttls", "smtps": "smtps"}[self.tls]
        auth = (
            f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@"
            if self.user
            else ""
        )
        return f"{scheme}://{auth}{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            assert self.certificate is not None, "TLS needs a certificate (make_certificate)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate)
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.user is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd does not see implicit TLS as TLS: only STARTTLS counts.
                auth_require_tls=self.tls == "starttls",
            )
        controller = _Controller(_Handler(self), hostname=self.host, port=0, **kwargs)
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[EmailMessage]:
        """Wait until ``count`` messages have arrived; return them all (fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout} s, got {len(self.received)}"
                    )
                self._arrived.wait(left)
            return [r.message for r in self.received]

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        ):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
