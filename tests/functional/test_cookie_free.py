"""Recipient pages are cookie-free: the signed URI is their credential (no cookie is needed)."""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.helpers import links_for, make_list, path_of, snapshot, status


@pytest.fixture
def paths(mail_app: Flask) -> tuple[str, str]:
    make_list(mail_app)
    links = links_for(mail_app)
    return path_of(links.unsubscribe_url), path_of(links.preferences_url)


def assert_no_cookie(response: TestResponse) -> None:
    assert "Set-Cookie" not in response.headers, response.request.path


def test_no_answer_on_u_or_p_sets_a_cookie(mail_app: Flask, paths: tuple[str, str]) -> None:
    mail_app.config["WTF_CSRF_ENABLED"] = True  # as in production
    landing, prefs = paths
    client = mail_app.test_client(use_cookies=False)
    answers = [
        client.get(landing),
        client.head(landing),
        client.get(prefs),
        client.post(prefs, data={"frequency": "monthly", "pause": "none"}),
        client.post(prefs, data={"pause": "bogus"}),  # a 400 sets none either
        client.post(landing + "/confirm"),
        client.get(f"{prefs}/unsubscribed?scope=list"),
        client.post(f"{prefs}/survey", data={"reason": "too_many"}),
        client.post(f"{prefs}/undo", data={"undo": "forged", "scope": "list"}),
        client.post(f"{prefs}/resubscribe", data={"scope": "list"}),
        client.post(f"{prefs}/unsubscribe", data={"scope": "all"}),
        client.post(landing, data="List-Unsubscribe=One-Click"),
        client.get(landing + "x"),  # a tampered link's error page
        client.get(prefs + "x"),
        client.get("/p/confirm/forged"),
    ]
    for answer in answers:
        assert_no_cookie(answer)
    assert [a.status_code for a in answers] == [
        200, 200, 200, 303, 400, 303, 200, 303, 303, 303, 303, 200, 400, 400, 400,
    ]  # fmt: skip


def test_landing_button_works_with_cookies_off_and_records_the_landing_page(
    mail_app: Flask, paths: tuple[str, str]
) -> None:
    mail_app.config["WTF_CSRF_ENABLED"] = True
    landing, _prefs = paths
    response = mail_app.test_client(use_cookies=False).post(landing + "/confirm")
    assert response.status_code == 303
    assert status(mail_app)["subscribed"] is False


@pytest.mark.parametrize(
    "suffix",
    ["", "/unsubscribed?scope=list", "/unsubscribed?scope=all&undo=x", "?done=saved"],
)
def test_get_changes_nothing(mail_app: Flask, paths: tuple[str, str], suffix: str) -> None:
    _landing, prefs = paths
    before = snapshot(mail_app)
    assert mail_app.test_client().get(prefs + suffix).status_code == 200
    assert snapshot(mail_app) == before
