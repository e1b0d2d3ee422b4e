"""Languages of the recipient pages (Flask-Babel): which one a request gets.

The order (first that names a language we ship wins): ``?lang=`` on the URL,
the recipient's stored choice, the browser's ``Accept-Language``, the list's
default, then ``UNSUBSVC_DEFAULT_LOCALE``. Views that load a recipient call
``use_recipient`` so that the stored choice and the list default are known
before the page is rendered.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request
from flask_babel import Babel, get_locale

from unsubsvc.web import context

#: The languages with complete catalogs (English is the source language).
LANGUAGES = ("en", "de", "fr", "es")

_RECIPIENT_LOCALE = "unsubsvc_recipient_locale"
_LIST_LOCALE = "unsubsvc_list_locale"

babel = Babel()


def use_recipient(*, stored: str | None, list_default: str | None) -> None:
    """Tell the locale selector the recipient's stored choice and the list's default."""
    setattr(g, _RECIPIENT_LOCALE, stored)
    setattr(g, _LIST_LOCALE, list_default)


def supported(code: str | None) -> str | None:
    """Return the shipped language ``code`` names (``de-AT`` → ``de``), or None."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def select_locale() -> str:
    """Return the language of this request (see the module docstring for the order)."""
    chosen = supported(request.args.get("lang")) or supported(g.get(_RECIPIENT_LOCALE))
    if chosen:
        return chosen
    browser = request.accept_languages.best_match(LANGUAGES)
    if browser:
        return browser
    return (
        supported(g.get(_LIST_LOCALE))
        or supported(context.settings().default_locale)
        or LANGUAGES[0]
    )


def init_app(app: Flask) -> None:
    """Bind Flask-Babel, with the catalogs in ``unsubsvc/translations``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def language() -> dict[str, Any]:
        return {"current_locale": str(get_locale() or LANGUAGES[0])}
