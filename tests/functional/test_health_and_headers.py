"""Health check, and the security headers every answer carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from tests.helpers import links_for, make_list, path_of


def test_healthz_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_503_when_database_unreachable(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(
        tables=False, database_url=f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.sqlite'}"
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503


def requests_for_every_route(app: Flask) -> list[tuple[str, str]]:
    """Return a request for every method of every route the app has, with working tokens."""
    make_list(app)
    links = links_for(app)
    tokens = {
        "/u/": path_of(links.unsubscribe_url).rsplit("/", 1)[1],
        "/p/": path_of(links.preferences_url).rsplit("/", 1)[1],
        "/manage/": "not-a-token",  # the walk checks headers; a refused link has them too
    }
    out = []
    for rule in app.url_map.iter_rules():
        # Any, like url_for's own **values: a dict[str, str] would clash with its bool _external.
        values: dict[str, Any] = {}
        if "filename" in rule.arguments:
            values["filename"] = "style.css"
        api_values = {
            "name": "news",
            "email": "a@example.com",
            "campaign": "c1",
            "webhook_id": "1",
            "list_id": 1,  # the list make_list created
            "digest": "0" * 16,  # a logo that does not exist: 404, with the headers
            "key": "0" * 16,
            "link": "not-a-link",
        }
        values.update({k: v for k, v in api_values.items() if k in rule.arguments})
        if "token" in rule.arguments:
            values["token"] = next(
                t for prefix, t in tokens.items() if rule.rule.startswith(prefix)
            )
        missing = rule.arguments - values.keys()
        assert not missing, f"the walk does not know how to fill {missing} in {rule.rule}"
        with app.test_request_context():
            path = url_for(rule.endpoint, **values)
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            out.append((method, path))
    return out


def test_every_route_answers_with_the_security_headers(app: Flask) -> None:
    """Walk the URL map, so a route added later is checked without touching this test."""
    client = app.test_client()
    seen = requests_for_every_route(app)
    assert len(seen) >= 12
    pages = 0
    for method, path in seen:
        with client.open(path, method=method, data={}) as response:
            response.close()
        assert response.status_code < 500, (method, path)
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, (method, path)
        # Scripts only from unsubsvc itself (the survey's counter): never inline, no other origin.
        assert "default-src 'none'" in csp and "script-src 'self';" in csp + ";"
        assert "unsafe" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        if response.mimetype == "text/html":
            pages += 1
            assert headers["Cache-Control"] == "no-store"
    assert pages >= 8


@pytest.mark.parametrize("path", ["/", "/u/", "/u/x/y/z"])
def test_unknown_paths_are_plain_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
