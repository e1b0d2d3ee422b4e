"""Typed settings: defaults, then an optional ``.env`` file, then ``UNSUBSVC_*`` variables.

``Settings`` is the only source of configuration: the web app, the CLI and the
runtime they share read it, and Flask's ``app.config`` gets only what Flask and
its extensions read.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values, find_dotenv

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.key_strength import MIN_ENTROPY_BITS, assess_key, generate_key
from unsubsvc.core.languages import LANGUAGES
from unsubsvc.core.smtp_url import parse_smtp_url

log = logging.getLogger(__name__)

ENV_PREFIX = "UNSUBSVC_"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: A one-click POST is 26 bytes; nothing legitimate comes near this.
DEFAULT_MAX_BODY = 64 * 1024
#: 10,000 recipients with campaign ids fit in well under this.
DEFAULT_API_MAX_BODY = 4 * 1024 * 1024
#: Days delivered webhook rows and their attempts are kept before they are purged.
DEFAULT_WEBHOOK_RETENTION_DAYS = 30
#: Seconds a request may wait on the database (to connect, for a pooled connection,
#: for a lock, for a statement) before it answers 503: under the 3 s that load
#: balancers and mail clients are patient for.
DEFAULT_DATABASE_TIMEOUT = 2.0
#: Where Flask-Limiter keeps its counters: per process unless several servers share Redis.
DEFAULT_RATELIMIT_STORAGE_URL = "memory://"
#: Webhook endpoints one installation (one sender) may register.
DEFAULT_WEBHOOK_MAX_ENDPOINTS = 10
#: An admin session ends after this long without a request (OWASP ASVS V3.3: 30 minutes).
DEFAULT_ADMIN_IDLE_TIMEOUT = 30 * 60
#: ... and this long after sign-in, however active (a working day).
DEFAULT_ADMIN_SESSION_MAX_AGE = 12 * 60 * 60
#: How long the undo button on an unsubscribe confirmation works without a mailed link.
DEFAULT_UNDO_WINDOW = 30 * 60
#: How long a sign-in link mailed by /manage works (it works once).
DEFAULT_MANAGE_LINK_MAX_AGE = 60 * 60
#: How long a mailed resubscribe confirmation link works.
DEFAULT_CONFIRM_LINK_MAX_AGE = 7 * 24 * 60 * 60
#: Days sent or failed outgoing mail rows are kept before they are purged.
DEFAULT_MAIL_RETENTION_DAYS = 7
#: Pages and mail are in this language when nothing better is known.
DEFAULT_LOCALE = "en"
#: Soft bounces within the window after which an address is suppressed (reason ``bounced``).
DEFAULT_SOFT_BOUNCE_LIMIT = 3
DEFAULT_SOFT_BOUNCE_WINDOW_DAYS = 14
#: Where a spam complaint suppresses the address: every list of the sender, or just its list.
COMPLAINT_SCOPES = ("sender", "list")


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    """Everything unsubsvc reads from its environment, parsed and checked."""

    database_url: str
    secret_keys: tuple[str, ...]
    base_url: str = DEFAULT_BASE_URL
    env: str = "development"
    mailto: str | None = None
    token_max_age: int | None = None
    max_body: int = DEFAULT_MAX_BODY
    api_max_body: int = DEFAULT_API_MAX_BODY
    database_timeout: float = DEFAULT_DATABASE_TIMEOUT
    sender_name: str = "unsubsvc"
    webhook_retention_days: int = DEFAULT_WEBHOOK_RETENTION_DAYS
    #: Let webhooks reach loopback, private, link-local and metadata addresses (tests, labs).
    webhook_allow_private: bool = False
    webhook_max_endpoints: int = DEFAULT_WEBHOOK_MAX_ENDPOINTS
    ratelimit_storage_url: str = DEFAULT_RATELIMIT_STORAGE_URL
    #: Seconds; see DEFAULT_ADMIN_IDLE_TIMEOUT and DEFAULT_ADMIN_SESSION_MAX_AGE.
    admin_idle_timeout: int = DEFAULT_ADMIN_IDLE_TIMEOUT
    admin_session_max_age: int = DEFAULT_ADMIN_SESSION_MAX_AGE
    #: Where unsubsvc's own mail goes (``smtp://``, ``smtp+starttls://``, ``smtps://``,
    #: with optional ``USER:PASS@``); None: mail is queued but not sent.
    smtp_url: str | None = None
    #: The From address of that mail.
    mail_from: str = "unsubsvc@localhost"
    mail_retention_days: int = DEFAULT_MAIL_RETENTION_DAYS
    #: Seconds; see DEFAULT_UNDO_WINDOW, DEFAULT_MANAGE_LINK_MAX_AGE, DEFAULT_CONFIRM_LINK_MAX_AGE.
    undo_window: int = DEFAULT_UNDO_WINDOW
    manage_link_max_age: int = DEFAULT_MANAGE_LINK_MAX_AGE
    confirm_link_max_age: int = DEFAULT_CONFIRM_LINK_MAX_AGE
    default_locale: str = DEFAULT_LOCALE
    #: SendGrid's Event Webhook verification key: base64 DER (SubjectPublicKeyInfo), as
    #: SendGrid shows it; None: /inbound/sendgrid refuses every event.
    sendgrid_public_key: str | None = None
    #: ``(user, password)`` Postmark sends with HTTP basic auth; None: /inbound/postmark refuses.
    postmark_webhook_auth: tuple[str, str] | None = None
    #: Mailgun's HTTP webhook signing key; None: /inbound/mailgun refuses every event.
    mailgun_signing_key: str | None = None
    #: SNS topic ARNs /inbound/ses accepts; empty: any topic (the signature is still checked).
    ses_topic_arns: tuple[str, ...] = ()
    soft_bounce_limit: int = DEFAULT_SOFT_BOUNCE_LIMIT
    soft_bounce_window_days: int = DEFAULT_SOFT_BOUNCE_WINDOW_DAYS
    #: ``sender`` (every list) or ``list`` (the complaint's list only).
    complaint_scope: str = "sender"
    instance_path: Path = field(default_factory=lambda: default_instance_path())
    generated_secret: bool = field(default=False, compare=False)
    #: Whether the base URL came from UNSUBSVC_BASE_URL (else links may follow the served port).
    base_url_configured: bool = field(default=False, compare=False)

    @property
    def production(self) -> bool:
        return self.env == "production"


def default_instance_path() -> Path:
    """Return the instance folder used when ``UNSUBSVC_INSTANCE_PATH`` is not set.

    It depends on the Python environment only (``<venv>/var/unsubsvc-instance``),
    never on how unsubsvc was installed there: an editable install and a wheel in
    the same virtualenv share one database and one development key.
    """
    return Path(sys.prefix) / "var" / "unsubsvc-instance"


def read_environment() -> dict[str, str]:
    """Return the process environment over the nearest ``.env`` file (the environment wins)."""
    found = find_dotenv(usecwd=True)
    values = {k: v for k, v in dotenv_values(found).items() if v is not None} if found else {}
    return {**values, **os.environ}


def load_settings(
    instance_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from ``environ`` (default: the environment over ``.env``).

    Refuse unsafe production setups with a ConfigError that says what to set.
    """
    env = read_environment() if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name, "").strip()
        return value or None

    if instance_path is None:
        configured_instance = get("INSTANCE_PATH")
        instance_path = (
            Path(configured_instance).expanduser().absolute()
            if configured_instance
            else default_instance_path()
        )

    mode = (get("ENV") or "development").lower()
    if mode not in {"development", "production", "testing"}:
        raise ConfigError(f"UNSUBSVC_ENV must be development, production or testing, not {mode!r}")

    base_url = (get("BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"UNSUBSVC_BASE_URL must be an absolute http(s) URL, not {base_url!r}")

    keys = tuple(k.strip() for k in (get("SECRET_KEY") or "").split(",") if k.strip())
    generated = False
    if mode == "production":
        if not keys:
            raise ConfigError("UNSUBSVC_ENV=production needs UNSUBSVC_SECRET_KEY")
        if parts.scheme != "https":
            raise ConfigError("UNSUBSVC_ENV=production needs an https UNSUBSVC_BASE_URL")
    if keys:
        # After the https check: a production setup on http is refused for that first.
        _check_key_strength(keys, production=mode == "production")
    else:
        keys = (_development_key(instance_path),)
        generated = True

    mailto = get("MAILTO")
    if mailto is not None:
        try:
            mailto = normalize_address(mailto)
        except InvalidInput as exc:
            raise ConfigError(f"UNSUBSVC_MAILTO: {exc}") from exc

    smtp_url = get("SMTP_URL")
    if smtp_url is not None:
        try:
            parse_smtp_url(smtp_url)
        except ValueError as exc:
            raise ConfigError(
                "UNSUBSVC_SMTP_URL must look like smtp://HOST:PORT, "
                "smtp+starttls://USER:PASS@HOST:PORT or smtps://HOST:PORT"
            ) from exc
    mail_from = get("MAIL_FROM")
    if mail_from is not None:
        try:
            mail_from = normalize_address(mail_from)
        except InvalidInput as exc:
            raise ConfigError(f"UNSUBSVC_MAIL_FROM: {exc}") from exc
    else:
        host = parts.hostname or "localhost"
        mail_from = f"unsubsvc@{host if '.' in host and not host[-1].isdigit() else 'localhost'}"
    default_locale = (get("DEFAULT_LOCALE") or DEFAULT_LOCALE).lower()
    if default_locale not in LANGUAGES:
        raise ConfigError(
            f"UNSUBSVC_DEFAULT_LOCALE must be one of {', '.join(LANGUAGES)}, not {default_locale!r}"
        )
    postmark_auth: tuple[str, str] | None = None
    if (postmark_value := get("POSTMARK_WEBHOOK_AUTH")) is not None:
        user, colon, password = postmark_value.partition(":")
        if not (user and colon and password):
            raise ConfigError("UNSUBSVC_POSTMARK_WEBHOOK_AUTH must look like user:password")
        postmark_auth = (user, password)
    complaint_scope = (get("COMPLAINT_SCOPE") or "sender").lower()
    if complaint_scope not in COMPLAINT_SCOPES:
        raise ConfigError(
            f"UNSUBSVC_COMPLAINT_SCOPE must be sender or list, not {complaint_scope!r}"
        )

    return Settings(
        database_url=normalize_database_url(
            get("DATABASE_URL") or f"sqlite:///{instance_path / 'unsubsvc.sqlite'}"
        ),
        secret_keys=keys,
        base_url=base_url,
        env=mode,
        mailto=mailto,
        token_max_age=_positive_int(get("TOKEN_MAX_AGE"), "UNSUBSVC_TOKEN_MAX_AGE"),
        max_body=_positive_int(get("MAX_BODY"), "UNSUBSVC_MAX_BODY") or DEFAULT_MAX_BODY,
        api_max_body=(
            _positive_int(get("API_MAX_BODY"), "UNSUBSVC_API_MAX_BODY") or DEFAULT_API_MAX_BODY
        ),
        database_timeout=_positive_seconds(get("DATABASE_TIMEOUT"), "UNSUBSVC_DATABASE_TIMEOUT")
        or DEFAULT_DATABASE_TIMEOUT,
        sender_name=get("SENDER_NAME") or "unsubsvc",
        webhook_retention_days=(
            _positive_int(get("WEBHOOK_RETENTION_DAYS"), "UNSUBSVC_WEBHOOK_RETENTION_DAYS")
            or DEFAULT_WEBHOOK_RETENTION_DAYS
        ),
        webhook_allow_private=_flag(get("WEBHOOK_ALLOW_PRIVATE"), "UNSUBSVC_WEBHOOK_ALLOW_PRIVATE"),
        webhook_max_endpoints=(
            _positive_int(get("WEBHOOK_MAX_ENDPOINTS"), "UNSUBSVC_WEBHOOK_MAX_ENDPOINTS")
            or DEFAULT_WEBHOOK_MAX_ENDPOINTS
        ),
        ratelimit_storage_url=get("RATELIMIT_STORAGE_URL") or DEFAULT_RATELIMIT_STORAGE_URL,
        admin_idle_timeout=(
            _positive_int(get("ADMIN_IDLE_TIMEOUT"), "UNSUBSVC_ADMIN_IDLE_TIMEOUT")
            or DEFAULT_ADMIN_IDLE_TIMEOUT
        ),
        admin_session_max_age=(
            _positive_int(get("ADMIN_SESSION_MAX_AGE"), "UNSUBSVC_ADMIN_SESSION_MAX_AGE")
            or DEFAULT_ADMIN_SESSION_MAX_AGE
        ),
        smtp_url=smtp_url,
        mail_from=mail_from,
        mail_retention_days=(
            _positive_int(get("MAIL_RETENTION_DAYS"), "UNSUBSVC_MAIL_RETENTION_DAYS")
            or DEFAULT_MAIL_RETENTION_DAYS
        ),
        undo_window=_positive_int(get("UNDO_WINDOW"), "UNSUBSVC_UNDO_WINDOW")
        or DEFAULT_UNDO_WINDOW,
        manage_link_max_age=(
            _positive_int(get("MANAGE_LINK_MAX_AGE"), "UNSUBSVC_MANAGE_LINK_MAX_AGE")
            or DEFAULT_MANAGE_LINK_MAX_AGE
        ),
        confirm_link_max_age=(
            _positive_int(get("CONFIRM_LINK_MAX_AGE"), "UNSUBSVC_CONFIRM_LINK_MAX_AGE")
            or DEFAULT_CONFIRM_LINK_MAX_AGE
        ),
        default_locale=default_locale,
        sendgrid_public_key=get("SENDGRID_PUBLIC_KEY"),
        postmark_webhook_auth=postmark_auth,
        mailgun_signing_key=get("MAILGUN_SIGNING_KEY"),
        ses_topic_arns=tuple(
            arn.strip() for arn in (get("SES_TOPIC_ARNS") or "").split(",") if arn.strip()
        ),
        soft_bounce_limit=_positive_int(get("SOFT_BOUNCE_LIMIT"), "UNSUBSVC_SOFT_BOUNCE_LIMIT")
        or DEFAULT_SOFT_BOUNCE_LIMIT,
        soft_bounce_window_days=(
            _positive_int(get("SOFT_BOUNCE_WINDOW_DAYS"), "UNSUBSVC_SOFT_BOUNCE_WINDOW_DAYS")
            or DEFAULT_SOFT_BOUNCE_WINDOW_DAYS
        ),
        complaint_scope=complaint_scope,
        instance_path=instance_path,
        generated_secret=generated,
        base_url_configured=get("BASE_URL") is not None,
    )


def _positive_seconds(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"{name} must be a number of seconds above 0, not {value!r}")
    return seconds


def normalize_database_url(url: str) -> str:
    """Point bare ``postgresql://`` URLs at psycopg 3, the driver unsubsvc ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _check_key_strength(keys: tuple[str, ...], *, production: bool) -> None:
    """Refuse (production) or log (development, testing) every weak configured key.

    An older rotation key counts as much as the newest: links signed with it
    are still accepted, so it can be brute-forced from one and forge others.
    The message says which key (by position) and why, never the key itself.
    """
    for position, key in enumerate(keys, start=1):
        found = assess_key(key)
        if found.strong:
            continue
        which = (
            "UNSUBSVC_SECRET_KEY"
            if len(keys) == 1
            else f"UNSUBSVC_SECRET_KEY (key {position} of {len(keys)}, newest first)"
        )
        message = (
            f"{which} is {found.explain()}: production needs random keys of at least "
            f"{MIN_ENTROPY_BITS} bits. Make one with 'unsubsvc secret generate' and put it "
            "first (UNSUBSVC_SECRET_KEY=new,old); drop any weak older key, even though "
            "links signed with it then stop working"
        )
        if production:
            raise ConfigError(message)
        log.warning("%s (refused in production)", message)


def _development_key(instance_path: Path) -> str:
    """Return a key generated once and kept in the instance folder (development only)."""
    path = instance_path / "secret_key"
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return existing
        path.unlink()  # an empty file is a failed earlier write: make a new key
    key = generate_key()
    try:
        instance_path.mkdir(parents=True, exist_ok=True)
        # Write a private temporary file, then link it into place: the key file
        # appears whole or not at all, and a process that loses the race reads the winner's.
        fd, tmp = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")
    except OSError as exc:
        raise ConfigError(
            f"cannot keep a development key in {instance_path} ({exc.strerror}); "
            "set UNSUBSVC_INSTANCE_PATH to a writable folder, or set UNSUBSVC_SECRET_KEY"
        ) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    log.warning(
        "UNSUBSVC_SECRET_KEY is not set: generated a development key in %s. "
        "Set UNSUBSVC_SECRET_KEY in production.",
        path,
    )
    return key


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true or false), not {value!r}")


def _positive_int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds/bytes") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive")
    return number
