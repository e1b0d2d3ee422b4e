"""Every documented UNSUBSVC_* variable does what README says, through the running app.

Settings are read once from the environment (and ``.env``) into a frozen
``Settings``; each test sets one variable, builds the app the way the
deployment does, and looks at the effect.
"""

from __future__ import annotations

import re
import runpy
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import FakeClock
from tests.helpers import CommandRunner, csrf_token, links_for, make_list, path_of, transaction
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.services import admin_users
from unsubsvc.settings import ConfigError, load_settings
from unsubsvc.web.app import create_app
from unsubsvc.web.context import runtime_of

ROOT = Path(__file__).resolve().parents[2]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
#: Variables README names for the test suite itself, not for unsubsvc.
TEST_ONLY = {"UNSUBSVC_TEST_DATABASE_URL", "UNSUBSVC_CHROMIUM", "UNSUBSVC_AUDIT_STRICT"}
#: Read by deploy/gunicorn.conf.py, which README's deployment section points to.
GUNICORN = {"UNSUBSVC_BIND", "UNSUBSVC_WORKERS", "UNSUBSVC_THREADS", "UNSUBSVC_TIMEOUT"}


def documented(path: Path) -> set[str]:
    return set(re.findall(r"UNSUBSVC_[A-Z][A-Z_]*[A-Z]", path.read_text()))


@pytest.fixture
def fresh_app(env: dict[str, str]) -> Iterator[Callable[[], Flask]]:
    """Build apps from the environment alone, as wsgi.py does (tables made from the models)."""
    made: list[Runtime] = []

    def build() -> Flask:
        from unsubsvc.db.base import Base

        runtime = build_runtime()
        made.append(runtime)  # before create_app, which may refuse the settings
        Base.metadata.create_all(runtime.engine)
        return create_app(runtime, flask_config={"TESTING": True})

    yield build
    for runtime in made:
        runtime.dispose()


def test_database_url(fresh_app: Callable[[], Flask], env: dict[str, str]) -> None:
    app = fresh_app()
    assert (
        runtime_of(app).engine.url.render_as_string(hide_password=False).split("://")[1]
        == env["UNSUBSVC_DATABASE_URL"].split("://")[1]
    )


def test_secret_key(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """A token minted under one key verifies after rotation (new,old) and not without it."""
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "first-key-" + "a" * 30)
    app = fresh_app()
    make_list(app)
    uri = path_of(links_for(app).unsubscribe_url)
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "other-key-" + "b" * 30)
    assert fresh_app().test_client().get(uri).status_code == 400
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "other-key-" + "b" * 30 + ",first-key-" + "a" * 30)
    assert fresh_app().test_client().get(uri).status_code == 200


def test_base_url(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://leave.example.org/")
    app = fresh_app()
    make_list(app)
    assert links_for(app).unsubscribe_url.startswith("https://leave.example.org/u/")


def test_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.setenv("UNSUBSVC_ENV", "production")
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "http://unsub.example.com")
    with pytest.raises(ConfigError, match="https"):
        build_runtime()


def test_mailto(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSVC_MAILTO", " unsubscribe@mail.example.com ")
    app = fresh_app()
    make_list(app)
    value = dict(links_for(app).headers)["List-Unsubscribe"]
    assert "<mailto:unsubscribe@mail.example.com?subject=unsubscribe%20" in value


def test_token_max_age(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSVC_TOKEN_MAX_AGE", "60")
    app = fresh_app()
    make_list(app)
    minted_long_ago = runtime_of(app).minter.signer.sign  # signs with "now" unless told
    from datetime import UTC, datetime, timedelta

    from unsubsvc.core.tokens import Purpose, TokenPayload

    uri = path_of(links_for(app).unsubscribe_url)
    payload = runtime_of(app).minter.signer.verify(Purpose.UNSUBSCRIBE, uri.rsplit("/", 1)[1])
    old = minted_long_ago(
        Purpose.UNSUBSCRIBE,
        TokenPayload(payload.list_id, payload.subscriber),
        now=datetime.now(UTC) - timedelta(minutes=5),
    )
    client = app.test_client()
    assert client.get(uri).status_code == 200
    assert client.get(f"/u/{old}").status_code == 400


def test_max_body(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSVC_MAX_BODY", "1000")
    app = fresh_app()
    make_list(app)
    uri = path_of(links_for(app).unsubscribe_url)
    response = app.test_client().post(
        uri,
        data=b"List-Unsubscribe=One-Click&pad=" + b"x" * 2000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413


def test_api_max_body(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """UNSUBSVC_API_MAX_BODY=1000 makes a 2 KB API body answer 413, and 900 bytes pass."""
    from unsubsvc.services.apikeys import create_key

    monkeypatch.setenv("UNSUBSVC_API_MAX_BODY", "1000")
    app = fresh_app()
    make_list(app)
    with runtime_of(app).unit_of_work() as session:
        key = create_key(session, "sender", now=runtime_of(app).now()).secret
    client = app.test_client()

    def post(size: int) -> int:
        body = '{"recipients": [{"email": "ann@example.com", "campaign": "%s"}]}'
        text = body % ("c" * (size - len(body) + 2))
        assert len(text) == size
        response = client.post(
            "/api/v1/lists/news/headers",
            data=text,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.status_code

    assert post(2048) == 413
    assert post(900) != 413


def test_sender_name(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSVC_SENDER_NAME", "Example Weekly")
    app = fresh_app()
    make_list(app)
    page = app.test_client().get(path_of(links_for(app).preferences_url)).get_data(as_text=True)
    assert "Unsubscribe from all mail from Example Weekly" in page


def test_instance_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The instance folder holds the default SQLite database and the development key."""
    folder = tmp_path / "elsewhere"
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(folder))
    settings = load_settings()
    assert settings.instance_path == folder
    assert settings.database_url == f"sqlite:///{folder / 'unsubsvc.sqlite'}"
    assert (folder / "secret_key").read_text().strip() == settings.secret_keys[0]


def test_dotenv_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "UNSUBSVC_SENDER_NAME=From the file\nUNSUBSVC_BASE_URL=https://file.example.com\n"
        f"UNSUBSVC_INSTANCE_PATH={tmp_path / 'instance'}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://env.example.com")
    settings = load_settings()
    assert settings.sender_name == "From the file"
    assert settings.base_url == "https://env.example.com"


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("UNSUBSVC_BIND", "0.0.0.0:9000", "bind", ["0.0.0.0:9000"]),
        ("UNSUBSVC_WORKERS", "3", "workers", 3),
        ("UNSUBSVC_THREADS", "7", "threads", 7),
        ("UNSUBSVC_TIMEOUT", "12", "timeout", 12),
    ],
    ids=["bind", "workers", "threads", "timeout"],
)
def test_gunicorn_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert config[setting] == expected


def test_database_timeout(fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """UNSUBSVC_DATABASE_TIMEOUT=0.5: a locked SQLite database answers 503 in about 0.5 s."""
    import sqlite3
    import time

    monkeypatch.setenv("UNSUBSVC_DATABASE_TIMEOUT", "0.5")
    app = fresh_app()
    runtime = runtime_of(app)
    assert runtime.settings.database_timeout == 0.5
    if runtime.engine.dialect.name != "sqlite":
        return  # the PostgreSQL timeouts are shown in test_database_unavailable
    app.config["PROPAGATE_EXCEPTIONS"] = False
    make_list(app)
    uri = path_of(links_for(app).unsubscribe_url)
    holder = sqlite3.connect(str(runtime.engine.url.database), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert app.test_client().post(uri).status_code == 503
        assert 0.4 < time.monotonic() - started < 1.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    monkeypatch.setenv("UNSUBSVC_DATABASE_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="UNSUBSVC_DATABASE_TIMEOUT"):
        load_settings()


def test_webhook_retention_days(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """UNSUBSVC_WEBHOOK_RETENTION_DAYS is read as whole days above 0 (purging: test_webhooks)."""
    assert load_settings().webhook_retention_days == 30
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_RETENTION_DAYS", "7")
    assert load_settings().webhook_retention_days == 7
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError, match="UNSUBSVC_WEBHOOK_RETENTION_DAYS"):
        load_settings()


def test_every_documented_variable_has_a_test() -> None:
    """README's and deploy/'s variables are exactly the ones tested in this module."""
    names = documented(ROOT / "README.md") | documented(ROOT / "deploy" / "env.example")
    tested = {
        "UNSUBSVC_" + name.removeprefix("test_").upper()
        for name in globals()
        if name.startswith("test_")
    } | GUNICORN
    assert names - TEST_ONLY <= tested, sorted(names - TEST_ONLY - tested)


def test_commands_read_the_same_settings(
    fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI, built from the environment, mints the links the server would."""
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://cli.example.com")
    app = fresh_app()
    make_list(app)
    result = CommandRunner().invoke(args=["link", "--list", "news", "--email", "a@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("https://cli.example.com/p/")


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def test_nginx_body_limits_match_the_app() -> None:
    """deploy/nginx.conf lets through what the app accepts: 64 KiB for pages, 4 MiB for /api/."""
    from unsubsvc.settings import DEFAULT_API_MAX_BODY, DEFAULT_MAX_BODY

    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    api_block = re.search(r"location /api/ \{(.*?)\}", conf, re.S)
    assert api_block is not None
    outside = conf.replace(api_block.group(0), "")
    [pages] = re.findall(r"client_max_body_size (\w+);", outside)
    [api] = re.findall(r"client_max_body_size (\w+);", api_block.group(1))
    assert nginx_size(pages) == DEFAULT_MAX_BODY
    assert nginx_size(api) == DEFAULT_API_MAX_BODY


def test_gunicorn_post_fork_gives_a_preloaded_worker_its_own_pool(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --preload, a forked worker drops the inherited pool without closing its sockets."""
    from types import SimpleNamespace

    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    calls: list[bool] = []
    server = SimpleNamespace(
        cfg=SimpleNamespace(preload_app=True), app=SimpleNamespace(wsgi=lambda: app)
    )
    # Undone at the end of the block, so the test's own teardown disposes for real.
    with monkeypatch.context() as patched:
        patched.setattr(runtime_of(app).engine, "dispose", lambda close=True: calls.append(close))
        config["post_fork"](server, None)
        assert calls == [False]
        server.cfg.preload_app = False
        config["post_fork"](server, None)
        assert calls == [False]  # nothing inherited, nothing to drop


ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "a long admin passphrase"


def _signed_in_console(app: Flask, clock: FakeClock) -> Callable[[], int]:
    """Create an admin, sign a browser in; return a function that GETs /admin's status."""
    with transaction(app) as session:
        admin_users.create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD, now=clock.now)
    browser = app.test_client()
    page = browser.get("/admin/login").get_data(as_text=True)
    form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(page)}
    assert browser.post("/admin/login", data=form).status_code == 303

    def status() -> int:
        with browser.get("/admin") as response:
            return response.status_code

    return status


def test_admin_idle_timeout(
    make_app: Callable[..., Flask], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNSUBSVC_ADMIN_IDLE_TIMEOUT", "300")
    status = _signed_in_console(make_app(), clock)
    clock.advance(seconds=290)
    assert status() == 200  # the default (1800 s) would allow far longer
    clock.advance(seconds=301)
    assert status() == 302  # five idle minutes end the session
    monkeypatch.setenv("UNSUBSVC_ADMIN_IDLE_TIMEOUT", "0")
    with pytest.raises(ConfigError, match="UNSUBSVC_ADMIN_IDLE_TIMEOUT"):
        load_settings()


def test_admin_session_max_age(
    make_app: Callable[..., Flask], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNSUBSVC_ADMIN_SESSION_MAX_AGE", "3600")
    status = _signed_in_console(make_app(), clock)
    for _ in range(3):  # active all along: a page every 20 minutes, under the idle timeout
        clock.advance(minutes=20)
        assert status() == 200
    clock.advance(minutes=1)
    assert status() == 302  # an hour after sign-in, however active (default: 12 hours)
    monkeypatch.setenv("UNSUBSVC_ADMIN_SESSION_MAX_AGE", "a day")
    with pytest.raises(ConfigError, match="UNSUBSVC_ADMIN_SESSION_MAX_AGE"):
        load_settings()


def test_ratelimit_storage_url(
    fresh_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory:// (the default) counts per app; a shared redis:// counts across servers."""
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"

    def junk(app: Flask) -> int:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client.get(f"/u/{secrets.token_urlsafe(40)}").status_code

    first, second = fresh_app(), fresh_app()
    assert [junk(first) for _ in range(60)] == [400] * 60
    assert junk(first) == 429
    assert junk(second) == 400  # memory://: each app its own count

    monkeypatch.setenv("UNSUBSVC_RATELIMIT_STORAGE_URL", "redis://127.0.0.1:6379/0")
    first, second = fresh_app(), fresh_app()
    assert [junk(first) for _ in range(60)] == [400] * 60
    assert junk(second) == 429  # the same Redis: one count for both servers

    monkeypatch.setenv("UNSUBSVC_RATELIMIT_STORAGE_URL", "nosuch://x")
    with pytest.raises(Exception, match="nosuch"):
        fresh_app()


def test_webhook_allow_private(
    monkeypatch: pytest.MonkeyPatch, fresh_app: Callable[[], Flask]
) -> None:
    """UNSUBSVC_WEBHOOK_ALLOW_PRIVATE=1 lets a webhook reach loopback; off by default."""
    app = fresh_app()
    refused = CommandRunner(runtime_of(app)).invoke(
        args=["webhooks", "add", "http://127.0.0.1:9/hook"]
    )
    assert refused.exit_code == 1 and "loopback" in refused.output
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "1")
    app = fresh_app()
    added = CommandRunner(runtime_of(app)).invoke(
        args=["webhooks", "add", "http://127.0.0.1:9/hook"]
    )
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "maybe")
    with pytest.raises(ConfigError, match="UNSUBSVC_WEBHOOK_ALLOW_PRIVATE"):
        load_settings()


def test_webhook_max_endpoints(
    monkeypatch: pytest.MonkeyPatch, fresh_app: Callable[[], Flask]
) -> None:
    """UNSUBSVC_WEBHOOK_MAX_ENDPOINTS bounds active endpoints (default 10); above 0."""
    assert load_settings().webhook_max_endpoints == 10
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_MAX_ENDPOINTS", "1")
    runner = CommandRunner(runtime_of(fresh_app()))
    assert runner.invoke(args=["webhooks", "add", "http://127.0.0.1:9/a"]).exit_code == 0
    refused = runner.invoke(args=["webhooks", "add", "http://127.0.0.1:9/b"])
    assert refused.exit_code == 1
    assert "UNSUBSVC_WEBHOOK_MAX_ENDPOINTS=1" in refused.output
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_MAX_ENDPOINTS", "0")
    with pytest.raises(ConfigError, match="UNSUBSVC_WEBHOOK_MAX_ENDPOINTS"):
        load_settings()
