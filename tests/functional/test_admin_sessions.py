"""Admin sessions held server-side: sign-out, rotation, timeouts, revocation, lockout, cookies."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash

from tests.conftest import FakeClock
from tests.helpers import CommandRunner, csrf_token, transaction
from unsubsvc.db.models import AdminSession, AdminUser, AuditEvent
from unsubsvc.services import admin_users
from unsubsvc.web import admin as console

EMAIL = "Root@Example.com"
PASSWORD = "correct horse battery"
WRONG = "not the password at all"
HOME = "192.0.2.10"


def make_admin(app: Flask, clock: FakeClock, email: str = EMAIL) -> None:
    with transaction(app) as session:
        admin_users.create_admin(session, email, PASSWORD, now=clock.now)


def from_addr(address: str) -> dict[str, Any]:
    """Request options that make the request come from ``address``."""
    return {"environ_base": {"REMOTE_ADDR": address}}


def sign_in(
    client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, *, addr: str = HOME
) -> Any:
    page = client.get("/admin/login", **from_addr(addr)).get_data(as_text=True)
    data = {"email": email, "password": password, "csrf_token": csrf_token(page)}
    return client.post("/admin/login", data=data, **from_addr(addr))


def sign_out(client: FlaskClient) -> Any:
    page = client.get("/admin").get_data(as_text=True)
    return client.post("/admin/logout", data={"csrf_token": csrf_token(page)})


def cookie_of(client: FlaskClient, name: str = "session") -> str:
    found = client.get_cookie(name)
    assert found is not None, f"no {name} cookie"
    return found.value


def browser_with(app: Flask, cookie: str, name: str = "session") -> FlaskClient:
    """Return another browser holding a copy of a cookie."""
    other = app.test_client()
    other.set_cookie(name, cookie)
    return other


def status_of(client: FlaskClient, path: str = "/admin") -> int:
    with client.get(path) as response:
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/admin/login")
        return response.status_code


def session_rows(app: Flask) -> list[AdminSession]:
    with transaction(app) as session:
        return list(session.scalars(sa.select(AdminSession).order_by(AdminSession.created_at)))


def audit_actions(app: Flask) -> list[tuple[str, str, str | None, str | None]]:
    with transaction(app) as session:
        rows = session.execute(
            sa.select(
                AuditEvent.action, AuditEvent.actor_kind, AuditEvent.actor, AuditEvent.client
            ).order_by(AuditEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def the_admin(app: Flask) -> AdminUser:
    with transaction(app) as session:
        return session.scalars(sa.select(AdminUser)).one()


# -- signing out ---------------------------------------------------------------------------


def test_a_cookie_replayed_after_sign_out_is_refused(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    assert sign_in(client).status_code == 303
    copied = cookie_of(client)
    assert status_of(browser_with(app, copied)) == 200  # the copy works while signed in
    assert sign_out(client).status_code == 303
    assert status_of(client) == 302
    assert status_of(browser_with(app, copied)) == 302  # and not after: the row has ended
    (row,) = session_rows(app)
    assert row.ended_at == clock.now
    actions = [(action, kind, actor) for action, kind, actor, _ in audit_actions(app)]
    assert actions == [
        (admin_users.SIGNED_IN_ACTION, "admin", EMAIL),
        (admin_users.SIGNED_OUT_ACTION, "admin", EMAIL),
    ]


def test_the_cookie_holds_a_random_id_and_the_database_only_its_hash(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    sign_in(client)
    with client.session_transaction() as cookie:
        session_id = cookie[console.SESSION_KEY]
    assert len(session_id) >= 43  # 32 random bytes, base64url
    (row,) = session_rows(app)
    assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert session_id not in repr([(c, getattr(row, c)) for c in AdminSession.__table__.c.keys()])
    assert (row.created_at, row.last_seen_at, row.ended_at, row.client) == (
        clock.now,
        clock.now,
        None,
        HOME,
    )


# -- signing in starts a new session -------------------------------------------------------


def test_sign_in_issues_a_new_session_id(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    make_admin(app, clock)
    client.get("/admin/login")
    before = cookie_of(client)  # what a fixation attacker would have planted
    with client.session_transaction() as cookie:
        assert console.SESSION_KEY not in cookie
    assert sign_in(client).status_code == 303
    after = cookie_of(client)
    assert after != before
    assert status_of(client) == 200
    assert status_of(browser_with(app, before)) == 302  # the planted cookie is not signed in


def test_signing_in_again_ends_the_browsers_previous_session(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    make_admin(app, clock, "second@example.com")
    sign_in(client)
    with client.session_transaction() as cookie:
        first_id = cookie[console.SESSION_KEY]
    # Signed in already, the page redirects on GET; POST the form again as another admin.
    page = client.get("/admin").get_data(as_text=True)
    data = {"email": "second@example.com", "password": PASSWORD, "csrf_token": csrf_token(page)}
    first = cookie_of(client)  # signed in, with the form's CSRF token
    assert client.post("/admin/login", data=data).status_code == 303
    with client.session_transaction() as cookie:
        assert cookie[console.SESSION_KEY] != first_id
    assert "second@example.com" in client.get("/admin").get_data(as_text=True)
    assert status_of(browser_with(app, first)) == 302
    ended = [row.ended_at is not None for row in session_rows(app)]
    assert ended == [True, False]


# -- timeouts ------------------------------------------------------------------------------


def test_idle_timeout(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    make_admin(app, clock)
    sign_in(client)
    for _ in range(4):  # two hours of activity, a page every 29 minutes
        clock.advance(minutes=29)
        assert status_of(client) == 200
    clock.advance(minutes=30, seconds=1)
    assert status_of(client) == 302
    (row,) = session_rows(app)
    assert row.ended_at == clock.now
    clock.advance(seconds=1)  # the ended row stays ended, whatever the cookie says
    assert status_of(browser_with(app, cookie_of(client))) == 302


def test_last_seen_is_written_at_most_once_a_minute(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    sign_in(client)
    signed_in_at = clock.now
    clock.advance(seconds=50)
    assert status_of(client) == 200
    assert session_rows(app)[0].last_seen_at == signed_in_at  # a read that wrote nothing
    clock.advance(seconds=20)
    assert status_of(client) == 200
    assert session_rows(app)[0].last_seen_at == clock.now


def test_absolute_timeout(make_app: Callable[..., Flask], clock: FakeClock) -> None:
    app = make_app(admin_session_max_age=3600, admin_idle_timeout=1800)
    client = app.test_client()
    make_admin(app, clock)
    sign_in(client)
    for _ in range(3):
        clock.advance(minutes=20)
        assert status_of(client) == 200  # one hour, always active
    clock.advance(seconds=1)
    assert status_of(client) == 302
    assert session_rows(app)[0].ended_at == clock.now


# -- revocation ----------------------------------------------------------------------------


def test_revoke_sessions_ends_live_sessions(
    app: Flask, client: FlaskClient, clock: FakeClock, runner: CommandRunner
) -> None:
    make_admin(app, clock)
    make_admin(app, clock, "other@example.com")
    laptop, phone, colleague = client, app.test_client(), app.test_client()
    sign_in(laptop, addr="192.0.2.1")
    sign_in(phone, "root@EXAMPLE.com", addr="192.0.2.2")
    sign_in(colleague, "other@example.com", addr="192.0.2.3")
    assert [status_of(b) for b in (laptop, phone, colleague)] == [200, 200, 200]
    result = runner.invoke(args=["admin", "revoke-sessions", "ROOT@example.com"])
    assert result.exit_code == 0, result.output
    assert "Ended 2 sessions" in result.stderr and result.stdout == ""
    assert [status_of(b) for b in (laptop, phone, colleague)] == [302, 302, 200]
    revoked = [e for e in audit_actions(app) if e[0] == admin_users.REVOKED_ACTION]
    assert [(kind, client_addr) for _, kind, _, client_addr in revoked] == [("cli", "cli")]
    again = runner.invoke(args=["admin", "revoke-sessions", "root@example.com"])
    assert again.exit_code == 0 and "Ended 0 sessions" in again.stderr
    unknown = runner.invoke(args=["admin", "revoke-sessions", "nobody@example.com"])
    assert unknown.exit_code == 1 and "no admin" in unknown.output


def test_disabling_an_account_ends_its_session_rows(
    app: Flask, client: FlaskClient, clock: FakeClock, runner: CommandRunner
) -> None:
    make_admin(app, clock)
    sign_in(client)
    assert runner.invoke(args=["admin", "disable", EMAIL]).exit_code == 0
    assert [row.ended_at for row in session_rows(app)] == [clock.now]
    assert status_of(client) == 302


# -- lockout -------------------------------------------------------------------------------


def test_wrong_passwords_lock_the_account(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    runner: CommandRunner,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_admin(app, clock)
    caplog.set_level(logging.INFO, logger="unsubsvc")
    answers = []
    for i in range(20):  # from twenty addresses: no per-address limit is what stops them
        page = sign_in(client, password=WRONG, addr=f"198.51.100.{i + 1}")
        assert page.status_code == 200  # 200, so the count commits
        answers.append("Too many attempts" in page.get_data(as_text=True))
    assert answers == [False] * 10 + [True] * 10
    locked = the_admin(app)
    assert (locked.failed_logins, locked.locked_until) == (
        admin_users.MAX_FAILED_LOGINS,
        clock.now + admin_users.LOCKOUT,
    )
    listed = runner.invoke(args=["admin", "list"]).stdout
    assert f'"locked_until": "{(clock.now + admin_users.LOCKOUT).isoformat()}"' in listed

    # While locked, the right password is refused too, without running scrypt.
    checked: list[str] = []

    def spy(stored: str, password: str) -> bool:
        checked.append(password)
        return check_password_hash(stored, password)

    monkeypatch.setattr("unsubsvc.services.admin_users.check_password_hash", spy)
    clock.advance(minutes=14, seconds=59)
    refused = sign_in(client, addr="192.0.2.1")
    assert "Too many attempts" in refused.get_data(as_text=True) and checked == []
    assert status_of(client) == 302

    clock.advance(seconds=2)  # the lock has run out
    assert sign_in(client, addr=HOME).status_code == 303 and checked == [PASSWORD]
    assert status_of(client) == 200
    assert the_admin(app).failed_logins == 0

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    refusals = [r.getMessage() for r in warnings if "sign-in refused" in r.getMessage()]
    assert len(refusals) == 21
    assert "r••t@example.com" in refusals[0] and "198.51.100.1" in refusals[0]
    assert "192.0.2.1" in refusals[-1]
    assert any("locked until" in r.getMessage() for r in warnings)
    assert all(WRONG not in r.getMessage() and PASSWORD not in r.getMessage() for r in warnings)
    assert "root@example.com" not in caplog.text.lower()

    actions = [action for action, *_ in audit_actions(app)]
    assert actions.count(admin_users.REFUSED_ACTION) == 10
    assert actions.count(admin_users.LOCKED_ACTION) == 1
    assert actions.count(admin_users.THROTTLED_ACTION) == 11
    assert actions[-1] == admin_users.SIGNED_IN_ACTION
    refused_events = [e for e in audit_actions(app) if e[0] == admin_users.REFUSED_ACTION]
    assert {(kind, actor) for _, kind, actor, _ in refused_events} == {
        ("anonymous", "root@example.com")
    }
    assert [c for *_, c in refused_events] == [f"198.51.100.{i}" for i in range(1, 11)]


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"], ids=["account", "no-account"])
def test_the_answer_does_not_tell_whether_an_account_exists(
    app: Flask, client: FlaskClient, clock: FakeClock, email: str
) -> None:
    make_admin(app, clock)
    pages = [
        sign_in(client, email, WRONG, addr=f"203.0.113.{i}").get_data(as_text=True)
        for i in range(12)
    ]
    said = ["Too many attempts" in p for p in pages]
    assert said == [False] * 10 + [True] * 2
    assert all("Wrong address or password." in p for p in pages[:10])


def test_a_good_sign_in_resets_the_count(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    make_admin(app, clock)
    for round_ in range(2):
        for i in range(admin_users.MAX_FAILED_LOGINS - 1):
            sign_in(app.test_client(), password=WRONG, addr=f"198.51.{round_}.{i}")
        # Nine wrong, then right: never locked.
        assert sign_in(client, addr=f"203.0.113.{round_}").status_code == 303
        assert sign_out(client).status_code == 303
    assert the_admin(app).locked_until is None


# -- cookies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "base_url", "name", "secure"),
    [
        ("production", "https://unsub.example.com", "__Host-session", True),
        ("development", "https://unsub.example.com", "session", True),
        ("development", "http://127.0.0.1:8000", "session", False),
    ],
    ids=["production", "development-https", "development-http"],
)
def test_session_cookie_flags(
    make_app: Callable[..., Flask],
    clock: FakeClock,
    mode: str,
    base_url: str,
    name: str,
    secure: bool,
) -> None:
    # Production refuses weak keys: a random 384-bit one.
    app = make_app(env=mode, base_url=base_url, secret_keys=(secrets.token_urlsafe(48),))
    client = app.test_client()
    make_admin(app, clock)
    response = sign_in(client)
    assert response.status_code == 303
    (set_cookie,) = response.headers.getlist("Set-Cookie")
    attributes = [part.strip().split("=")[0].lower() for part in set_cookie.split(";")]
    assert set_cookie.startswith(f"{name}=")
    assert {"httponly", "path"} <= set(attributes) and "domain" not in attributes
    assert "Path=/;" in set_cookie + ";" and "SameSite=Lax" in set_cookie
    assert ("secure" in attributes) is secure
    assert status_of(browser_with(app, cookie_of(client, name), name)) == 200
