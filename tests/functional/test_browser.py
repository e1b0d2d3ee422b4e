"""A recipient's whole journey in real headless Chromium, checked in the page and in ``status``.

Also writes the screenshots README.md shows (docs/screenshots/), in English and German.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.conftest import SCREENSHOTS, FakeClock, serving
from tests.helpers import event_rows, links_for, make_list, runner_for, transaction
from tests.smtp_sink import SmtpSink
from unsubsvc.db.models import OutgoingMail, SurveyResponse

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PUBLIC = "https://unsub.example.com"


def cli_status(app: Flask) -> dict[str, Any]:
    result = runner_for(app).invoke(args=["status", "--list", "news", "--email", "ann@example.com"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def shoot(page: Any, name: str, database_url: str) -> None:
    """Save the page at desktop and phone widths (once, from the SQLite run)."""
    if not database_url.startswith("sqlite"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])


def shoot_german(page: Any, name: str, database_url: str) -> None:
    """Shoot the page again with ``?lang=de`` (``NAME-de-phone.png``), then come back."""
    url = page.url
    page.goto(url.split("#")[0] + ("&" if "?" in url else "?") + "lang=de")
    shoot(page, f"{name}-de", database_url)
    page.goto(url)


def event_count(app: Flask) -> tuple[int, int]:
    """Events, and mail queued (a resubscribe confirmation is mail, not an event)."""
    with transaction(app) as session:
        mails = session.scalar(sa.select(sa.func.count()).select_from(OutgoingMail))
    return len(event_rows(app)), int(mails or 0)


def back_and_reload_change_nothing(page: Any, app: Flask) -> None:
    """Acceptance 4: after a form post, Reload and Back (and Reload there) repeat nothing."""
    before = event_count(app)
    page.reload()
    page.go_back()
    page.reload()
    page.go_forward()
    page.wait_for_load_state()
    assert event_count(app) == before


@pytest.fixture
def mail_server_url(mail_app: Flask) -> Iterator[str]:
    """Serve ``mail_app`` (mail goes to ``smtp_server``) like ``live_server`` serves ``app``."""
    with serving(mail_app) as base:
        yield base


def test_recipient_journey(
    app: Flask, live_server: str, page: Any, clock: FakeClock, database_url: str
) -> None:
    make_list(app)
    links = links_for(app, "Ann@Example.com", campaign="c1")
    landing = links.unsubscribe_url.replace(PUBLIC, live_server)

    # The landing page changes nothing and offers the preference center.
    page.goto(landing)
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Unsubscribe from News from Example?"
    )
    shoot(page, "landing", database_url)
    shoot_german(page, "landing", database_url)
    assert cli_status(app)["subscribed"] is True
    prefs_link = page.get_by_role("link", name="Manage your preferences")
    page.goto(prefs_link.get_attribute("href").replace(PUBLIC, live_server))
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Your preferences for News from Example"
    )
    assert "How often: Weekly" in page.locator("#summary").inner_text()
    shoot(page, "preferences", database_url)
    shoot_german(page, "preferences", database_url)

    # One form: less often, one topic off, a month's pause; one Save.
    page.get_by_label("Monthly").check()
    page.get_by_label("Events").uncheck()
    page.get_by_label("Pause for 1 month").check()
    page.get_by_role("button", name="Save preferences").click()
    assert page.url.endswith("?done=saved#status")
    assert "Saved" in page.locator("#status").inner_text()
    assert page.evaluate("document.activeElement.id") == "status"
    until = clock.now + timedelta(days=30)
    summary = page.locator("#summary").inner_text()
    assert "How often: Monthly" in summary
    assert "Topics: Product" in summary and "Events" not in summary
    assert "Paused until" in summary
    assert page.get_by_label("Monthly").is_checked()
    assert not page.get_by_label("Events").is_checked()
    assert page.get_by_label("Keep the current pause").is_checked()
    assert cli_status(app)["frequency"] == "monthly"
    assert cli_status(app)["topics"] == {"product": True, "events": False}
    assert cli_status(app)["paused_until"] == until.isoformat()
    back_and_reload_change_nothing(page, app)

    # Unsubscribe from the list: the quiet secondary action.
    page.get_by_role("button", name="Unsubscribe from News from Example").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    shoot(page, "confirmation", database_url)
    assert cli_status(app)["subscribed"] is False
    back_and_reload_change_nothing(page, app)

    # Answer the survey, with markup in the free text; the live count follows the typing.
    page.get_by_label("Too many emails").check()
    page.get_by_label("Anything else").fill("<b>weekly</b> was a lot")
    expect(page.locator("#comment-count")).to_have_text("23 of 500 characters")
    page.get_by_role("button", name="Send").click()
    assert "Thank you" in page.locator("#status").inner_text()
    assert page.get_by_role("button", name="Send").count() == 0  # the thanks replaced the form
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
        assert (answer.reason, answer.comment) == ("too_many", "<b>weekly</b> was a lot")
    back_and_reload_change_nothing(page, app)

    # Undo (inside the window): subscribed again, with the choices made before.
    page.get_by_role("button", name="Undo: resubscribe me").click()
    assert "subscribed again" in page.locator("#status").inner_text()
    assert cli_status(app) == {
        "list": "news",
        "email": "Ann@Example.com",
        "subscribed": True,
        "topics": {"product": True, "events": False},
        "frequency": "monthly",
        "paused_until": until.isoformat(),
    }
    back_and_reload_change_nothing(page, app)


def test_survey_over_the_limit_gets_a_message_and_keeps_the_text(
    app: Flask, live_server: str, page: Any
) -> None:
    make_list(app)
    page.goto(links_for(app).unsubscribe_url.replace(PUBLIC, live_server))
    page.get_by_role("button", name="Unsubscribe").click()
    text = "x" * 501
    page.get_by_label("Anything else").fill(text)  # no maxlength: the browser cuts nothing
    # The counter is a deferred script's: wait for it (it counts what is there when it runs).
    expect(page.locator("#comment-count")).to_contain_text("1 too many")
    page.get_by_role("button", name="Send").click()
    assert "longer than 500 characters" in page.get_by_role("alert").first.inner_text()
    assert page.get_by_label("Anything else").input_value() == text


def test_unsubscribe_with_cookies_blocked(
    app: Flask, live_server: str, browser: Any, database_url: str
) -> None:
    """Acceptance 1: in-app mail browsers block cookies; the button must still work."""
    make_list(app)
    context = browser.new_context(viewport=VIEWPORTS["phone"])

    def without_cookies(route: Any) -> None:
        """Send no Cookie and drop every Set-Cookie, as a browser blocking cookies does."""
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "cookie"}
        try:
            response = route.fetch(headers=headers)
            kept = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
            route.fulfill(response=response, headers=kept)
        except PlaywrightError as exc:  # a subresource the page abandoned when it navigated
            if "disposed" not in str(exc) and "closed" not in str(exc):
                raise

    try:
        context.route("**/*", without_cookies)
        page = context.new_page()
        page.goto(links_for(app).unsubscribe_url.replace(PUBLIC, live_server))
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
        assert cli_status(app)["subscribed"] is False
        assert [e.channel for e in event_rows(app)] == ["landing_page"]
        assert context.cookies() == []
        back_and_reload_change_nothing(page, app)
    finally:
        context.close()


def test_undo_expires_and_resubscribe_waits_for_the_mailed_link(
    mail_app: Flask,
    mail_server_url: str,
    page: Any,
    clock: FakeClock,
    smtp_server: SmtpSink,
) -> None:
    """Acceptance 2: undo in the window; after it, nothing changes until the mailed link."""
    app = mail_app
    make_list(app)
    landing = links_for(app).unsubscribe_url.replace(PUBLIC, mail_server_url)

    page.goto(landing)
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("button", name="Undo: resubscribe me").click()
    assert cli_status(app)["subscribed"] is True
    assert event_rows(app)[-1].detail == {"confirmed_by": "undo-link"}
    back_and_reload_change_nothing(page, app)

    # Unsubscribe again; let the undo window pass while the page stays open.
    page.goto(landing)
    page.get_by_role("button", name="Unsubscribe").click()
    clock.advance(minutes=31)
    page.get_by_role("button", name="Undo: resubscribe me").click()
    assert "no longer possible" in page.locator("#status").inner_text()
    assert cli_status(app)["subscribed"] is False

    page.get_by_role("button", name="Resubscribe by e-mail").click()
    assert "We sent a confirmation link" in page.locator("#status").inner_text()
    back_and_reload_change_nothing(page, app)  # no second mail either
    (message,) = smtp_server.wait_for(count=1, timeout=10)
    assert cli_status(app)["subscribed"] is False
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    link = re.search(r"https?://\S+/p/confirm/\S+", text.get_content())
    assert link is not None
    page.goto(link.group(0).replace(PUBLIC, mail_server_url))
    assert cli_status(app)["subscribed"] is False  # opening the link changes nothing
    page.get_by_role("button", name="Yes, resubscribe me").click()
    assert "subscribed again" in page.locator("#status").inner_text()
    assert cli_status(app)["subscribed"] is True
    assert event_rows(app)[-1].detail == {"confirmed_by": "email-link"}
    back_and_reload_change_nothing(page, app)


def test_pages_work_by_keyboard_alone(app: Flask, live_server: str, page: Any) -> None:
    make_list(app)
    landing = links_for(app).unsubscribe_url.replace(PUBLIC, live_server)
    page.goto(landing)
    # Tab to the Unsubscribe button and press Enter: no mouse, no JavaScript of ours.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Unsubscribe":
            break
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    assert cli_status(app)["subscribed"] is False
