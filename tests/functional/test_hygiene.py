"""NUL characters get a 400, never a driver error (PostgreSQL cannot store U+0000)."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import ApiClient
from tests.helpers import links_for, make_list, path_of, snapshot


@pytest.mark.parametrize(
    "path",
    [
        "/u/abc%00def",
        "/p/x%00/unsubscribed",
        "/api/v1/lists/news%00",
        "/api/v1/lists/news/recipients/a%00@example.com",
    ],
    ids=["landing", "center", "api-list", "api-recipient"],
)
def test_nul_in_the_path(app: Flask, api: ApiClient, path: str) -> None:
    make_list(app)
    response = app.test_client().get(path, headers=api.headers)
    assert response.status_code == 400


def test_nul_in_a_form_changes_nothing(app: Flask) -> None:
    make_list(app)
    client = app.test_client()
    links = links_for(app)
    prefs = path_of(links.preferences_url)
    assert client.post(prefs + "/unsubscribe", data={"scope": "list"}).status_code == 303
    before = snapshot(app)
    response = client.post(prefs + "/survey", data={"reason": "other", "comment": "a\x00b"})
    assert response.status_code == 400
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "body",
    [
        '{"reason": "a\\u0000b"}',
        '{"reason": "x", "topic": null, "\\u0000": 1}',
    ],
    ids=["escaped-nul", "nul-key"],
)
def test_nul_in_a_json_body(app: Flask, api: ApiClient, body: str) -> None:
    make_list(app)
    response = api.client.post(
        "/api/v1/lists/news/recipients/a@example.com/resubscribe",
        data=body,
        headers=api.headers,
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json == {"error": "NUL characters are not accepted."}
