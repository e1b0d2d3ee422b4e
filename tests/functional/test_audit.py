"""The audit log: API, console and command-line actions recorded, shown, exported, never altered."""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, Response
from flask.testing import FlaskClient

from tests.conftest import ApiClient, FakeClock
from tests.helpers import CommandRunner, csrf_token, make_list, transaction
from unsubsvc.core.addresses import address_key
from unsubsvc.db.models import AuditEvent
from unsubsvc.services import admin_users, audit
from unsubsvc.web import admin_audit
from unsubsvc.web.context import runtime_of

ADDRESS = "Ann@Example.com"
ADMIN = "root@example.com"
PASSWORD = "correct horse battery"
RECIPIENT_RULE = "/api/v1/lists/<name>/recipients/<email>"


def audit_rows(app: Flask) -> list[AuditEvent]:
    """Return every audit event, oldest first."""
    with transaction(app) as session:
        return list(session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)))


def as_text(entry: AuditEvent) -> str:
    fields = (entry.actor, entry.action, entry.target, entry.client, json.dumps(entry.detail))
    return " ".join(str(value) for value in fields)


def hashed(app: Flask, email: str) -> str:
    return "#" + runtime_of(app).keyring.address_hash(address_key(email))


def assert_no_address(app: Flask, *emails: str) -> None:
    for entry in audit_rows(app):
        for email in emails:
            assert address_key(email) not in as_text(entry).casefold(), as_text(entry)


# -- the API ----------------------------------------------------------------------------


def test_an_api_change_is_recorded_with_key_action_and_client(app: Flask, api: ApiClient) -> None:
    make_list(app)
    response = api.post(f"/lists/news/recipients/{ADDRESS}/unsubscribe", {"campaign": "c1"})
    assert response.status_code == 200
    [entry] = audit_rows(app)
    assert entry.actor_kind == "api" and entry.actor == "sender"
    assert entry.action == f"api.post {RECIPIENT_RULE}/unsubscribe"
    assert entry.client == "127.0.0.1"
    assert entry.target == f"name=news email={hashed(app, ADDRESS)}"
    assert entry.detail == {"status": 200}
    assert_no_address(app, ADDRESS)


def test_reading_a_recipient_is_recorded_without_the_address(app: Flask, api: ApiClient) -> None:
    make_list(app)
    assert api.get(f"/lists/news/recipients/{ADDRESS}").status_code == 200
    [entry] = audit_rows(app)
    assert entry.action == f"api.get {RECIPIENT_RULE}"
    assert entry.target == f"name=news email={hashed(app, ADDRESS)}"
    assert_no_address(app, ADDRESS)


def test_calls_that_neither_change_nor_read_personal_data_are_not_recorded(
    app: Flask, api: ApiClient
) -> None:
    make_list(app)
    body = {"campaign": "c1", "recipients": [{"email": f"p{i}@example.com"} for i in range(3)]}
    assert api.get("/lists").status_code == 200
    assert api.post("/lists/news/headers", body).status_code == 200  # makes the recipients
    assert api.post("/lists/news/headers", body).status_code == 200  # changes nothing
    assert api.post("/lists", {"name": "news"}).status_code == 409  # refused
    assert [e.action for e in audit_rows(app)] == ["api.post /api/v1/lists/<name>/headers"]
    assert_no_address(app, "p0@example.com", "p1@example.com")


def test_refused_keys_are_recorded_once_a_minute_per_client(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    def refused(address: str, key: str | None = "usk_not-a-key") -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        environ = {"REMOTE_ADDR": address}
        response = client.get("/api/v1/lists", headers=headers, environ_base=environ)
        assert response.status_code == 401

    for _ in range(5):
        refused("198.51.100.7")
    refused("198.51.100.7", key=None)
    refused("203.0.113.9")
    clock.advance(seconds=59)
    refused("198.51.100.7")
    clock.advance(seconds=2)
    refused("198.51.100.7", key=None)
    entries = audit_rows(app)
    assert [(e.actor_kind, e.actor, e.action, e.client, e.detail) for e in entries] == [
        ("anonymous", None, "api.auth_failed", "198.51.100.7", {"credentials": "invalid"}),
        ("anonymous", None, "api.auth_failed", "203.0.113.9", {"credentials": "invalid"}),
        ("anonymous", None, "api.auth_failed", "198.51.100.7", {"credentials": "missing"}),
    ]
    assert all("usk_" not in as_text(e) for e in entries)


def test_the_record_commits_with_the_change(app: Flask, api: ApiClient) -> None:
    """The audit INSERT runs in the change's transaction, before its one COMMIT."""
    make_list(app)
    seen: list[tuple[int, str]] = []

    def statement(conn: sa.Connection, _cursor: Any, text: str, *_args: Any) -> None:
        words = text.split()
        if words[:2] in (["INSERT", "INTO"], ["UPDATE", "subscription"]):
            seen.append((id(conn), " ".join(words[:3])))

    def commit(conn: sa.Connection) -> None:
        seen.append((id(conn), "COMMIT"))

    engine = runtime_of(app).engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        assert api.post(f"/lists/news/recipients/{ADDRESS}/unsubscribe", {}).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)
    [(connection, last)] = {(c, s) for c, s in seen if s == "COMMIT"}
    steps = [s for c, s in seen if c == connection]
    assert steps[-2:] == ["INSERT INTO audit_event", "COMMIT"]
    assert any(s.startswith("UPDATE subscription") for s in steps[:-2]) or any(
        s == "INSERT INTO event" for s in steps[:-2]
    )


def test_the_record_is_rolled_back_with_a_failed_change(app: Flask, api: ApiClient) -> None:
    make_list(app)

    @app.after_request
    def fail(response: Response) -> Response:  # runs after the API's hooks, before the commit
        return Response("broken", status=500) if response.status_code == 200 else response

    assert api.post(f"/lists/news/recipients/{ADDRESS}/unsubscribe", {}).status_code == 500
    assert audit_rows(app) == []
    assert api.get(f"/lists/news/recipients/{ADDRESS}").status_code == 500


# -- the console -----------------------------------------------------------------------


def signed_in(app: Flask, clock: FakeClock) -> FlaskClient:
    with transaction(app) as session:
        admin_users.create_admin(session, ADMIN, PASSWORD, now=clock.now)
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    data = {"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_token(page)}
    assert client.post("/admin/login", data=data).status_code == 303
    return client


def test_a_console_change_is_recorded(app: Flask, runner: CommandRunner, clock: FakeClock) -> None:
    make_list(app)
    done = runner.invoke(args=["delivered", "--list", "news", "--campaign", "c1", "--count", "10"])
    assert done.exit_code == 0, done.output
    client = signed_in(app, clock)
    url = "/admin/lists/news/campaigns/c1"
    token = csrf_token(client.get(url).get_data(as_text=True))
    before = len(audit_rows(app))
    no_csrf = client.post(url + "/excuse", data={"action": "set", "reason": "pivot"})
    assert no_csrf.status_code == 400
    assert len(audit_rows(app)) == before
    data = {"action": "set", "reason": "pivot", "csrf_token": token}
    assert client.post(url + "/excuse", data=data).status_code == 303
    entry = audit_rows(app)[-1]
    assert (entry.actor_kind, entry.actor, entry.action) == ("admin", ADMIN, "admin.excuse")
    assert (entry.target, entry.client) == ("name=news campaign=c1", "127.0.0.1")


def test_the_console_lists_filters_and_downloads_events(
    app: Flask, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.now
    with transaction(app) as session:
        for day, kind, action in [
            (0, "api", "api.post /api/v1/lists"),
            (1, "cli", "cli.list create"),
            (2, "api", "api.get /api/v1/suppressions"),
            (3, "anonymous", "api.auth_failed"),
        ]:
            audit.record(
                session,
                now=start + timedelta(days=day),
                actor_kind=kind,
                actor=None if kind == "anonymous" else f"{kind}-actor",
                action=action,
                target="name=news",
                client="192.0.2.1",
                detail={"day": day},
            )
    client = signed_in(app, clock)

    def actions(path: str) -> list[str]:
        response = client.get(path)
        assert response.status_code == 200
        return re.findall(
            r"<td class=\"audit-action\"><code>([^<]+)</code></td>", response.get_data(as_text=True)
        )

    page = client.get("/admin/audit").get_data(as_text=True)
    assert 'href="/admin/audit"' in page and "Audit log" in page
    own = [a for a in actions("/admin/audit") if not a.startswith("admin.")]  # signing in
    assert own == [
        "api.auth_failed",
        "api.get /api/v1/suppressions",
        "cli.list create",
        "api.post /api/v1/lists",
    ]
    assert actions("/admin/audit?kind=api") == [
        "api.get /api/v1/suppressions",
        "api.post /api/v1/lists",
    ]
    assert actions("/admin/audit?action=cli.") == ["cli.list create"]
    assert actions("/admin/audit?from=2026-03-03&to=2026-03-04") == [
        "api.get /api/v1/suppressions",
        "cli.list create",
    ]
    assert "not a date" in client.get("/admin/audit?from=soon").get_data(as_text=True)

    monkeypatch.setattr(admin_audit, "PER_PAGE", 3)
    second = client.get("/admin/audit?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and "api.post /api/v1/lists" in second

    as_csv = client.get("/admin/audit.csv?kind=api")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["api.get /api/v1/suppressions", "api.post /api/v1/lists"]
    assert json.loads(rows[0]["detail"]) == {"day": 2}
    as_json = client.get("/admin/audit.json?kind=api").get_json()
    assert [e["action"] for e in as_json["events"]] == [r["action"] for r in rows]
    assert as_json["events"][1]["occurred_at"] == start.isoformat()


def test_the_console_links_to_the_audit_log(app: Flask, clock: FakeClock) -> None:
    page = signed_in(app, clock).get("/admin").get_data(as_text=True)
    assert '<a href="/admin/audit"' in page
    assert ('href="/admin/recipients"' in page) == ("admin.recipients" in app.view_functions)


# -- the command line ------------------------------------------------------------------


def test_a_command_that_changes_something_is_recorded(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    made = runner.invoke(args=["headers", "--list", "news", "--email", ADDRESS, "--campaign", "c1"])
    assert made.exit_code == 0, made.output
    [entry] = audit_rows(app)
    assert (entry.actor_kind, entry.actor) == ("cli", getpass.getuser())
    assert entry.client == f"cli@{socket.gethostname()}"[:64]
    assert (entry.action, entry.target) == ("cli.headers", "list_name=news campaign=c1")
    assert entry.detail is not None
    assert "email" in entry.detail["parameters"] and "email" not in entry.detail["values"]
    assert entry.detail["values"]["list_name"] == "news"
    assert_no_address(app, ADDRESS)

    created = runner.invoke(args=["list", "create", "offers"])
    assert created.exit_code == 0, created.output
    assert (audit_rows(app)[-1].action, audit_rows(app)[-1].target) == (
        "cli.list create",
        "name=offers",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--list", "news", "--email", ADDRESS],
        ["report", "--format", "json"],
        ["audit", "list"],
        ["list", "show", "news"],
    ],
    ids=["status", "report", "audit list", "list show"],
)
def test_a_command_that_only_reads_is_not_recorded(
    app: Flask, runner: CommandRunner, args: list[str]
) -> None:
    make_list(app)
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert audit_rows(app) == []


def test_audit_list_prints_newest_first_in_each_format(
    app: Flask, runner: CommandRunner, clock: FakeClock
) -> None:
    with transaction(app) as session:
        for minutes in range(3):
            audit.record(
                session,
                now=clock.now + timedelta(minutes=minutes),
                actor_kind="cli",
                actor="ops",
                action=f"cli.step {minutes}",
                client="cli@host",
            )
    as_json = runner.invoke(args=["audit", "list", "--format", "json", "--limit", "2"])
    assert as_json.exit_code == 0, as_json.output
    assert [e["action"] for e in json.loads(as_json.output)["events"]] == [
        "cli.step 2",
        "cli.step 1",
    ]
    since = (clock.now + timedelta(minutes=1)).isoformat()
    as_csv = runner.invoke(args=["audit", "list", "--format", "csv", "--since", since])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["action"] for r in rows] == ["cli.step 2", "cli.step 1"]
    table = runner.invoke(args=["audit", "list"])
    assert table.output.splitlines()[0].split() == [
        "occurred_at",
        "actor_kind",
        "actor",
        "action",
        "target",
        "client",
    ]
    assert len(table.output.splitlines()) == 4
    assert len(audit_rows(app)) == 3  # reading the log is not recorded


# -- append-only -----------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "unsubsvc"
#: Ways code could change or remove an audit row.
ALTERING = re.compile(
    r"(update|delete)\(\s*(models\.)?AuditEvent\b"
    r"|\b(UPDATE|DELETE\s+FROM)\s+\"?audit_event\b"
    r"|\.delete\(\s*(entry|event|audit_event|row)\b[^)]*\)\s*#\s*audit",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("source", "alters"),
    [
        ("session.execute(delete(AuditEvent).where(AuditEvent.id < 5))", True),
        ("session.execute(sa.update(models.AuditEvent).values(actor=None))", True),
        ('conn.exec_driver_sql("DELETE FROM audit_event")', True),
        ('text("UPDATE audit_event SET actor = NULL")', True),
        ("session.add(AuditEvent(action='x'))", False),
        ("select(AuditEvent).where(AuditEvent.id == 1)", False),
    ],
    ids=["orm delete", "orm update", "sql delete", "sql update", "insert", "select"],
)
def test_the_pattern_finds_what_alters_audit_rows(source: str, alters: bool) -> None:
    assert bool(ALTERING.search(source)) is alters


def test_no_code_updates_or_deletes_audit_rows() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    offending = [
        f"{path.relative_to(PACKAGE)}: {match.group(0)}"
        for path in sources
        for match in ALTERING.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offending == []
