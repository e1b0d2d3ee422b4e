"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from unsubsvc.core.addresses import mask_address
from unsubsvc.core.keys import KeyPurpose
from unsubsvc.logs import mask_logger
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.web import (
    admin,
    admin_audit,
    admin_branding,
    admin_recipients,
    api,
    branding,
    center,
    context,
    errors,
    favicon,
    health,
    hygiene,
    i18n,
    language,
    limits,
    manage,
    oneclick,
    security,
)
from unsubsvc.web.esp import mailgun, postmark, sendgrid, ses
from unsubsvc.web.extensions import csrf

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def template_folder() -> Path:
    """Return where the templates are: inside the package when installed from a wheel,
    else the repository's top-level ``templates/``."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates"


def create_app(
    runtime: Runtime | None = None, *, flask_config: Mapping[str, Any] | None = None
) -> Flask:
    """Build the app over ``runtime`` (default: one built from the environment's Settings).

    ``flask_config`` is for Flask's own switches in tests (``TESTING``,
    ``WTF_CSRF_ENABLED``); unsubsvc's settings come from the runtime only.
    The factory neither creates tables nor migrates: ``unsubsvc init`` does.
    """
    runtime = build_runtime() if runtime is None else runtime
    settings = runtime.settings
    app = Flask(
        "unsubsvc",
        instance_path=str(settings.instance_path),
        template_folder=str(template_folder()),
        static_folder=str(PACKAGE_DIR / "static"),
        root_path=str(PACKAGE_DIR),
    )
    # Flask's "Exception on /u/<token>" and our own logs: tokens are credentials.
    mask_logger(app.logger)
    # Only what Flask and its extensions read.
    app.config.from_mapping(
        SECRET_KEY=runtime.keyring.current(KeyPurpose.SESSIONS),
        SECRET_KEY_FALLBACKS=list(runtime.keyring.keys(KeyPurpose.SESSIONS)[1:]),
        MAX_CONTENT_LENGTH=settings.max_body,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, has
        # Path=/ and no Domain, so no subdomain can plant or overwrite it (RFC 6265bis
        # §4.1.3.2). Production always has an https base URL (settings.load_settings).
        SESSION_COOKIE_NAME=(
            "__Host-session"
            if settings.production and settings.base_url.startswith("https://")
            else "session"
        ),
        # A landing page left open for hours must still submit; the token is tied
        # to the browser session, which is what CSRF protection needs.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if flask_config is not None:
        app.config.update(flask_config)

    # Registered first, so its after_request hook runs last: it commits what the view did.
    context.install(app, runtime)
    csrf.init_app(app)
    security.init_app(app)
    limits.init_app(app)
    hygiene.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    branding.init_app(app)

    app.register_blueprint(oneclick.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(center.bp)
    app.register_blueprint(language.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(favicon.bp)
    # Each provider module adds its route to the one /inbound blueprint.
    assert ses.bp is sendgrid.bp is postmark.bp is mailgun.bp  # noqa: S101
    app.register_blueprint(ses.bp)
    # admin_audit and admin_recipients add their pages to the console's blueprint.
    assert admin_audit.bp is admin_recipients.bp is admin_branding.bp is admin.bp  # noqa: S101
    app.register_blueprint(admin.bp)

    app.add_template_filter(mask_address)

    @app.context_processor
    def sender() -> dict[str, Any]:
        return {"sender_name": settings.sender_name}

    return app
