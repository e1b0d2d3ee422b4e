"""Recipient pages and mail in the recipient's language (issue 11).

Order: ``?lang=``, then the stored choice, then ``Accept-Language``, then the
list's default, then UNSUBSVC_DEFAULT_LOCALE.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from babel.dates import format_date
from flask import Flask, render_template
from flask.testing import FlaskClient
from flask_babel import force_locale

from tests.helpers import links_for, make_list, path_of, transaction
from unsubsvc.core.action_links import ActionLinks, ManageSession, expiry
from unsubsvc.core.tokens import Purpose
from unsubsvc.db.models import MailingList, Subscriber
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.links import RecipientLinks
from unsubsvc.web import i18n
from unsubsvc.web.context import runtime_of

#: A phrase of base.html per language: every recipient page carries it.
SKIP = {
    "en": "Skip to content",
    "de": "Zum Inhalt springen",
    "fr": "Aller au contenu",
    "es": "Ir al contenido",
}


@pytest.fixture
def links(app: Flask) -> RecipientLinks:
    make_list(app)
    return links_for(app)


def pages(links: RecipientLinks) -> dict[str, str]:
    return {"landing": path_of(links.unsubscribe_url), "center": path_of(links.preferences_url)}


def language_of(client: FlaskClient, path: str, **headers: str) -> str:
    """Return the language a page is in, checking ``<html lang>`` and the text agree."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    found = [code for code, phrase in SKIP.items() if phrase in page]
    assert len(found) == 1, found
    assert f'<html lang="{found[0]}">' in page
    return found[0]


def store_locale(app: Flask, code: str | None) -> None:
    with transaction(app) as session:
        for subscriber in session.query(Subscriber):
            subscriber.locale = code


def list_default(app: Flask, code: str | None) -> None:
    with transaction(app) as session:
        for mailing_list in session.query(MailingList):
            mailing_list.default_locale = code


@pytest.mark.parametrize("page", ["landing", "center"])
@pytest.mark.parametrize(
    ("accept", "expected"),
    [("de", "de"), ("de-AT,de;q=0.9,en;q=0.5", "de"), ("fr-CA", "fr"), ("es", "es"), ("en", "en")],
    ids=["de", "de-AT", "fr-CA", "es", "en"],
)
def test_accept_language_chooses_the_page_language(
    app: Flask, links: RecipientLinks, page: str, accept: str, expected: str
) -> None:
    path = pages(links)[page]
    assert language_of(app.test_client(), path, **{"Accept-Language": accept}) == expected


@pytest.mark.parametrize("page", ["landing", "center"])
def test_lang_parameter_wins_over_the_browser(app: Flask, links: RecipientLinks, page: str) -> None:
    path = pages(links)[page] + "?lang=fr"
    assert language_of(app.test_client(), path, **{"Accept-Language": "de"}) == "fr"


def test_unknown_lang_parameter_is_ignored(app: Flask, links: RecipientLinks) -> None:
    path = pages(links)["center"] + "?lang=xx"
    assert language_of(app.test_client(), path, **{"Accept-Language": "es"}) == "es"


def test_stored_choice_beats_the_browser_but_not_the_url(app: Flask, links: RecipientLinks) -> None:
    store_locale(app, "es")
    client = app.test_client()
    for path in pages(links).values():
        assert language_of(client, path, **{"Accept-Language": "de"}) == "es"
        assert language_of(client, path + "?lang=fr", **{"Accept-Language": "de"}) == "fr"


def test_list_default_when_the_browser_names_nothing_we_ship(
    app: Flask, links: RecipientLinks
) -> None:
    client = app.test_client()
    path = pages(links)["center"]
    assert language_of(client, path, **{"Accept-Language": "ja"}) == "en"
    list_default(app, "de")
    assert language_of(client, path, **{"Accept-Language": "ja"}) == "de"
    assert language_of(client, path) == "de"
    assert language_of(client, path, **{"Accept-Language": "fr"}) == "fr"


@pytest.mark.parametrize("page", ["landing", "center"])
def test_picker_stores_the_choice_without_a_cookie(
    app: Flask, links: RecipientLinks, page: str
) -> None:
    client = app.test_client()
    path = pages(links)[page]
    form = client.get(path).get_data(as_text=True)
    assert f'action="{path}/language"' in form
    response = client.post(f"{path}/language", data={"lang": "de"})
    assert response.status_code == 303
    assert response.headers["Location"] == path
    assert "Set-Cookie" not in response.headers
    # A fresh client: the choice is stored with the recipient, not in the browser.
    assert language_of(app.test_client(), path, **{"Accept-Language": "fr"}) == "de"


def test_picker_refuses_a_language_we_do_not_ship(app: Flask, links: RecipientLinks) -> None:
    client = app.test_client()
    path = pages(links)["center"]
    assert client.post(f"{path}/language", data={"lang": "xx"}).status_code == 400
    assert language_of(client, path, **{"Accept-Language": "es"}) == "es"


@pytest.mark.parametrize("method", ["get", "head"])
def test_picker_get_changes_nothing(app: Flask, links: RecipientLinks, method: str) -> None:
    client = app.test_client()
    path = pages(links)["center"]
    response = getattr(client, method)(f"{path}/language?lang=de")
    assert response.status_code == 405
    assert language_of(client, path) == "en"


def test_picker_with_a_bad_token_changes_nothing(app: Flask, links: RecipientLinks) -> None:
    path = pages(links)["center"]
    response = app.test_client().post(f"{path}x/language", data={"lang": "de"})
    assert response.status_code in (400, 404)


def test_paused_until_is_a_date_in_the_page_language(app: Flask, links: RecipientLinks) -> None:
    runtime = runtime_of(app)
    token = path_of(links.preferences_url).rsplit("/", 1)[-1]
    with transaction(app) as session:
        payload = runtime.minter.signer.verify(Purpose.PREFERENCES, token, now=runtime.now())
        prefs.pause(session, svc.resolve(session, payload), "2w", now=runtime.now())
    until = (runtime.now() + timedelta(weeks=2)).date()
    page = (
        app.test_client()
        .get(path_of(links.preferences_url), headers={"Accept-Language": "de"})
        .get_data(as_text=True)
    )
    assert format_date(until, "long", locale="de") in page  # "16. März 2026"
    assert format_date(until, "MMMM", locale="en") not in page  # "March"


MAILS = {
    "mail/manage_link.txt": {"url": "https://unsub.example.com/m/x", "minutes": 60},
    "mail/resubscribe_confirm.txt": {
        "url": "https://unsub.example.com/c/x",
        "days": 7,
        "scope_text": "News",
    },
}
#: One sentence of each mail per language.
MAIL_PHRASES = {
    "mail/manage_link.txt": {
        "de": "Der Link funktioniert einmal und 60 Minuten lang.",
        "fr": "Le lien fonctionne une seule fois, pendant 60 minutes.",
        "es": "El enlace funciona una sola vez, durante 60 minutos.",
        "en": "The link works once, for 60 minutes.",
    },
    "mail/resubscribe_confirm.txt": {
        "de": "Der Link funktioniert 7 Tage lang.",
        "fr": "Le lien fonctionne pendant 7 jours.",
        "es": "El enlace funciona durante 7 días.",
        "en": "The link works for 7 days.",
    },
}


@pytest.mark.parametrize("template", sorted(MAILS))
@pytest.mark.parametrize("code", ["en", "de", "fr", "es"])
def test_mail_is_written_in_the_recipient_language(app: Flask, template: str, code: str) -> None:
    brand = SimpleNamespace(sender_name="Example", footer=None, privacy_url=None, logo_url=None)
    with app.test_request_context("/"), force_locale(code):
        text = render_template(template, brand=brand, **MAILS[template])
    assert MAIL_PHRASES[template][code] in text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("de", "Dieser Link ist abgelaufen."),
        ("fr", "Ce lien a expiré."),
        ("es", "Este enlace ha caducado."),
        ("en", "This link has expired."),
    ],
)
def test_core_messages_are_translated_at_the_web_layer(
    app: Flask, code: str, expected: str
) -> None:
    with app.test_request_context("/"), force_locale(code):
        assert i18n.translate("This link has expired.") == expected
        # What the catalogs do not know stays as it is.
        assert i18n.translate("list 'x' has no topic 'y'") == "list 'x' has no topic 'y'"


def test_picker_returns_to_the_page_it_was_on(app: Flask, links: RecipientLinks) -> None:
    client = app.test_client()
    center = pages(links)["center"]
    page = client.get(center + "?saved=1&lang=fr").get_data(as_text=True)
    # Neither the ?lang= (it would override the choice) nor a stale status go back.
    assert f'name="back" value="{center}"' in page
    sub_page = f"{center}/unsubscribed?scope=list"
    response = client.post(f"{center}/language", data={"lang": "es", "back": sub_page})
    assert response.headers["Location"] == sub_page


@pytest.mark.parametrize(
    "back",
    ["https://evil.example/p/x", "//evil.example/", "/admin", "/p/other-token", "/\\evil.example"],
    ids=["absolute", "scheme-relative", "other-page", "other-token", "backslash"],
)
def test_picker_goes_back_only_under_its_own_token(
    app: Flask, links: RecipientLinks, back: str
) -> None:
    center = pages(links)["center"]
    response = app.test_client().post(f"{center}/language", data={"lang": "de", "back": back})
    assert response.status_code == 303
    assert response.headers["Location"] == center


def test_picker_on_the_self_service_page(app: Flask, links: RecipientLinks) -> None:
    runtime = runtime_of(app)
    with transaction(app) as session:
        public_id = session.query(Subscriber).one().public_id
    token = ActionLinks(runtime.keyring).sign(ManageSession(public_id, expiry(runtime.now(), 3600)))
    path = f"/manage/s/{token}"
    client = app.test_client()
    assert f'action="{path}/language"' in client.get(path).get_data(as_text=True)
    response = client.post(f"{path}/language", data={"lang": "fr"})
    assert (response.status_code, response.headers["Location"]) == (303, path)
    assert "Set-Cookie" not in response.headers
    assert language_of(client, path, **{"Accept-Language": "de"}) == "fr"
    # The choice is the recipient's: the list's own pages follow it too.
    assert language_of(client, pages(links)["center"], **{"Accept-Language": "de"}) == "fr"


def test_no_picker_on_an_error_page(app: Flask, links: RecipientLinks) -> None:
    response = app.test_client().get(pages(links)["center"] + "x")
    assert response.status_code in (400, 404)
    assert "/language" not in response.get_data(as_text=True)
