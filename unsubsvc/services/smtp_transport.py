"""Send messages over SMTP as ``UNSUBSVC_SMTP_URL`` says: plain, STARTTLS or implicit TLS.

``smtp+starttls://`` requires STARTTLS and refuses to send when the server does
not offer it (a stripped EHLO answer must not downgrade to plain text).
Certificates are verified against the system's CAs (``SSL_CERT_FILE`` points
OpenSSL at a private CA). Credentials go only over TLS, or to a loopback relay.
Every connect and command times out. Errors carry the server's answer, never
the password or the URL.
"""

from __future__ import annotations

import smtplib
import ssl
from types import TracebackType

from unsubsvc.core.smtp_url import SmtpTarget, parse_smtp_url

#: Seconds for the connection and each SMTP command (smtplib applies it to every socket call).
DEFAULT_TIMEOUT = 10.0
MAX_ERROR_LENGTH = 500


__all__ = ["SendError", "SmtpTarget", "SmtpTransport", "parse_smtp_url", "tls_context"]


class SendError(Exception):
    """A message was not sent; ``permanent`` when retrying cannot help (an SMTP 5xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message[:MAX_ERROR_LENGTH])
        self.permanent = permanent


def tls_context() -> ssl.SSLContext:
    """Return a client context that verifies the certificate and the host name."""
    return ssl.create_default_context()


class SmtpTransport:
    """One SMTP connection, opened on first use and again after a failure; a context manager."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = parse_smtp_url(url)
        self.timeout = timeout
        self.context = context
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, mail_from: str, recipient: str, message: bytes) -> None:
        """Send ``message`` to ``recipient``; raise SendError saying whether to retry."""
        try:
            smtp = self._connection()
            options = ["SMTPUTF8"] if not (recipient + mail_from).isascii() else []
            if options and not smtp.has_extn("smtputf8"):
                raise SendError(
                    "the SMTP server does not accept non-ASCII addresses (SMTPUTF8)",
                    permanent=True,
                )
            smtp.sendmail(mail_from, [recipient], message, mail_options=options)
        except SendError:
            self.close()
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._refused(code, text) from None
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are the configuration's fault, not the message's: retry.
            self.close()
            raise SendError(self._describe("AUTH refused", exc.smtp_code, exc.smtp_error)) from None
        except smtplib.SMTPResponseException as exc:
            raise self._refused(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused or dropped connections, timeouts, TLS failures: try again later.
            self.close()
            raise SendError(self._scrub(f"{type(exc).__name__}: {exc}")) from None

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        target = self.target
        context = self.context or tls_context()
        smtp: smtplib.SMTP
        if target.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            encrypted = target.scheme == "smtps"
            if target.scheme == "smtp+starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(f"{target} does not offer STARTTLS; not sending in the clear")
                smtp.starttls(context=context)
                smtp.ehlo()
                encrypted = True
            if target.username is not None:
                if not encrypted and not target.loopback:
                    raise SendError(
                        f"{target}: not sending credentials without TLS; "
                        "use smtp+starttls:// or smtps://"
                    )
                smtp.login(target.username, target.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _refused(self, code: int, text: bytes | str) -> SendError:
        """Return the error for an SMTP refusal: 5xx is permanent (RFC 5321 §4.2.1)."""
        return SendError(self._describe("refused", code, text), permanent=500 <= code < 600)

    def _describe(self, what: str, code: int, text: bytes | str) -> str:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return self._scrub(f"{what}: {code} {text}")

    def _scrub(self, text: str) -> str:
        password = self.target.password
        if password:
            text = text.replace(password, "***")
        return text
