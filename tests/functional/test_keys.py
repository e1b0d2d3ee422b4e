"""Keys in production: weak keys refused, and one key never opens another purpose's door.

The incident this guards against: a weak UNSUBSVC_SECRET_KEY brute-forced
offline from one public unsubscribe link, then used to forge an admin
session cookie, because one key signed links, CSRF tokens and the session.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from tests.conftest import FIXED_NOW, SECRET
from tests.helpers import CommandRunner
from unsubsvc.core.keys import KeyPurpose
from unsubsvc.settings import ConfigError, load_settings
from unsubsvc.web.context import runtime_of

STRONG = "m1Hc0Vt3Qy7-RbLw9ZkXa5JpNd2Ue8Gs4Fo6Ti_Yx0Cv7Bn3Mq9Wl1Ej5Rh8Sg2K"
WEAK_KEYS = {
    "changeme": ("changeme", "known value"),
    "one-letter": ("a", "too short"),
    "sixteen-characters": ("Zx8_Qw2-Er5tYu7i", "too short"),
    "secret-comma": ("secret,", "known value"),
}


def production(key: str) -> dict[str, str]:
    return {
        "UNSUBSVC_ENV": "production",
        "UNSUBSVC_BASE_URL": "https://unsub.example.com",
        "UNSUBSVC_SECRET_KEY": key,
    }


@pytest.mark.parametrize(("key", "reason"), list(WEAK_KEYS.values()), ids=list(WEAK_KEYS))
def test_production_refuses_a_weak_key(tmp_path: Path, key: str, reason: str) -> None:
    """The error names the variable, the reason and the remedy, and never the key."""
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, production(key))
    message = str(info.value)
    assert message.startswith("UNSUBSVC_SECRET_KEY is ")
    assert reason in message
    assert "unsubsvc secret generate" in message
    if len(key.strip(",")) > 1:
        assert key.strip(",") not in message.replace("unsubsvc secret generate", "")


def test_production_refuses_a_weak_older_rotation_key(tmp_path: Path) -> None:
    """An old key still verifies links, so it can still be brute-forced from one."""
    with pytest.raises(ConfigError, match=r"key 2 of 2, newest first\) is a known value"):
        load_settings(tmp_path, production(f"{STRONG},changeme"))


def test_production_accepts_strong_keys(tmp_path: Path) -> None:
    older = "0d3f8a61c2b94e7f5a1c8d3e6b9f2a4c7e0d1b5f8a3c6e9d2b4f7a0c3e5d8b1f"
    settings = load_settings(tmp_path, production(f"{STRONG},{older}"))
    assert settings.secret_keys == (STRONG, older)


@pytest.mark.parametrize("mode", ["development", "testing"])
def test_other_modes_only_warn(tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    environ = {**production("changeme"), "UNSUBSVC_ENV": mode}
    with caplog.at_level(logging.WARNING, logger="unsubsvc.settings"):
        settings = load_settings(tmp_path, environ)
    assert settings.secret_keys == ("changeme",)
    warnings = [r.getMessage() for r in caplog.records if "UNSUBSVC_SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 1
    assert "known value" in warnings[0]
    assert "changeme" not in warnings[0].replace("secret generate", "")


def test_development_key_is_strong(tmp_path: Path) -> None:
    """The key kept in the instance folder would pass in production."""
    generated = load_settings(tmp_path, {}).secret_keys[0]
    load_settings(tmp_path / "other", production(generated))  # does not raise


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("UNSUBSVC_")}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "unsubsvc.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(("key", "reason"), list(WEAK_KEYS.values()), ids=list(WEAK_KEYS))
def test_cli_under_production_with_a_weak_key_exits_with_the_message(
    tmp_path: Path, key: str, reason: str
) -> None:
    env = {**production(key), "UNSUBSVC_INSTANCE_PATH": str(tmp_path)}
    run = run_cli("status", "--list", "news", "--email", "ann@example.com", env=env)
    assert run.returncode == 1
    assert run.stderr.startswith("Error: configuration: UNSUBSVC_SECRET_KEY is ")
    assert reason in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_serve_under_production_with_a_weak_key_exits_with_the_message(tmp_path: Path) -> None:
    env = {**production("changeme"), "UNSUBSVC_INSTANCE_PATH": str(tmp_path)}
    run = run_cli("serve", "--port", "0", env=env)
    assert run.returncode == 1
    assert "Error: configuration: UNSUBSVC_SECRET_KEY is a known value" in run.stderr
    assert "Traceback" not in run.stderr


def test_help_works_with_a_weak_production_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in production("changeme").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    result = CommandRunner().invoke(args=["--help"])
    assert result.exit_code == 0
    assert "secret" in result.output


def test_secret_generate_prints_one_strong_key(tmp_path: Path) -> None:
    """Only the key on stdout; the rotation hint on stderr; no configuration needed."""
    env = {**production("changeme"), "UNSUBSVC_INSTANCE_PATH": str(tmp_path)}
    run = run_cli("secret", "generate", env=env)
    assert run.returncode == 0, run.stderr
    key = run.stdout.removesuffix("\n")
    assert "\n" not in key
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", key)
    assert "UNSUBSVC_SECRET_KEY=<new key>,<current key>" in run.stderr
    load_settings(tmp_path, production(key))  # production accepts it
    assert run_cli("secret", "generate", env=env).stdout != run.stdout


# --- the session cookie and CSRF tokens have a key of their own ---------------------------


def session_cookie(key: str | bytes, data: Mapping[str, object]) -> str:
    """Return Flask's session cookie for ``data`` signed with ``key``, as Flask would."""
    forger = Flask("forger")
    forger.secret_key = key
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    return serializer.dumps(data)


def csrf_of(page: str) -> tuple[str, str]:
    """Return the login form's CSRF token and the raw value its session holds."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match is not None, page
    form_token = match.group(1)
    # Flask-WTF signs the session's raw token for the form; the payload is readable.
    _, raw = URLSafeTimedSerializer("unused", salt="wtf-csrf-token").loads_unsafe(form_token)
    assert isinstance(raw, str)
    return form_token, raw


FORGERS = {
    "raw-configured-secret": (lambda app: SECRET, 400),
    "unsubscribe-link-key": (
        lambda app: runtime_of(app).keyring.current(KeyPurpose.UNSUBSCRIBE_LINKS),
        400,
    ),
    "preference-link-key": (
        lambda app: runtime_of(app).keyring.current(KeyPurpose.PREFERENCE_LINKS),
        400,
    ),
    # The control: the real session key passes the CSRF check (200: a failed sign-in).
    "sessions-key": (lambda app: runtime_of(app).keyring.current(KeyPurpose.SESSIONS), 200),
}


@pytest.mark.parametrize(("forge_key", "status"), list(FORGERS.values()), ids=list(FORGERS))
def test_session_cookie_forged_with_another_key_fails_csrf(
    app: Flask, forge_key: object, status: int
) -> None:
    assert callable(forge_key)
    page = app.test_client().get("/admin/login", base_url="https://localhost")
    assert page.status_code == 200
    form_token, raw = csrf_of(page.get_data(as_text=True))
    forger = app.test_client()  # nothing of the genuine session
    forger.set_cookie(
        app.config["SESSION_COOKIE_NAME"],
        session_cookie(forge_key(app), {"csrf_token": raw}),
        domain="localhost",
    )
    answer = forger.post(
        "/admin/login",
        data={"csrf_token": form_token, "email": "ann@example.com", "password": "not-it"},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/admin/login"},  # Flask-WTF's SSL-strict check
    )
    assert answer.status_code == status


@pytest.mark.parametrize(
    "forge_key",
    [
        lambda app: SECRET,
        lambda app: runtime_of(app).keyring.current(KeyPurpose.UNSUBSCRIBE_LINKS),
    ],
    ids=["raw-configured-secret", "unsubscribe-link-key"],
)
def test_admin_session_forged_with_a_link_key_does_not_open_the_console(
    app: Flask, forge_key: object
) -> None:
    assert callable(forge_key)
    client = app.test_client()
    forged = {"admin_id": 1, "admin_since": FIXED_NOW.timestamp()}
    client.set_cookie(
        app.config["SESSION_COOKIE_NAME"],
        session_cookie(forge_key(app), forged),
        domain="localhost",
    )
    answer = client.get("/admin", base_url="https://localhost")
    assert answer.status_code != 200
    assert answer.status_code in {302, 303, 401, 403}


def test_flask_secret_keys_are_the_sessions_keys(make_app: object) -> None:
    """SECRET_KEY is the newest secret's SESSIONS key; fallbacks are the older ones'."""
    assert callable(make_app)
    app = make_app(secret_keys=(STRONG, SECRET))
    keyring = runtime_of(app).keyring
    assert app.config["SECRET_KEY"] == keyring.current(KeyPurpose.SESSIONS)
    assert app.config["SECRET_KEY_FALLBACKS"] == [keyring.keys(KeyPurpose.SESSIONS)[1]]
    assert SECRET not in (app.config["SECRET_KEY"], *app.config["SECRET_KEY_FALLBACKS"])
    assert STRONG not in (app.config["SECRET_KEY"], *app.config["SECRET_KEY_FALLBACKS"])
