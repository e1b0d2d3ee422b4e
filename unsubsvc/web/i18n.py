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
from flask_babel import Babel, format_date, format_datetime, format_decimal, get_locale, gettext

from unsubsvc.core.languages import LANGUAGES, NATIVE_NAMES
from unsubsvc.web import context

__all__ = [
    "LANGUAGES",
    "babel",
    "init_app",
    "recipient_known",
    "select_locale",
    "translate",
    "use_recipient",
]

_RECIPIENT_LOCALE = "unsubsvc_recipient_locale"
_LIST_LOCALE = "unsubsvc_list_locale"

babel = Babel()


def use_recipient(*, stored: str | None, list_default: str | None) -> None:
    """Tell the locale selector the recipient's stored choice and the list's default."""
    setattr(g, _RECIPIENT_LOCALE, stored)
    setattr(g, _LIST_LOCALE, list_default)


def recipient_known() -> bool:
    """Return whether this request has loaded a recipient (``use_recipient`` was called)."""
    return hasattr(g, _RECIPIENT_LOCALE)


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


def N_(message: str) -> str:  # noqa: N802 - the name xgettext and pybabel look for
    """Mark ``message`` for extraction without translating it here."""
    return message


#: Messages written in English where Flask is not imported (the pure core, services)
#: that reach recipient pages. Marked here so they are extracted into the catalogs;
#: ``translate`` turns them into the page's language at the web layer.
KNOWN_MESSAGES = frozenset(
    {
        # unsubsvc.core.tokens, unsubsvc.core.action_links
        N_("This link is not valid: it may have been cut short or changed."),
        N_("This link is not one of ours."),
        N_("This link has expired."),
        # unsubsvc.services.unsubscribe
        N_("We have no subscriber for this link."),
        N_("The list this link belongs to no longer exists."),
        N_("The topic this link belongs to no longer exists."),
        # unsubsvc.web.errors
        N_("The request could not be understood."),
        N_("There is nothing at this address."),
        N_("This address does not accept that kind of request."),
        N_("The request is too large."),
        N_("The request's content type is not accepted here."),
        N_("Too many requests from your address. Please wait a minute and try again."),
        N_(
            "We cannot reach our database just now. Please try again in a few seconds; "
            "a change you asked for was not saved unless you saw it confirmed."
        ),
        N_("Something went wrong on our side. Nothing was changed."),
    }
)


def translate(message: str) -> str:
    """Return ``message`` in the page's language if it is one we know, else unchanged."""
    return gettext(message) if message in KNOWN_MESSAGES else message


def init_app(app: Flask) -> None:
    """Bind Flask-Babel, with the catalogs in ``unsubsvc/translations``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    # Dates and numbers in the page's language: {{ when | localdate }}, {{ n | localnumber }}.
    app.jinja_env.filters["localdate"] = format_date
    app.jinja_env.filters["localdatetime"] = format_datetime
    app.jinja_env.filters["localnumber"] = format_decimal
    # {% trans %} blocks lose their line breaks and indentation, as babel.cfg extracts them.
    app.jinja_env.policies["ext.i18n.trimmed"] = True

    @app.context_processor
    def language() -> dict[str, Any]:
        return {"current_locale": str(get_locale() or LANGUAGES[0]), "language_names": NATIVE_NAMES}
