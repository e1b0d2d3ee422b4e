"""Health check, and the security headers every answer carries."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import links_for, make_list, path_of


def test_healthz_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_503_when_database_unreachable(make_app, tmp_path) -> None:
    app = make_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.sqlite'}"},
        tables=False,
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503


def every_page(app: Flask) -> list[tuple[str, str]]:
    make_list(app)
    links = links_for(app)
    return [
        ("GET", path_of(links.unsubscribe_url)),
        ("POST", path_of(links.unsubscribe_url)),
        ("GET", path_of(links.preferences_url)),
        ("GET", "/u/not-a-token"),
        ("GET", "/p/not-a-token"),
        ("GET", "/no/such/page"),
        ("PUT", path_of(links.unsubscribe_url)),
        ("GET", "/healthz"),
        ("GET", "/static/style.css"),
    ]


def test_every_answer_carries_the_security_headers(app: Flask) -> None:
    client = app.test_client()
    for method, path in every_page(app):
        with client.open(path, method=method) as response:
            response.close()
        assert response.status_code < 500, (method, path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, (method, path)
        assert "default-src 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/u/", "/u/x/y/z"])
def test_unknown_paths_are_plain_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
