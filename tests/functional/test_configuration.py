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
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import FakeClock
from tests.helpers import CommandRunner, csrf_token, links_for, make_list, path_of, transaction
from tests.smtp_sink import SmtpSink
from unsubsvc.db.models import OutgoingMail
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.services import admin_users
from unsubsvc.settings import ConfigError, load_settings
from unsubsvc.web.app import create_app
from unsubsvc.web.context import runtime_of, wait_for_mail

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


# -- mail unsubsvc sends itself, undo and link lifetimes, language ---------------------------


def _ask_for_a_link(app: Flask, *, new_database: bool = True) -> None:
    """Have /manage mail Ann a sign-in link (she is on the list), and wait for the send."""
    if new_database:
        make_list(app)
        links_for(app)
    response = app.test_client().post("/manage", data={"email": "ann@example.com"})
    assert response.status_code == 303
    wait_for_mail()


def _link_in(message: EmailMessage, under: str) -> str:
    """Return the path of the link under ``under`` in a received message's text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = re.search(rf"https?://[^/\s]+({re.escape(under)}\S+)", part.get_content())
    assert found is not None
    return found.group(1)


def test_smtp_url(
    make_app: Callable[..., Flask], smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset: mail is queued and not sent; set: it goes to that server; a bad URL is refused."""
    quiet = make_app()
    _ask_for_a_link(quiet)
    with transaction(quiet) as session:
        (queued,) = session.scalars(sa.select(OutgoingMail)).all()
        assert queued.sent_at is None and queued.attempts == 0
    assert smtp_server.messages == []

    monkeypatch.setenv("UNSUBSVC_SMTP_URL", smtp_server.url)
    assert load_settings().smtp_url == smtp_server.url
    _ask_for_a_link(make_app(), new_database=False)  # the same database: Ann is known
    (message,) = smtp_server.wait_for(1)
    assert message["To"].lower() == "ann@example.com"

    monkeypatch.setenv("UNSUBSVC_SMTP_URL", "http://127.0.0.1:25")
    with pytest.raises(ConfigError, match="UNSUBSVC_SMTP_URL"):
        load_settings()


def test_mail_from(
    make_app: Callable[..., Flask], smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNSUBSVC_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("UNSUBSVC_MAIL_FROM", "Lists@Example.org")
    _ask_for_a_link(make_app())
    (message,) = smtp_server.wait_for(1)
    assert "lists@example.org" in message["From"].lower()
    assert smtp_server.received[0].mail_from.lower() == "lists@example.org"
    monkeypatch.setenv("UNSUBSVC_MAIL_FROM", "not an address")
    with pytest.raises(ConfigError, match="UNSUBSVC_MAIL_FROM"):
        load_settings()


def test_mail_retention_days(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Whole days above 0, default 7 (the purge itself: test_outbox)."""
    assert load_settings().mail_retention_days == 7
    monkeypatch.setenv("UNSUBSVC_MAIL_RETENTION_DAYS", "2")
    assert load_settings().mail_retention_days == 2
    monkeypatch.setenv("UNSUBSVC_MAIL_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError, match="UNSUBSVC_MAIL_RETENTION_DAYS"):
        load_settings()


def test_undo_window(
    make_app: Callable[..., Flask], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 60-second window: the undo link works for a minute, not after (default: 30 minutes)."""
    monkeypatch.setenv("UNSUBSVC_UNDO_WINDOW", "60")
    app = make_app()
    make_list(app)
    client = app.test_client(use_cookies=False)

    def undo_after(seconds: int) -> str:
        landing = path_of(links_for(app).unsubscribe_url)
        page = client.get(client.post(landing + "/confirm").headers["Location"])
        html = page.get_data(as_text=True)
        action = re.search(r'<form method="post" action="([^"]+/undo)"', html)
        assert action is not None
        fields = dict(re.findall(r'<input type="hidden" name="(undo|scope)" value="([^"]+)"', html))
        clock.advance(seconds=seconds)
        return str(client.post(action.group(1), data=fields).headers["Location"])

    assert "done=resubscribed" in undo_after(50)
    assert "done=undo-refused" in undo_after(61)
    monkeypatch.setenv("UNSUBSVC_UNDO_WINDOW", "soon")
    with pytest.raises(ConfigError, match="UNSUBSVC_UNDO_WINDOW"):
        load_settings()


def test_manage_link_max_age(
    make_app: Callable[..., Flask],
    smtp_server: SmtpSink,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sign-in link lives this many seconds (default an hour)."""
    monkeypatch.setenv("UNSUBSVC_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("UNSUBSVC_MANAGE_LINK_MAX_AGE", "120")
    app = make_app()
    _ask_for_a_link(app)
    link = _link_in(smtp_server.wait_for(1)[0], "/manage/")
    clock.advance(seconds=100)
    assert app.test_client().get(link).status_code == 200
    clock.advance(seconds=21)
    assert app.test_client().get(link).status_code == 400
    monkeypatch.setenv("UNSUBSVC_MANAGE_LINK_MAX_AGE", "-5")
    with pytest.raises(ConfigError, match="UNSUBSVC_MANAGE_LINK_MAX_AGE"):
        load_settings()


def test_confirm_link_max_age(
    make_app: Callable[..., Flask],
    smtp_server: SmtpSink,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mailed resubscribe confirmation lives this many seconds (default 7 days)."""
    monkeypatch.setenv("UNSUBSVC_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("UNSUBSVC_CONFIRM_LINK_MAX_AGE", "3600")
    app = make_app()
    make_list(app)
    client = app.test_client(use_cookies=False)
    links = links_for(app)
    client.post(path_of(links.unsubscribe_url), data=ONE_CLICK)
    asked = client.post(path_of(links.preferences_url) + "/resubscribe", data={"scope": "list"})
    assert asked.status_code == 303
    wait_for_mail()
    link = _link_in(smtp_server.wait_for(1)[0], "/p/confirm/")
    clock.advance(seconds=3500)
    assert client.get(link).status_code == 200  # still valid (GET changes nothing)
    clock.advance(seconds=101)
    assert client.post(link).status_code == 400  # expired: still unsubscribed
    monkeypatch.setenv("UNSUBSVC_CONFIRM_LINK_MAX_AGE", "a week")
    with pytest.raises(ConfigError, match="UNSUBSVC_CONFIRM_LINK_MAX_AGE"):
        load_settings()


def test_default_locale(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """The language when neither ?lang=, the subscriber, Accept-Language nor the list says."""
    monkeypatch.setenv("UNSUBSVC_DEFAULT_LOCALE", "fr")
    app = make_app()
    make_list(app)
    html = app.test_client().get(path_of(links_for(app).unsubscribe_url)).get_data(as_text=True)
    assert '<html lang="fr"' in html
    monkeypatch.setenv("UNSUBSVC_DEFAULT_LOCALE", "xx")
    with pytest.raises(ConfigError, match="UNSUBSVC_DEFAULT_LOCALE"):
        load_settings()


def test_sendgrid_public_key(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SendGrid's verification key: /inbound/sendgrid takes only what it signs, nothing without."""
    from tests.esp_signing import SendGridSigner

    signer, body = SendGridSigner.make(), b'[{"event": "delivered"}]'

    def post(app: Flask) -> int:
        client = app.test_client()
        return client.post("/inbound/sendgrid", data=body, headers=signer.headers(body)).status_code

    assert post(make_app()) == 403
    monkeypatch.setenv("UNSUBSVC_SENDGRID_PUBLIC_KEY", signer.public_key)
    assert post(make_app()) == 200
    monkeypatch.setenv("UNSUBSVC_SENDGRID_PUBLIC_KEY", SendGridSigner.make().public_key)
    assert post(make_app()) == 403


def test_ses_topic_arns(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """The SNS topics /inbound/ses accepts (comma-separated); unset: any (signature checked)."""
    import json

    from tests.esp_signing import SnsSigner, fixture, sns_notification
    from unsubsvc.core.esp_ses import CertificateCache
    from unsubsvc.web.esp import ses

    signer = SnsSigner.make()
    monkeypatch.setattr(ses, "CERTIFICATES", CertificateCache(lambda url: signer.pem))
    signed = signer.sign(sns_notification(fixture("ses_delivery.json")))  # MyTopic, us-west-2
    body = json.dumps(signed).encode()

    def post(app: Flask) -> int:
        client = app.test_client()
        return client.post("/inbound/ses", data=body, content_type="text/plain").status_code

    assert post(make_app()) == 200
    topics = "arn:aws:sns:us-east-1:123456789012:Other, arn:aws:sns:us-west-2:123456789012:MyTopic"
    monkeypatch.setenv("UNSUBSVC_SES_TOPIC_ARNS", topics)
    assert post(make_app()) == 200
    monkeypatch.setenv("UNSUBSVC_SES_TOPIC_ARNS", "arn:aws:sns:us-east-1:123456789012:Other")
    assert post(make_app()) == 403


def test_postmark_webhook_auth(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """user:password Postmark sends as basic auth; unset, /inbound/postmark refuses (403)."""
    import base64

    body = b'{"RecordType": "Delivery"}'

    def post(app: Flask, credentials: str) -> int:
        token = base64.b64encode(credentials.encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        return app.test_client().post("/inbound/postmark", data=body, headers=headers).status_code

    assert post(make_app(), "pm:secret") == 403
    monkeypatch.setenv("UNSUBSVC_POSTMARK_WEBHOOK_AUTH", "pm:secret:with:colons")
    app = make_app()
    assert post(app, "pm:secret:with:colons") == 200
    assert post(app, "pm:wrong") == 401
    monkeypatch.setenv("UNSUBSVC_POSTMARK_WEBHOOK_AUTH", "no-password")
    with pytest.raises(ConfigError, match="UNSUBSVC_POSTMARK_WEBHOOK_AUTH"):
        load_settings()


def test_mailgun_signing_key(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mailgun's HTTP webhook signing key; unset, /inbound/mailgun refuses (403)."""
    import hashlib
    import hmac
    import json

    def post(app: Flask, key: str, token: str) -> int:
        timestamp = str(int(runtime_of(app).now().timestamp()))
        digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        body = {
            "signature": {"timestamp": timestamp, "token": token, "signature": digest},
            "event-data": {"event": "delivered", "id": "x"},
        }
        return app.test_client().post("/inbound/mailgun", data=json.dumps(body)).status_code

    assert post(make_app(), "mg-key", "t1") == 403
    monkeypatch.setenv("UNSUBSVC_MAILGUN_SIGNING_KEY", "mg-key")
    app = make_app()
    assert post(app, "mg-key", "t2") == 200
    assert post(app, "other-key", "t3") == 403


def _policy_headers(app: Flask) -> dict[str, str]:
    """Return API headers, with lists news and other made."""
    from unsubsvc.services.apikeys import create_key

    runtime = runtime_of(app)
    with runtime.unit_of_work() as session:
        key = create_key(session, "policy", now=runtime.now()).secret
    make_list(app)
    make_list(app, "other")
    return {"Authorization": f"Bearer {key}"}


def _excluded(app: Flask, headers: dict[str, str], list_name: str) -> list[dict[str, str]]:
    check = {"emails": ["ann@example.com"]}
    path = f"/api/v1/lists/{list_name}/eligibility"
    answer = app.test_client().post(path, json=check, headers=headers).json
    assert answer is not None
    excluded: list[dict[str, str]] = answer["excluded"]
    return excluded


def _soft_bounces_until_bounced(app: Flask, clock: FakeClock, days_apart: float = 0) -> int:
    """Post soft bounces through the API until ann is ineligible; return how many it took."""
    client, headers = app.test_client(), _policy_headers(app)
    for count in range(1, 10):
        body = {"email": "ann@example.com", "type": "soft"}
        answer = client.post("/api/v1/lists/news/bounces", json=body, headers=headers)
        assert answer.status_code == 200
        if excluded := _excluded(app, headers, "news"):
            assert excluded[0]["reason"] == "bounced"
            return count
        clock.advance(days=days_apart)
    return 0


def test_soft_bounce_limit(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """How many soft bounces within the window suppress an address (default 3)."""
    assert _soft_bounces_until_bounced(make_app(), clock) == 3
    monkeypatch.setenv("UNSUBSVC_SOFT_BOUNCE_LIMIT", "5")
    assert load_settings().soft_bounce_limit == 5
    monkeypatch.setenv("UNSUBSVC_SOFT_BOUNCE_LIMIT", "0")
    with pytest.raises(ConfigError):
        load_settings()


def test_soft_bounce_window_days(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """The days soft bounces count over (default 14): bounces further apart never add up."""
    monkeypatch.setenv("UNSUBSVC_SOFT_BOUNCE_WINDOW_DAYS", "1")
    assert _soft_bounces_until_bounced(make_app(), clock, days_apart=2) == 0


def test_complaint_scope(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """sender (default): a complaint suppresses the address on every list; list: on its own."""
    assert load_settings().complaint_scope == "sender"
    monkeypatch.setenv("UNSUBSVC_COMPLAINT_SCOPE", "LIST")
    app = make_app()
    headers = _policy_headers(app)
    complaint = {"email": "ann@example.com"}
    path = "/api/v1/lists/news/complaints"
    assert app.test_client().post(path, json=complaint, headers=headers).status_code == 200
    assert _excluded(app, headers, "news")[0]["reason"] == "unsubscribed"
    assert _excluded(app, headers, "other") == []
    monkeypatch.setenv("UNSUBSVC_COMPLAINT_SCOPE", "everything")
    with pytest.raises(ConfigError, match="UNSUBSVC_COMPLAINT_SCOPE"):
        load_settings()
