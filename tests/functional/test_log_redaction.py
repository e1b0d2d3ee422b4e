"""Tokens never reach a log line: the masking rule, and real servers' logs.

A token in /u/<token> or /p/<token> is a credential (RFC 8058 §6 calls it
hard-to-forge; whoever reads it can use it). The servers run as subprocesses,
as in production: gunicorn with deploy/gunicorn.conf.py and ``unsubsvc serve``,
each on SQLite and PostgreSQL, over a database made by ``unsubsvc init``.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.functional.test_deploy import SERVERS, Server, free_port, subprocess_env
from tests.helpers import CommandRunner
from unsubsvc.logs import TOKEN_FILTER, mask_logger, mask_tokens
from unsubsvc.settings import normalize_database_url

TOKEN = "1.ab12.Xy_z-9.Q1w2E3r4"


# --- The rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("POST /u/TOKEN HTTP/1.1", "POST /u/<token> HTTP/1.1"),
        ("POST /u/TOKEN/confirm HTTP/1.1", "POST /u/<token>/confirm HTTP/1.1"),
        ("GET /p/TOKEN/topics?x=1", "GET /p/<token>/topics?x=1"),
        ('"https://unsub.example.com/u/TOKEN"', '"https://unsub.example.com/u/<token>"'),
        ("GET /admin/login?next=%2Fp%2FTOKEN", "GET /admin/login?next=%2Fp%2F<token>"),
        ("Exception on /u/TOKEN [POST]", "Exception on /u/<token> [POST]"),
        ("/u/<token> masked already", "/u/<token> masked already"),
        ("/usr/lib/python3/up/x.py /healthz", "/usr/lib/python3/up/x.py /healthz"),
    ],
    ids=["one-click", "confirm", "preferences", "referer", "query", "flask", "twice", "no-token"],
)
def test_mask_tokens(line: str, expected: str) -> None:
    assert mask_tokens(line.replace("TOKEN", TOKEN)) == expected


def record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_filter_masks_message_arguments_and_exception_text() -> None:
    try:
        raise ValueError(f"no route to /p/{TOKEN}")
    except ValueError as exc:
        error = exc
    cases = [
        record(f"Exception on /u/{TOKEN} [POST]", exc=error),
        record("unhandled error on %s %s", "POST", f"/u/{TOKEN}"),
        record('"%(r)s" %(s)s', {"r": f"GET /p/{TOKEN} HTTP/1.1", "s": "200"}),  # gunicorn access
        record("%s %s", f"/u/{TOKEN}"),  # broken: the handler prints msg and args
    ]
    for each in cases:
        assert TOKEN_FILTER.filter(each) is True  # masks, never drops
        shown = f"{each.msg} {each.args} {each.exc_text or ''}"
        assert TOKEN not in shown
        assert "/u/<token>" in shown or "/p/<token>" in shown
    assert cases[2].getMessage() == '"GET /p/<token> HTTP/1.1" 200'


@pytest.fixture
def logger_tree() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    parent = logging.getLogger("test_log_redaction.app")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    parent.propagate = False
    yield parent, stream
    parent.removeHandler(handler)


def test_mask_logger_covers_child_loggers(logger_tree: tuple[logging.Logger, io.StringIO]) -> None:
    """A child's record reaches the parent's handlers only, not its filters: both are masked."""
    parent, stream = logger_tree
    mask_logger(parent)
    parent.error("on /u/%s", TOKEN)
    logging.getLogger(parent.name + ".errors").error("on /p/%s", TOKEN)
    assert stream.getvalue() == "on /u/<token>\non /p/<token>\n"


# --- Real servers -------------------------------------------------------------------

ONE_CLICK = b"List-Unsubscribe=One-Click"


def tokens_for(email: str) -> tuple[str, str]:
    """Return a recipient's unsubscribe and preferences tokens from ``unsubsvc headers``."""
    result = CommandRunner().invoke(
        args=["headers", "--list", "news", "--email", email, "--preferences-url"]
    )
    assert result.exit_code == 0, result.output
    unsubscribe = re.search(r"/u/([^>/\s]+)>", result.output)
    preferences = re.search(r"/p/([^/\s]+)\s*$", result.output, re.M)
    assert unsubscribe is not None and preferences is not None, result.output
    return unsubscribe.group(1), preferences.group(1)


def refuse_events(database_url: str) -> None:
    """Make every insert into ``event`` fail with an error the app does not expect (a 500)."""
    engine = sa.create_engine(normalize_database_url(database_url))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON event "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON event "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    engine.dispose()


def send(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_server_logs_carry_no_token(
    kind: str, env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    """Requests with good, tampered and failing tokens: every log line shows them masked."""
    runner = CommandRunner()
    for args in (["init"], ["list", "create", "news"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    unsubscribe, preferences = tokens_for("ann@example.com")
    failing, _ = tokens_for("bob@example.com")
    tampered = unsubscribe[:-1] + ("A" if unsubscribe[-1] != "A" else "B")
    secrets = [unsubscribe, preferences, failing, tampered]
    # The signature alone is as good as a token to a forger's brute force: none of it shows.
    secrets += [token.rsplit(".", 1)[-1] for token in secrets]

    server = Server(kind, free_port(), env, tmp_path / kind)
    try:
        server.wait_healthy()
        base = server.base
        assert send(f"{base}/u/{unsubscribe}") == 200
        assert send(f"{base}/u/{unsubscribe}", ONE_CLICK) == 200
        assert send(f"{base}/p/{preferences}") == 200
        assert send(f"{base}/p/{preferences}/resubscribe", b"") == 400  # no scope given
        assert send(f"{base}/u/{tampered}", ONE_CLICK) == 400
        assert send(f"{base}/healthz", headers={"Referer": f"{base}/u/{unsubscribe}"}) == 200
        refuse_events(database_url)
        assert send(f"{base}/u/{failing}", ONE_CLICK) == 500
    finally:
        server.stop()

    logs = server.logs()
    for secret in secrets:
        assert secret not in logs, f"{secret!r} in:\n{logs}"
    # The lines are there, masked: access log (request line, Referer) and Flask's exception log.
    assert re.search(r'"POST /u/<token> HTTP/1\.1" 200', logs), logs
    assert re.search(r'"GET /p/<token> HTTP/1\.1" 200', logs), logs
    assert re.search(r'"POST /u/<token> HTTP/1\.1" 500', logs), logs
    assert f"{server.base}/u/<token>" in logs
    assert "Exception on /u/<token> [POST]" in logs
    assert "refused by the test" in logs  # the traceback was logged, not dropped


@pytest.mark.slow
def test_demo_logs_carry_no_token(tmp_path: Path) -> None:
    """``unsubsvc demo`` prints its links on purpose; the log lines after them are masked."""
    port = free_port()
    out = tmp_path / "demo.out"
    env = subprocess_env({"UNSUBSVC_INSTANCE_PATH": str(tmp_path / "instance")})
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "unsubsvc.cli", "demo", "--port", str(port),
             "--campaigns", "0", "--recipients", "1"],
            env=env, stdout=stdout, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Listening at: " not in out.read_text():
            assert process.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        banner = out.read_text()
        found = re.search(r"curl -i -X POST -d '[^']+' '([^']+)'", banner)
        assert found is not None, banner
        url = found.group(1)
        assert send(url, ONE_CLICK) == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    token = url.rsplit("/u/", 1)[1]
    served = out.read_text().split("In real mail,", 1)[1]  # what follows the banner
    assert token not in served, served
    assert '"POST /u/<token> HTTP/1.1" 200' in served
