"""The application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from unsubsvc.core.addresses import mask_address
from unsubsvc.settings import load_settings
from unsubsvc.web import context, errors, hygiene, security
from unsubsvc.web.extensions import csrf, db, migrate

PACKAGE_DIR = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PACKAGE_DIR / "db" / "migrations"


def template_folder() -> Path:
    """Return where the templates are: inside the package when installed from a wheel,
    else the repository's top-level ``templates/``."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates"


def engine_options(url: str) -> dict[str, Any]:
    """Return engine options: check pooled connections, and never wait forever to connect."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # A server that drops packets must not hang a request (or an MTA pipe) for minutes.
        options["connect_args"] = {"connect_timeout": 10}
    return options


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``UNSUBSVC_*`` environment, then ``config`` overrides.

    The factory neither creates tables nor migrates: ``unsubsvc init`` does.
    """
    instance_path = os.environ.get("UNSUBSVC_INSTANCE_PATH") or None
    app = Flask(
        "unsubsvc",
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(template_folder()),
        static_folder=str(PACKAGE_DIR / "static"),
        root_path=str(PACKAGE_DIR),
    )
    settings = load_settings(Path(app.instance_path))
    app.config.from_mapping(
        SECRET_KEY=settings.secret_keys[0],
        SECRET_KEY_FALLBACKS=list(settings.secret_keys[1:]),
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        MAX_CONTENT_LENGTH=settings.max_body,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        # A landing page left open for hours must still submit; the token is tied
        # to the browser session, which is what CSRF protection needs.
        WTF_CSRF_TIME_LIMIT=None,
        UNSUBSVC_SECRET_KEYS=settings.secret_keys,
        UNSUBSVC_BASE_URL=settings.base_url,
        UNSUBSVC_MAILTO=settings.mailto,
        UNSUBSVC_TOKEN_MAX_AGE=settings.token_max_age,
        UNSUBSVC_SENDER_NAME=settings.sender_name,
        UNSUBSVC_ENV=settings.env,
    )
    if config is not None:
        app.config.update(config)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    context.install(app)
    security.init_app(app)
    hygiene.init_app(app)
    errors.init_app(app)

    from unsubsvc.web import api, center, health, oneclick

    app.register_blueprint(oneclick.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(center.bp)
    app.register_blueprint(health.bp)
    from unsubsvc.web import admin

    app.register_blueprint(admin.bp)

    from unsubsvc.cli import register_commands

    register_commands(app)

    app.add_template_filter(mask_address)

    @app.context_processor
    def sender() -> dict[str, Any]:
        return {"sender_name": app.config["UNSUBSVC_SENDER_NAME"]}

    return app
