"""Cache-Control on API answers and /healthz, HSTS over https only, Permissions-Policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from tests.conftest import ApiClient
from tests.functional.test_health_and_headers import requests_for_every_route
from unsubsvc.web.security import PERMISSIONS_POLICY, STRICT_TRANSPORT_SECURITY


@pytest.mark.parametrize(
    ("path", "keyed", "expected"),
    [
        ("/api/v1/lists", True, 200),
        ("/api/v1/lists", False, 401),
        ("/api/v1/lists/nope", True, 404),
        ("/api/v1/openapi.json", False, 200),
        ("/healthz", False, 200),
    ],
    ids=["api-200", "api-401", "api-404", "openapi-document", "healthz"],
)
def test_api_and_health_answers_are_never_cached(
    api: ApiClient, path: str, keyed: bool, expected: int
) -> None:
    response = api.client.get(path, headers=api.headers if keyed else {})
    assert response.status_code == expected
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_may_be_cached(app: Flask) -> None:
    with app.test_client().get("/static/style.css") as response:
        assert response.status_code == 200
        assert response.headers.get("Cache-Control") != "no-store"


@pytest.mark.parametrize(
    ("base_url", "hsts"),
    [
        ("https://unsub.example.com", STRICT_TRANSPORT_SECURITY),
        ("http://127.0.0.1:8000", None),
    ],
    ids=["https", "http"],
)
def test_hsts_only_with_an_https_base_url(
    make_app: Callable[..., Flask], base_url: str, hsts: str | None
) -> None:
    app = make_app(base_url=base_url)
    seen = requests_for_every_route(app)
    client = app.test_client()
    for method, path in [*seen, ("GET", "/nowhere"), ("GET", "/u/junk")]:
        with client.open(path, method=method, data={}) as response:
            response.close()
        assert response.headers.get("Strict-Transport-Security") == hsts, (method, path)


def test_hsts_value_follows_rfc_6797() -> None:
    directives = [d.strip() for d in STRICT_TRANSPORT_SECURITY.split(";")]
    assert directives[0] == "max-age=31536000"  # a year, in seconds (RFC 6797 §6.1.1)
    assert "includeSubDomains" in directives


def test_every_answer_denies_unused_browser_features(app: Flask) -> None:
    client = app.test_client()
    pages = 0
    for method, path in requests_for_every_route(app):
        with client.open(path, method=method, data={}) as response:
            response.close()
        policy = response.headers["Permissions-Policy"]
        assert policy == PERMISSIONS_POLICY
        pages += response.mimetype == "text/html"
    assert pages >= 5
    features = dict(item.split("=") for item in PERMISSIONS_POLICY.split(", "))
    for feature in (
        "camera",
        "microphone",
        "geolocation",
        "interest-cohort",
        "browsing-topics",
        "payment",
        "usb",
    ):
        assert features[feature] == "()"
