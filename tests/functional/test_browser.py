"""A recipient's whole journey in real headless Chromium, checked in the page and in ``status``.

Also writes the screenshots README.md shows (docs/screenshots/).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import SCREENSHOTS, FakeClock
from tests.helpers import links_for, make_list, runner_for, transaction
from unsubsvc.db.models import SurveyResponse

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


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


def test_recipient_journey(
    app: Flask, live_server: str, page: Any, clock: FakeClock, database_url: str
) -> None:
    make_list(app)
    links = links_for(app, "Ann@Example.com", campaign="c1")
    landing = links.unsubscribe_url.replace("https://unsub.example.com", live_server)

    # The landing page changes nothing and offers the preference center.
    page.goto(landing)
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Unsubscribe from News from Example?"
    )
    shoot(page, "landing", database_url)
    assert cli_status(app)["subscribed"] is True
    prefs_link = page.get_by_role("link", name="Manage your preferences")
    page.goto(prefs_link.get_attribute("href").replace("https://unsub.example.com", live_server))
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Your preferences for News from Example"
    )
    shoot(page, "preferences", database_url)

    # Downgrade to monthly.
    page.get_by_label("Monthly").check()
    page.get_by_role("button", name="Save how often").click()
    assert "you will get monthly mail" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Monthly").is_checked()
    assert cli_status(app)["frequency"] == "monthly"

    # Opt out of one topic.
    page.get_by_label("Events").uncheck()
    page.get_by_role("button", name="Save topics").click()
    assert "Saved your topics" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Product").is_checked()
    assert not page.get_by_label("Events").is_checked()
    assert cli_status(app)["topics"] == {"product": True, "events": False}

    # Pause for a month.
    page.get_by_label("1 month").check()
    page.get_by_role("button", name="Pause mail").click()
    until = clock.now + timedelta(days=30)
    assert f"paused until {until.day} {until:%B %Y}" in page.locator("#paused-until").inner_text()
    assert cli_status(app)["paused_until"] == until.isoformat()

    # Unsubscribe from the list.
    page.get_by_role("button", name="Unsubscribe from News from Example").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    shoot(page, "confirmation", database_url)
    assert cli_status(app)["subscribed"] is False

    # Answer the survey, with markup in the free text.
    page.get_by_label("Too many emails").check()
    page.get_by_label("Anything else").fill("<b>weekly</b> was a lot")
    page.get_by_role("button", name="Send").click()
    assert "your answer was saved" in page.get_by_role("status").first.inner_text()
    with transaction(app) as session:
        answer = session.scalars(sa.select(SurveyResponse)).one()
        assert (answer.reason, answer.comment) == ("too_many", "<b>weekly</b> was a lot")

    # Undo: subscribed again, with the choices made before.
    page.get_by_role("button", name="Undo: resubscribe me").click()
    assert "subscribed again" in page.get_by_role("status").inner_text()
    assert cli_status(app) == {
        "list": "news",
        "email": "Ann@Example.com",
        "subscribed": True,
        "topics": {"product": True, "events": False},
        "frequency": "monthly",
        "paused_until": until.isoformat(),
    }


def test_pages_work_by_keyboard_alone(app: Flask, live_server: str, page: Any) -> None:
    make_list(app)
    landing = links_for(app).unsubscribe_url.replace("https://unsub.example.com", live_server)
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
