"""The ``unsubsvc`` group itself: version, help whatever the configuration, one-line errors."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_URL
from tests.helpers import CommandRunner


@pytest.fixture
def bare() -> CommandRunner:
    """A runner that builds the runtime from the environment, as the console script does."""
    return CommandRunner()


def test_version_prints_the_project_version(bare: CommandRunner) -> None:
    result = bare.invoke(args=["--version"])
    assert result.exit_code == 0
    assert result.output == f"unsubsvc {version('unsubsvc')}\n"


@pytest.mark.parametrize(
    "database_url",
    ["mysql://nobody@nowhere/db", "not a url", "postgresql://u@127.0.0.1:1/x?sslmode=bogus"],
    ids=["unsupported", "junk", "bad-option"],
)
def test_help_lists_the_commands_whatever_the_configuration(
    bare: CommandRunner, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("UNSUBSVC_DATABASE_URL", database_url)
    monkeypatch.setenv("UNSUBSVC_ENV", "nonsense")
    result = bare.invoke(args=["--help"])
    assert result.exit_code == 0, result.output
    for command in ("init", "serve", "demo", "headers", "status", "report", "sign"):
        assert f"  {command} " in result.output


def test_no_flask_commands_in_the_group(bare: CommandRunner) -> None:
    output = bare.invoke(args=["--help"]).output
    for flask_command in ("  run ", "  shell ", "  routes "):
        assert flask_command not in output


def one_line_error(result_output: str) -> str:
    lines = result_output.strip().splitlines()
    assert len(lines) == 1, result_output
    assert "Traceback" not in result_output
    return lines[0]


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("mysql://nobody@nowhere/db", "must be a sqlite:/// or postgresql:// URL, not 'mysql'"),
        ("not a url", "must be a sqlite:/// or postgresql:// URL"),
    ],
    ids=["unsupported", "junk"],
)
def test_bad_database_url_is_one_line(
    bare: CommandRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    expected: str,
) -> None:
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("UNSUBSVC_DATABASE_URL", database_url)
    result = bare.invoke(args=["init"])
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert line.startswith("Error: configuration: UNSUBSVC_DATABASE_URL")
    assert expected in line


def test_bad_setting_is_one_line(
    bare: CommandRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("UNSUBSVC_ENV", "nonsense")
    result = bare.invoke(args=["status", "--list", "news", "--email", "a@example.com"])
    assert result.exit_code == 1
    assert one_line_error(result.output) == (
        "Error: configuration: UNSUBSVC_ENV must be development, production or testing, "
        "not 'nonsense'"
    )


def test_unwritable_sqlite_path_is_one_line(
    bare: CommandRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("UNSUBSVC_DATABASE_URL", f"sqlite:///{tmp_path}/no/such/dir/x.sqlite")
    result = bare.invoke(args=["init"])
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert "cannot open the SQLite database" in line
    assert "must exist and be writable" in line


@pytest.mark.skipif(not POSTGRES_URL, reason="UNSUBSVC_TEST_DATABASE_URL is not set")
def test_missing_postgresql_database_is_one_line(
    bare: CommandRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = sa.make_url(str(POSTGRES_URL))
    missing = server.set(database="unsubsvc_no_such_database").render_as_string(hide_password=False)
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("UNSUBSVC_DATABASE_URL", missing)
    result = bare.invoke(args=["init"])
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert "the database does not exist" in line
    assert "createdb" in line


def test_unwritable_instance_folder_is_one_line(
    bare: CommandRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(blocker / "instance"))
    result = bare.invoke(args=["status", "--list", "news", "--email", "a@example.com"])
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert "cannot keep a development key in" in line
    assert "UNSUBSVC_INSTANCE_PATH" in line


def all_commands() -> list[list[str]]:
    """Return the path of every command and group under ``unsubsvc``."""
    import click

    from unsubsvc.cli import cli

    found: list[list[str]] = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name, command in group.commands.items():
            found.append([*path, name])
            if isinstance(command, click.Group):
                walk(command, [*path, name])

    walk(cli, [])
    return found


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: "-".join(p))
def test_help_of_every_command_is_plain_text(bare: CommandRunner, path: list[str]) -> None:
    """--help works for each command and shows no reStructuredText markup (``literal``)."""
    result = bare.invoke(args=[*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output


def test_flask_app_reaches_the_same_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``flask --app unsubsvc`` builds the app with the unsubsvc commands on its CLI."""
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    import unsubsvc
    from unsubsvc.cli import cli

    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(tmp_path))
    flask = FlaskGroup(create_app=unsubsvc.create_app, load_dotenv=False)
    result = CliRunner().invoke(flask, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "unsubsvc.sqlite").exists()
    listed = CliRunner().invoke(flask, ["--help"]).output
    assert all(f"  {name} " in listed for name in cli.commands)
