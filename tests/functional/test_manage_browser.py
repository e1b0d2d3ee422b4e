"""/manage in real headless Chromium, with no cookie ever set: form → mail → link → change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.axe_check import axe_violations, describe, overflow
from tests.helpers import links_for, make_list, status
from tests.smtp_sink import SmtpSink
from unsubsvc.web.context import wait_for_mail

pytestmark = pytest.mark.browser


def check_page(page: Any) -> None:
    """axe-core finds nothing, and nothing scrolls sideways at 320 px."""
    violations = axe_violations(page)
    assert violations == [], describe(violations)
    page.set_viewport_size({"width": 320, "height": 700})
    assert overflow(page) == 0
    page.set_viewport_size({"width": 390, "height": 844})


@pytest.fixture
def app(mail_app: Flask) -> Iterator[Flask]:
    """The live server serves an app whose mail goes to the aiosmtpd server."""
    make_list(mail_app)
    make_list(mail_app, "offers", topics=(), frequencies=(), display_name="Offers")
    links_for(mail_app, "ann@example.com", list_name="news")
    links_for(mail_app, "ann@example.com", list_name="offers")
    yield mail_app


def test_manage_flow_without_cookies(
    app: Flask, live_server: str, browser: Any, smtp_server: SmtpSink
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    set_cookies: list[str] = []
    context.on(
        "response",
        lambda r: set_cookies.append(r.url) if r.header_value("set-cookie") else None,
    )
    page = context.new_page()
    try:
        page.goto(live_server + "/manage")
        check_page(page)
        page.get_by_label("Your e-mail address").fill("ann@example.com")
        page.get_by_role("button", name="Get a new link by e-mail").click()
        assert "we sent it a link" in page.get_by_role("status").inner_text()
        check_page(page)

        wait_for_mail()
        (message,) = smtp_server.wait_for(1)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        found = re.search(r"https://unsub\.example\.com(/manage/\S+)", part.get_content())
        assert found is not None
        page.goto(live_server + found.group(1))
        check_page(page)
        page.get_by_role("button", name="Open my subscriptions").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Your subscriptions"
        assert page.get_by_role("heading", name="News from Example").is_visible()
        assert page.get_by_role("heading", name="Offers").is_visible()
        check_page(page)

        offers = page.get_by_role("region", name="Offers")
        offers.get_by_label("Unsubscribed").check()
        offers.get_by_role("button", name="Save Offers").click()
        assert "Saved" in page.get_by_role("status").inner_text()
        assert page.url.endswith("#status")
        check_page(page)
        assert page.get_by_role("region", name="Offers").get_by_label("Unsubscribed").is_checked()
        assert status(app, list_name="offers")["subscribed"] is False
        assert status(app, list_name="news")["subscribed"] is True

        # Reload repeats nothing (Post/Redirect/Get); no page ever set a cookie.
        page.reload()
        assert status(app, list_name="offers")["subscribed"] is False
        assert page.evaluate("document.cookie") == ""
        assert set_cookies == []
        assert context.cookies() == []

        # The used link: the error page offers the form, and passes the same checks.
        page.goto(live_server + found.group(1))
        assert page.get_by_role("button", name="Get a new link by e-mail").is_visible()
        check_page(page)
    finally:
        context.close()
