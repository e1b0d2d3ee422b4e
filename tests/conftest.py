"""Fixtures: an app with a fresh database and instance folder per test, on SQLite and PostgreSQL.

Tests that take ``app`` (or anything built on it) run once per database:
SQLite always, PostgreSQL when UNSUBSVC_TEST_DATABASE_URL is set (``.ci/run``
sets it). Each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import CommandRunner
from tests.smtp_sink import SmtpSink
from unsubsvc.db.base import Base
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.settings import load_settings, normalize_database_url
from unsubsvc.web.app import create_app
from unsubsvc.web.context import runtime_of

POSTGRES_URL = os.environ.get("UNSUBSVC_TEST_DATABASE_URL")
FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SECRET = "test-secret-key-0123456789"


@dataclass
class FakeClock:
    """A clock tests move by hand: no sleeping."""

    now: datetime = FIXED_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's UNSUBSVC_* settings out of the tests."""
    for name in list(os.environ):
        if name.startswith("UNSUBSVC_"):
            monkeypatch.delenv(name)


def postgres_schema_url(base_url: str, schema: str) -> str:
    """Return ``base_url`` with every connection's search_path set to ``schema``."""
    url = sa.make_url(normalize_database_url(base_url))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("UNSUBSVC_TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def instance_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "instance"
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(path))
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, instance_path: Path, database_url: str) -> dict[str, str]:
    """Set the environment a deployment would have; return it for subprocesses."""
    values = {
        "UNSUBSVC_INSTANCE_PATH": str(instance_path),
        "UNSUBSVC_DATABASE_URL": database_url,
        "UNSUBSVC_SECRET_KEY": SECRET,
        "UNSUBSVC_BASE_URL": "https://unsub.example.com",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def make_runtime(env: dict[str, str], clock: FakeClock) -> Iterator[Callable[..., Runtime]]:
    """Return a factory of runtimes on the test database (settings from ``env``, overridable)."""
    made: list[Runtime] = []

    def factory(**settings: Any) -> Runtime:
        new = build_runtime(dataclasses.replace(load_settings(), **settings), clock=clock)
        made.append(new)
        return new

    yield factory
    for each in made:
        each.dispose()


@pytest.fixture
def make_app(make_runtime: Callable[..., Runtime]) -> Callable[..., Flask]:
    """Return a factory of apps on the test database, with tables made from the models.

    ``config`` is Flask's own configuration; keyword arguments replace Settings fields.
    """

    def factory(
        config: dict[str, Any] | None = None, *, tables: bool = True, **settings: Any
    ) -> Flask:
        runtime = make_runtime(**settings)
        if tables:
            Base.metadata.create_all(runtime.engine)
        return create_app(runtime, flask_config={"TESTING": True, **(config or {})})

    return factory


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app on a fresh database whose tables come from the models."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> CommandRunner:
    return CommandRunner(runtime_of(app))


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a background thread; yield its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """``app`` served on a free loopback port; its base URL."""
    with serving(app) as base:
        yield base


CHROMIUM = os.environ.get("UNSUBSVC_CHROMIUM", "/usr/bin/chromium")
#: Screenshots of the pages, shown in README.md.
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A real headless Chromium (Debian's), driven by Playwright."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"{CHROMIUM} is missing; tests/run.sh installs it (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@dataclass
class ApiClient:
    """The Flask test client with a sender's API key."""

    client: FlaskClient
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self.headers, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post("/api/v1" + path, json=body, headers=self.headers, **kwargs)


@pytest.fixture
def api(app: Flask, clock: FakeClock) -> ApiClient:
    from unsubsvc.services.apikeys import create_key

    with runtime_of(app).unit_of_work() as session:
        key = create_key(session, "sender", now=clock.now).secret
    return ApiClient(app.test_client(), key)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives.

    ``url`` goes into UNSUBSVC_SMTP_URL; ``messages`` are the parsed messages,
    ``received`` adds the envelope and exact bytes; ``wait_for(count, timeout)``.
    """
    from unsubsvc.web.context import wait_for_mail

    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        wait_for_mail()  # mail being sent after a request finishes before the server goes
        sink.stop()


@pytest.fixture
def mail_app(
    make_app: Callable[..., Flask], smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """An app (as ``app``) whose mail goes to ``smtp_server``."""
    from unsubsvc.web.context import wait_for_mail

    monkeypatch.setenv("UNSUBSVC_SMTP_URL", smtp_server.url)
    yield make_app()
    wait_for_mail()
