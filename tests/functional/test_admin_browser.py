"""The admin console in real headless Chromium: sign-in, charts, inert user text, screenshots.

Writes docs/screenshots/admin-*-desktop.png (from the SQLite run).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import SCREENSHOTS, ApiClient, FakeClock
from tests.helpers import CommandRunner, links_for, make_list, path_of, transaction
from unsubsvc.core.tokens import Purpose
from unsubsvc.db.models import MailingList, Subscriber, Subscription
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.web.context import runtime_of

pytestmark = pytest.mark.browser

EMAIL = "ops@example.com"
PASSWORD = "a long admin passphrase"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
DESKTOP = {"width": 1280, "height": 900}
#: Weekly sends of the main list: (campaign, delivered, unsubscribes); the fifth is a spike.
SENDS = (
    ("2026-01-welcome-back", 4_200, 7),
    ("2026-01-new-arrivals", 4_150, 9),
    ("2026-02-winter-sale", 4_180, 8),
    ("2026-02-style-guide", 4_120, 10),
    ("2026-02-flash-promo", 4_100, 46),
    ("2026-02-care-tips", 4_060, 9),
    ("2026-03-spring-preview", 4_020, 14),
)
ANSWERS = (
    ("not_relevant", XSS),
    ("not_relevant", "I signed up for the style guides, not daily promotions."),
    ("too_many", "Four mails in one week is too much for me.\nMonthly would be fine."),
    ("too_many", None),
    ("not_relevant", '=HYPERLINK("http://evil.example","prize")'),
    ("never_signed_up", "I do not remember signing up at all."),
    ("found_alternative", "I follow you on social media instead."),
    (None, "Please stop, thanks."),
)


def shoot(page: Any, name: str, database_url: str) -> None:
    """Save the page at desktop width (once, from the SQLite run)."""
    if not database_url.startswith("sqlite"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)


def one_click(app: Flask, email: str, campaign: str, list_name: str = "news") -> None:
    uri = path_of(links_for(app, email, list_name=list_name, campaign=campaign).unsubscribe_url)
    with app.test_client().post(uri, data="List-Unsubscribe=One-Click") as response:
        assert response.status_code == 200


def answer(app: Flask, email: str, campaign: str, reason: str | None, comment: str | None) -> None:
    token = path_of(links_for(app, email, campaign=campaign).preferences_url).rsplit("/", 1)[1]
    with transaction(app) as session:
        payload = runtime_of(app).minter.signer.verify(Purpose.PREFERENCES, token)
        target = svc.resolve(session, payload)
        prefs.record_survey(session, target, reason, comment, now=runtime_of(app).now())


def deliver(runner: CommandRunner, list_name: str, campaign: str, count: int, at: str) -> None:
    result = runner.invoke(
        args=["delivered", "--list", list_name, "--campaign", campaign, "--count", str(count),
              "--sent-at", at]
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def add_members(app: Flask, prefix: str, count: int, joined: datetime) -> list[str]:
    """Subscribe ``count`` addresses to the news list at ``joined`` (bulk: only the rows)."""
    emails = [f"{prefix}-{i}@example.com" for i in range(count)]
    with transaction(app) as session:
        list_id = session.scalar(sa.select(MailingList.id).where(MailingList.name == "news"))
        people = [
            Subscriber(public_id=f"{prefix}x{i:06d}", email=e, email_key=e, created_at=joined)
            for i, e in enumerate(emails)
        ]
        session.add_all(people)
        session.flush()
        session.add_all(
            Subscription(list_id=list_id, subscriber_id=p.id, subscribed=True,
                         created_at=joined, updated_at=joined)
            for p in people
        )  # fmt: skip
    return emails


def seed(app: Flask, runner: CommandRunner, api: ApiClient, clock: FakeClock) -> None:
    """Two lists; the main one with cohorts, weekly sends, a first-hour spike and comments."""
    make_list(app, "news", display_name="Example Weekly")
    make_list(app, "offers", display_name="Offers & Deals", topics=(), frequencies=())
    with transaction(app) as session:
        for name, niche in (("news", "ecommerce"), ("offers", "travel")):
            session.execute(
                sa.update(MailingList).where(MailingList.name == name).values(niche=niche)
            )
    clock.advance(days=-100)
    cohorts: list[list[str]] = []
    for month in range(3):  # three signup cohorts, a month apart
        cohorts.append(add_members(app, f"m{month}", 1_400, clock.now))
        clock.advance(days=30)
    answers = list(ANSWERS)
    for index, (key, delivered, count) in enumerate(SENDS):
        sent = clock.now
        deliver(runner, "news", key, delivered, sent.isoformat())
        spike = index == 4
        for i in range(count):
            # The spike lands in the first hour; ordinary sends trickle in over hours.
            clock.advance(minutes=(1 + i % 2) if spike and i < 36 else 18 + 7 * (i % 4))
            # Early sends lose the newest signups; later ones mostly the oldest (drift).
            email = cohorts[2 if index < 3 else (0 if i % 3 else 1)].pop()
            one_click(app, email, key)
            if (spike or i == 0) and answers:
                answer(app, email, key, *answers.pop(0))
        if spike:
            for _ in range(5):
                api.post("/lists/news/complaints", {"email": cohorts[1].pop(), "campaign": key})
        clock.advance(seconds=(sent + timedelta(days=7) - clock.now).total_seconds())
    for i, (key, count) in enumerate((("offers-feb", 2), ("offers-mar", 3))):
        deliver(runner, "offers", key, 1_500, (clock.now - timedelta(days=20 - i * 7)).isoformat())
        for j in range(count):
            one_click(app, f"o{i}-{j}@example.com", key, "offers")
    for email in (cohorts[0].pop(), cohorts[1].pop(), cohorts[2].pop()):  # kept, not lost
        links = links_for(app, email, campaign=SENDS[-1][0])
        token = path_of(links.preferences_url).rsplit("/", 1)[1]
        with transaction(app) as session:
            target = svc.resolve(
                session, runtime_of(app).minter.signer.verify(Purpose.PREFERENCES, token)
            )
            prefs.pause(session, target, "1m", now=clock.now)
    created = runner.invoke(
        args=["admin", "create", EMAIL, "--password-stdin"], input=PASSWORD + "\n"
    )
    assert created.exit_code == 0, created.output


def test_admin_console_in_a_browser(
    app: Flask,
    runner: CommandRunner,
    api: ApiClient,
    clock: FakeClock,
    live_server: str,
    page: Any,
    database_url: str,
) -> None:
    seed(app, runner, api, clock)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.set_default_timeout(5_000)

    # Not signed in: sent to the sign-in page, which remembers where we were going.
    page.goto(live_server + "/admin/lists/news")
    assert page.url.startswith(live_server + "/admin/login?next=")
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong address or password."
    page.wait_for_timeout(2_100)  # one attempt per 2 seconds per address (web.limits)
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # The list page we asked for: the trend chart is an accessible inline SVG.
    assert page.url == live_server + "/admin/lists/news"
    assert page.get_by_role("heading", level=1).inner_text() == "Example Weekly"
    chart = page.locator("svg[role=img]")
    assert chart.count() == 1
    # 46 one-click unsubscribes of 4,100 delivered (its complaints are counted apart).
    assert "2026-02-flash-promo: 1.12 %" in chart.locator("desc").text_content()
    assert page.get_by_role("img", name="Unsubscribe rate per send, Example Weekly").is_visible()
    flagged = page.locator("#campaigns-table tr[data-campaign='2026-02-flash-promo']")
    assert "well above average" in flagged.inner_text()
    shoot(page, "admin-list", database_url)

    menu = page.get_by_role("navigation", name="Admin console")
    menu.get_by_role("link", name="Lists").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Unsubscribe reports"
    news = page.locator("#lists-table tr[data-list='news']")
    # Bands are badges with words, not colour alone.
    badges = news.locator(".badge").all_inner_texts()
    assert badges and all(b.split(" ")[0] in {"good", "acceptable", "investigate", "critical",
                                              "below", "warning"} for b in badges)  # fmt: skip
    shoot(page, "admin-overview", database_url)

    page.goto(live_server + "/admin/lists/news/campaigns/2026-02-flash-promo")
    assert page.locator("svg[role=img]").count() == 1
    assert "Sharp spike in the first hour" in page.locator("#timing-hint").inner_text()
    assert "critical" in page.locator("#campaign-numbers").inner_text()
    shoot(page, "admin-campaign", database_url)

    menu.get_by_role("link", name="Survey comments").click()
    # The hostile comment reads as text: no element made of it, no dialog.
    assert page.get_by_text(XSS, exact=True).count() == 1
    assert page.locator("main img, main script").count() == 0
    shoot(page, "admin-comments", database_url)

    page.get_by_role("button", name="Sign out").click()
    assert "You are signed out." in page.get_by_role("status").inner_text()
    page.goto(live_server + "/admin")
    assert "/admin/login" in page.url
    assert dialogs == []
