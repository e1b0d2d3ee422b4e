"""Every page at phone and desktop sizes: no sideways scrolling, no axe-core violation.

Runs on SQLite only: what is checked is markup and CSS, which do not depend on the
database (the PostgreSQL runs of the other tests cover the queries behind the pages).
Needs axe-core: ``npm ci --prefix tests/axe`` (tests/run.sh does it).

To check a new page, add a :class:`Page` to :data:`PAGES`: a name, its path made from the
:class:`Seed` (tokens, list and campaign), ``admin=True`` if it needs a signed-in admin,
and ``then``, steps in the browser (a click, a form) that lead from that path to the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.axe_check import axe_violations, describe, overflow, smallest_chart_text, widest
from tests.conftest import ApiClient, serving
from tests.helpers import CommandRunner, links_for, make_list, path_of
from tests.smtp_sink import SmtpSink
from unsubsvc.web.app import PACKAGE_DIR as PACKAGE
from unsubsvc.web.context import wait_for_mail

pytestmark = pytest.mark.browser

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "a long admin passphrase"
#: A long unbroken address: masked, it is one long word that must wrap on a phone.
LONG_EMAIL = (
    "margaret.elizabeth.montgomery-fitzwilliam.newsletters@mail.averylongcompanyname.example"
)
CAMPAIGN = "2026-03-spring-preview-with-a-rather-long-campaign-key"
#: (width, height): the smallest phone WCAG 1.4.10 reflow asks for, a common phone, desktop.
PHONE = (320, 640)
PHONE_WIDE = (390, 844)
DESKTOP = (1280, 800)


@dataclass(frozen=True)
class Seed:
    """What the pages are made from."""

    unsubscribe: str  # /u/<token>
    preferences: str  # /p/<token>
    list_name: str = "news"
    campaign: str = CAMPAIGN


@dataclass(frozen=True)
class Page:
    """A page to check: where it is, whether it needs an admin, how to reach it from there."""

    name: str
    path: Callable[[Seed], str]
    admin: bool = False
    then: Callable[[Any], None] | None = None


def confirm_unsubscribe(page: Any) -> None:
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def submit_empty(page: Any) -> None:
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def click(name: str) -> Callable[[Any], None]:
    """Return a step that presses the button called ``name`` and waits for the next page."""

    def step(page: Any) -> None:
        page.get_by_role("button", name=name).click()
        page.wait_for_load_state()

    return step


def send_empty_survey(page: Any) -> None:
    confirm_unsubscribe(page)
    click("Send")(page)


def leave_then_ask_to_resubscribe(page: Any) -> None:
    click("Unsubscribe from Example Weekly: news, offers and events for members")(page)
    page.goto(page.url.split("?")[0].removesuffix("/unsubscribed"))
    click("Resubscribe by e-mail")(page)


def look_up(page: Any) -> None:
    page.locator("main form input[type=email]").first.fill(LONG_EMAIL)
    page.get_by_role("button", name="Look up").click()
    page.wait_for_load_state()


def erase_asked(page: Any) -> None:
    look_up(page)
    page.get_by_role("button", name="Erase…").click()
    page.wait_for_load_state()


PAGES: list[Page] = [
    # Recipient pages.
    Page("landing", lambda s: s.unsubscribe),
    Page("preferences", lambda s: s.preferences),
    Page("unsubscribed", lambda s: s.unsubscribe, then=confirm_unsubscribe),
    Page("landing-fr", lambda s: s.unsubscribe + "?lang=fr"),
    Page("preferences-de", lambda s: s.preferences + "?lang=de"),
    Page("preferences-saved", lambda s: s.preferences, then=click("Save preferences")),
    Page("survey-thanks", lambda s: s.unsubscribe, then=send_empty_survey),
    Page(
        "unsubscribed-all",
        lambda s: s.preferences,
        then=click("Unsubscribe from all mail from unsubsvc"),
    ),
    Page("resubscribe-mailed", lambda s: s.preferences, then=leave_then_ask_to_resubscribe),
    Page("bad-token", lambda s: s.unsubscribe[:-6] + "AAAAAA"),
    Page("bad-confirm-link", lambda s: "/p/confirm/not-a-link"),
    Page("manage", lambda s: "/manage"),
    Page("manage-sent", lambda s: "/manage?sent=1"),
    Page("manage-bad-link", lambda s: "/manage/not-a-link"),
    Page("not-found", lambda s: "/no/such/page"),
    # Admin console.
    Page("admin-login", lambda s: "/admin/login"),
    Page("admin-login-errors", lambda s: "/admin/login", then=submit_empty),
    Page("admin-overview", lambda s: "/admin", admin=True),
    Page("admin-list", lambda s: f"/admin/lists/{s.list_name}", admin=True),
    Page(
        "admin-campaign", lambda s: f"/admin/lists/{s.list_name}/campaigns/{s.campaign}", admin=True
    ),
    Page("admin-brand", lambda s: f"/admin/lists/{s.list_name}/brand", admin=True),
    Page("admin-comments", lambda s: "/admin/comments", admin=True),
    Page("admin-audit", lambda s: "/admin/audit", admin=True),
    Page("admin-recipients", lambda s: "/admin/recipients", admin=True),
    Page("admin-recipients-errors", lambda s: "/admin/recipients", admin=True, then=submit_empty),
    Page("admin-recipients-found", lambda s: "/admin/recipients", admin=True, then=look_up),
    Page("admin-recipients-confirm", lambda s: "/admin/recipients", admin=True, then=erase_asked),
]


def seed(app: Flask, runner: CommandRunner, api: ApiClient) -> Seed:
    """A list with a send, an unsubscribe, a survey comment, and an admin to sign in."""
    make_list(app, "news", display_name="Example Weekly: news, offers and events for members")
    created = runner.invoke(
        args=["admin", "create", ADMIN_EMAIL, "--password-stdin"], input=ADMIN_PASSWORD + "\n"
    )
    assert created.exit_code == 0, created.output
    sent = runner.invoke(
        args=["delivered", "--list", "news", "--campaign", CAMPAIGN, "--count", "1200",
              "--sent-at", "2026-03-01T09:00:00+00:00"]
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    gone = links_for(app, "leaver.with.a.long.name@example.com", campaign=CAMPAIGN)
    with app.test_client() as client:
        answer = client.post(path_of(gone.unsubscribe_url), data="List-Unsubscribe=One-Click")
        assert answer.status_code == 200
    complained = api.post(
        "/lists/news/complaints", {"email": "x@example.com", "campaign": CAMPAIGN}
    )
    assert complained.status_code < 300, complained.get_data(as_text=True)
    links = links_for(app, LONG_EMAIL, campaign=CAMPAIGN)
    return Seed(path_of(links.unsubscribe_url), path_of(links.preferences_url))


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/admin/login")
    page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/admin")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", PAGES, ids=[p.name for p in PAGES])
def test_page_reflows_and_passes_axe(
    target: Page,
    app: Flask,
    runner: CommandRunner,
    api: ApiClient,
    live_server: str,
    page: Any,
) -> None:
    seeded = seed(app, runner, api)
    page.set_default_timeout(5_000)
    if target.admin:
        sign_in(page, live_server)
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.goto(live_server + target.path(seeded))
    if target.then is not None:
        target.then(page)
    assert_reflows_and_passes_axe(page)


def assert_reflows_and_passes_axe(page: Any) -> None:
    """At 320 px, a phone and a desktop: no sideways scroll, legible charts, no axe finding."""
    assert page.title() and "<" not in page.title(), page.title()  # text, not stray markup
    # WCAG 1.4.10 Reflow: content fits 320 CSS px without scrolling in two directions.
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    assert overflow(page) == 0, widest(page)
    for width, height in (PHONE, PHONE_WIDE, DESKTOP):
        page.set_viewport_size({"width": width, "height": height})
        assert overflow(page) == 0, (width, widest(page))
        # Chart labels stay legible on a phone: 11 px at the least.
        smallest = smallest_chart_text(page)
        assert smallest is None or smallest >= 11, (width, smallest)
        found = axe_violations(page)
        assert not found, f"at {width}×{height}:\n{describe(found)}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mailed_confirmation_page_passes_too(
    mail_app: Flask, smtp_server: SmtpSink, page: Any
) -> None:
    """The page a mailed resubscribe link opens (its link taken from the received message)."""
    make_list(mail_app)
    links = links_for(mail_app)
    client = mail_app.test_client(use_cookies=False)
    assert client.post(path_of(links.unsubscribe_url), data=ONE_CLICK).status_code == 200
    asked = client.post(path_of(links.preferences_url) + "/resubscribe", data={"scope": "list"})
    assert asked.status_code == 303
    wait_for_mail()
    part = smtp_server.wait_for(1)[0].get_body(preferencelist=("plain",))
    assert part is not None
    found = re.search(r"https?://[^/\s]+(/p/confirm/\S+)", part.get_content())
    assert found is not None
    with serving(mail_app) as base:
        page.goto(base + found.group(1))
        assert page.get_by_role("button", name="Yes, resubscribe me").is_visible()
        assert_reflows_and_passes_axe(page)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_favicon_ico_leads_to_the_svg_icon(client: Any) -> None:
    """Browsers fetch /favicon.ico whatever the page links: it must not be a 404."""
    with client.get("/favicon.ico") as found:
        assert found.status_code == 301
        assert found.headers["Location"] == "/favicon.svg"
    with client.get("/favicon.svg") as icon:
        assert icon.status_code == 200
        assert icon.mimetype == "image/svg+xml"
        assert icon.get_data() == (PACKAGE / "static" / "favicon.svg").read_bytes()
    with client.get("/admin/login") as page:
        assert 'rel="icon" href="/favicon.svg"' in page.get_data(as_text=True)
