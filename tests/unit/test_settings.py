"""load_settings: defaults, the development key, production refusals, and parsing errors."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from unsubsvc.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_BODY,
    ConfigError,
    load_settings,
    normalize_database_url,
)

#: Production refuses weak keys: this one is `openssl rand -hex 32`'s shape (256 bits).
PRODUCTION_KEY = "3f1c9a7be4d2086f5a1e9c3b7d2f4a6081c5e9b3d7f1a2c4e6b8d0f2a4c6e8b1"
PRODUCTION_OK = {
    "UNSUBSVC_ENV": "production",
    "UNSUBSVC_SECRET_KEY": PRODUCTION_KEY,
    "UNSUBSVC_BASE_URL": "https://unsub.example.com",
}


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """An instance folder that does not exist yet, as on a first start."""
    return tmp_path / "instance"


def test_defaults(instance: Path) -> None:
    """With nothing set: SQLite in the instance folder, local base URL, development mode."""
    settings = load_settings(instance, {})
    assert settings.database_url == f"sqlite:///{instance / 'unsubsvc.sqlite'}"
    assert settings.database_url.startswith("sqlite:////")  # absolute path
    assert settings.base_url == DEFAULT_BASE_URL == "http://127.0.0.1:8000"
    assert settings.env == "development"
    assert settings.production is False
    assert settings.mailto is None
    assert settings.token_max_age is None
    assert settings.max_body == DEFAULT_MAX_BODY
    assert settings.sender_name == "unsubsvc"


def test_defaults_ignore_process_environment(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit environ mapping is used instead of os.environ."""
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://from-os-environ.example.com")
    assert load_settings(instance, {}).base_url == DEFAULT_BASE_URL


def test_process_environment_is_the_default(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a mapping, os.environ is read."""
    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://from-os-environ.example.com")
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "k")
    assert load_settings(instance).base_url == "https://from-os-environ.example.com"


def test_development_key_is_generated_and_reused(
    instance: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a key, one is generated once, kept in the instance folder and reused."""
    with caplog.at_level(logging.WARNING, logger="unsubsvc.settings"):
        first = load_settings(instance, {})
    assert first.generated_secret is True
    assert len(first.secret_keys) == 1
    key = first.secret_keys[0]
    assert len(key) >= 32
    key_file = instance / "secret_key"
    assert key_file.read_text().strip() == key
    assert any("UNSUBSVC_SECRET_KEY" in r.getMessage() for r in caplog.records)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unsubsvc.settings"):
        second = load_settings(instance, {})
    assert second.secret_keys == (key,)
    assert second.generated_secret is True
    assert caplog.records == []  # the warning is given once, when the key is created


def test_development_keys_differ_between_instances(tmp_path: Path) -> None:
    """Each instance folder gets a key of its own."""
    one = load_settings(tmp_path / "one", {}).secret_keys
    two = load_settings(tmp_path / "two", {}).secret_keys
    assert one != two


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_development_key_file_is_private(instance: Path) -> None:
    """The generated key file is readable by its owner only."""
    load_settings(instance, {})
    mode = stat.S_IMODE(os.stat(instance / "secret_key").st_mode)
    assert mode & 0o077 == 0


def test_empty_development_key_file_is_not_used(instance: Path) -> None:
    """An empty key file must not produce an empty secret key."""
    instance.mkdir()
    (instance / "secret_key").write_text("")
    settings = load_settings(instance, {})  # a new key replaces the empty file
    assert all(settings.secret_keys)
    assert (instance / "secret_key").read_text().strip() == settings.secret_keys[0]


def test_configured_key_is_not_generated(instance: Path) -> None:
    """A configured key is used as is, and nothing is written to the instance folder."""
    settings = load_settings(instance, {"UNSUBSVC_SECRET_KEY": "configured"})
    assert settings.secret_keys == ("configured",)
    assert settings.generated_secret is False
    assert not (instance / "secret_key").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("new,old", ("new", "old")),
        ("new, old ,older", ("new", "old", "older")),
        ("  newest  ,, ,old,", ("newest", "old")),
        ("b,a,c", ("b", "a", "c")),
    ],
    ids=["two", "spaces-trimmed", "empty-entries-dropped", "order-kept-not-sorted"],
)
def test_several_keys_keep_their_order(instance: Path, value: str, expected: tuple[str]) -> None:
    """Comma-separated keys become a tuple, newest first, in the order given."""
    settings = load_settings(instance, {"UNSUBSVC_SECRET_KEY": value})
    assert settings.secret_keys == expected
    assert settings.generated_secret is False


def test_production_without_key_is_refused(instance: Path) -> None:
    """Production never runs on a generated key."""
    environ = {**PRODUCTION_OK, "UNSUBSVC_SECRET_KEY": ""}
    with pytest.raises(ConfigError, match="UNSUBSVC_SECRET_KEY"):
        load_settings(instance, environ)
    assert not (instance / "secret_key").exists()


def test_production_with_only_blank_keys_is_refused(instance: Path) -> None:
    """Commas and spaces are not a key."""
    with pytest.raises(ConfigError, match="UNSUBSVC_SECRET_KEY"):
        load_settings(instance, {**PRODUCTION_OK, "UNSUBSVC_SECRET_KEY": " , ,"})


@pytest.mark.parametrize(
    "base_url",
    ["http://unsub.example.com", None],
    ids=["http", "default-local-http"],
)
def test_production_with_http_base_url_is_refused(instance: Path, base_url: str | None) -> None:
    """Production links must be https."""
    environ = dict(PRODUCTION_OK)
    if base_url is None:
        del environ["UNSUBSVC_BASE_URL"]
    else:
        environ["UNSUBSVC_BASE_URL"] = base_url
    with pytest.raises(ConfigError, match="https"):
        load_settings(instance, environ)


def test_production_with_https_and_key(instance: Path) -> None:
    """https plus a configured key is a usable production setup."""
    settings = load_settings(instance, PRODUCTION_OK)
    assert settings.production is True
    assert settings.env == "production"
    assert settings.secret_keys == (PRODUCTION_KEY,)
    assert settings.base_url == "https://unsub.example.com"
    assert settings.generated_secret is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [("development", "development"), ("Production", "production"), (" testing ", "testing")],
    ids=["development", "capitalised", "padded"],
)
def test_env_names(instance: Path, value: str, expected: str) -> None:
    """The mode is read case-insensitively and trimmed."""
    environ = {**PRODUCTION_OK, "UNSUBSVC_ENV": value}
    assert load_settings(instance, environ).env == expected


@pytest.mark.parametrize(
    "value", ["prod", "staging", "dev", "1"], ids=["prod", "staging", "dev", "digit"]
)
def test_bad_env_is_refused(instance: Path, value: str) -> None:
    """Only development, production and testing are modes."""
    with pytest.raises(ConfigError, match="UNSUBSVC_ENV"):
        load_settings(instance, {"UNSUBSVC_ENV": value})


@pytest.mark.parametrize(
    "value",
    ["unsub.example.com", "ftp://unsub.example.com", "https://", "/relative/path", "https:/x"],
    ids=["no-scheme", "ftp", "no-host", "path-only", "one-slash"],
)
def test_bad_base_url_is_refused(instance: Path, value: str) -> None:
    """The base URL must be an absolute http(s) URL."""
    with pytest.raises(ConfigError, match="UNSUBSVC_BASE_URL"):
        load_settings(instance, {"UNSUBSVC_BASE_URL": value, "UNSUBSVC_SECRET_KEY": "k"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://unsub.example.com/", "https://unsub.example.com"),
        ("https://example.com/mail//", "https://example.com/mail"),
        ("http://localhost:5000", "http://localhost:5000"),
    ],
    ids=["trailing-slash", "path-with-slashes", "port"],
)
def test_base_url_loses_trailing_slashes(instance: Path, value: str, expected: str) -> None:
    """Trailing slashes are dropped so links join with exactly one slash."""
    environ = {"UNSUBSVC_BASE_URL": value, "UNSUBSVC_SECRET_KEY": "k"}
    assert load_settings(instance, environ).base_url == expected


def test_mailto_is_checked_and_trimmed(instance: Path) -> None:
    """A valid mailbox is kept, trimmed."""
    environ = {"UNSUBSVC_MAILTO": "  unsubscribe@example.com ", "UNSUBSVC_SECRET_KEY": "k"}
    assert load_settings(instance, environ).mailto == "unsubscribe@example.com"


@pytest.mark.parametrize(
    "value",
    ["unsubscribe", "unsubscribe@localhost", "Unsub <unsubscribe@example.com>", "a@b.com,c@d.com"],
    ids=["no-at", "dotless-domain", "display-name", "two-addresses"],
)
def test_bad_mailto_is_refused(instance: Path, value: str) -> None:
    """UNSUBSVC_MAILTO must be one plain address."""
    with pytest.raises(ConfigError, match="UNSUBSVC_MAILTO"):
        load_settings(instance, {"UNSUBSVC_MAILTO": value, "UNSUBSVC_SECRET_KEY": "k"})


def test_numbers_are_parsed(instance: Path) -> None:
    """Token lifetime and body limit are read as whole numbers."""
    environ = {
        "UNSUBSVC_SECRET_KEY": "k",
        "UNSUBSVC_TOKEN_MAX_AGE": "86400",
        "UNSUBSVC_MAX_BODY": " 1024 ",
        "UNSUBSVC_SENDER_NAME": "Example News",
    }
    settings = load_settings(instance, environ)
    assert settings.token_max_age == 86400
    assert settings.max_body == 1024
    assert settings.sender_name == "Example News"


@pytest.mark.parametrize("name", ["TOKEN_MAX_AGE", "MAX_BODY"], ids=["max-age", "max-body"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "whole number"),
        ("1.5", "whole number"),
        ("30d", "whole number"),
        ("0", "positive"),
        ("-60", "positive"),
    ],
    ids=["word", "decimal", "unit-suffix", "zero", "negative"],
)
def test_bad_numbers_are_refused(instance: Path, name: str, value: str, message: str) -> None:
    """Non-numeric or non-positive limits are configuration errors naming the variable."""
    environ = {"UNSUBSVC_SECRET_KEY": "k", f"UNSUBSVC_{name}": value}
    with pytest.raises(ConfigError, match=f"UNSUBSVC_{name}.*{message}"):
        load_settings(instance, environ)


def test_blank_values_count_as_unset(instance: Path) -> None:
    """An empty or blank variable means the default, not an error."""
    environ = {
        "UNSUBSVC_SECRET_KEY": "k",
        "UNSUBSVC_ENV": " ",
        "UNSUBSVC_BASE_URL": "",
        "UNSUBSVC_MAILTO": "  ",
        "UNSUBSVC_TOKEN_MAX_AGE": "",
        "UNSUBSVC_DATABASE_URL": "",
    }
    settings = load_settings(instance, environ)
    assert settings.env == "development"
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.mailto is None
    assert settings.token_max_age is None
    assert settings.database_url.startswith("sqlite:///")


def test_database_url_is_normalized(instance: Path) -> None:
    """A configured postgres:// URL is pointed at psycopg 3."""
    environ = {"UNSUBSVC_SECRET_KEY": "k", "UNSUBSVC_DATABASE_URL": "postgres://u:p@db/unsub"}
    assert load_settings(instance, environ).database_url == "postgresql+psycopg://u:p@db/unsub"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/unsub", "postgresql+psycopg://u:p@db:5432/unsub"),
        ("postgresql://u:p@db:5432/unsub", "postgresql+psycopg://u:p@db:5432/unsub"),
        ("postgresql:///unsub?host=/run/pg", "postgresql+psycopg:///unsub?host=/run/pg"),
        ("postgresql+psycopg://u@db/unsub", "postgresql+psycopg://u@db/unsub"),
        ("postgresql+psycopg2://u@db/unsub", "postgresql+psycopg2://u@db/unsub"),
        ("sqlite:///tmp/x.sqlite", "sqlite:///tmp/x.sqlite"),
        ("sqlite://", "sqlite://"),
        ("mysql://u@db/unsub", "mysql://u@db/unsub"),
    ],
    ids=[
        "postgres",
        "postgresql",
        "postgresql-socket",
        "already-psycopg",
        "explicit-psycopg2",
        "sqlite-file",
        "sqlite-memory",
        "mysql",
    ],
)
def test_normalize_database_url(url: str, expected: str) -> None:
    """Bare postgres URLs get the psycopg driver; anything else is left alone."""
    assert normalize_database_url(url) == expected
