"""The outbox of unsubsvc's own mail, delivered over real SMTP (aiosmtpd): retries, TLS, AUTH."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from tests.conftest import FakeClock
from tests.helpers import runner_for, transaction
from tests.smtp_sink import SmtpSink, make_certificate
from unsubsvc.core.outgoing_mail import MailContent
from unsubsvc.db.models import OutgoingMail
from unsubsvc.services import outbox
from unsubsvc.services.subscribers import ensure_subscriber
from unsubsvc.web import context
from unsubsvc.web.context import runtime_of
from unsubsvc.web.extensions import csrf

ANN = "ann@example.com"
LINK = "https://unsub.example.com/manage/s/secret-link-token"


def content(to: str = ANN, **overrides: object) -> MailContent:
    fields: dict[str, object] = {
        "kind": "manage-link",
        "to": to,
        "subject": "Your sign-in link",
        "text": f"Open {LINK} to manage your mail.\n",
    }
    fields.update(overrides)
    return MailContent(**fields)  # type: ignore[arg-type]


def queue(app: Flask, to: str = ANN, *, unsubscribed_all: bool = False, **overrides: object) -> int:
    """Queue one message to ``to`` (a subscriber) as a use case does; return its row id."""
    built = runtime_of(app)
    with transaction(app) as session:
        subscriber = ensure_subscriber(session, to, now=built.now(), keyring=built.keyring)
        if unsubscribed_all:
            subscriber.unsubscribed_all_at = built.now()
        row = outbox.enqueue(
            session,
            content(to, **overrides),
            settings=built.settings,
            now=built.now(),
            subscriber_id=subscriber.id,
        )
        return row.id


def deliver(app: Flask, **kwargs: object) -> outbox.DeliveryReport:
    built = runtime_of(app)
    return outbox.deliver_due(
        built.session_factory,
        built.settings,
        now=built.now(),
        **kwargs,  # type: ignore[arg-type]
    )


def row(app: Flask, row_id: int) -> OutgoingMail:
    with transaction(app) as session:
        found = session.get(OutgoingMail, row_id)
        assert found is not None
        return found


def test_a_queued_message_reaches_the_smtp_server_and_loses_its_body(
    mail_app: Flask, smtp_server: SmtpSink
) -> None:
    row_id = queue(mail_app)
    stored = row(mail_app, row_id).message
    assert deliver(mail_app) == outbox.DeliveryReport(sent=1)
    [received] = smtp_server.received
    assert received.mail_from == runtime_of(mail_app).settings.mail_from
    assert received.rcpt_tos == (ANN,)
    assert received.raw.replace(b"\r\n", b"\n") == stored.replace(b"\r\n", b"\n")
    assert received.message["To"] == ANN
    assert LINK in received.message.get_content()
    sent = row(mail_app, row_id)
    assert sent.sent_at is not None and sent.attempts == 1
    assert sent.message == b""  # it held a credential link
    assert deliver(mail_app) == outbox.DeliveryReport()  # sent once


def test_mail_goes_even_to_an_address_unsubscribed_from_everything(
    mail_app: Flask, smtp_server: SmtpSink
) -> None:
    """A sign-in link the person asked for is transactional: no marketing opt-out stops it."""
    queue(mail_app, unsubscribed_all=True)
    deliver(mail_app)
    [message] = smtp_server.wait_for(1)
    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


def add_mail_route(app: Flask) -> None:
    """Add a view that queues mail as /manage does (a test-only route)."""

    @app.post("/test-queue-mail")
    def queue_mail() -> str:
        outbox.enqueue(context.session(), content(), settings=context.settings(), now=context.now())
        return "queued"

    csrf.exempt(queue_mail)


def test_mail_queued_in_a_request_is_sent_after_the_commit(
    mail_app: Flask, smtp_server: SmtpSink
) -> None:
    add_mail_route(mail_app)
    response = mail_app.test_client().post("/test-queue-mail")
    assert response.status_code == 200
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Your sign-in link"
    context.wait_for_mail()
    with transaction(mail_app) as session:
        [sent] = session.scalars(select(OutgoingMail)).all()
    assert sent.sent_at is not None and sent.message == b""


def test_a_failed_send_after_a_request_leaves_the_row_for_the_deliverer(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNSUBSVC_SMTP_URL", f"smtp://127.0.0.1:{closed_port()}")
    app = make_app()
    add_mail_route(app)
    assert app.test_client().post("/test-queue-mail").status_code == 200
    context.wait_for_mail()
    with transaction(app) as session:
        [queued] = session.scalars(select(OutgoingMail)).all()
    assert queued.sent_at is None and queued.failed_at is None
    assert queued.attempts == 1 and "Connection" in (queued.last_error or "")


def test_without_an_smtp_url_mail_stays_queued_with_one_warning(
    app: Flask, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "_warned", False)
    add_mail_route(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger=outbox.__name__):
        assert client.post("/test-queue-mail").status_code == 200
        assert client.post("/test-queue-mail").status_code == 200
        assert deliver(app).not_configured
    warnings = [r for r in caplog.records if "UNSUBSVC_SMTP_URL is not set" in r.getMessage()]
    assert len(warnings) == 1
    result = runner_for(app).invoke(args=["outbox", "list"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["queued", "queued"]
    assert "UNSUBSVC_SMTP_URL is not set" in result.stderr


def test_a_temporary_refusal_is_retried_later(
    mail_app: Flask, smtp_server: SmtpSink, clock: FakeClock
) -> None:
    smtp_server.replies.append("451 4.3.0 Try again later")
    row_id = queue(mail_app)
    assert deliver(mail_app) == outbox.DeliveryReport(retrying=1)
    waiting = row(mail_app, row_id)
    assert waiting.attempts == 1 and "451" in (waiting.last_error or "")
    assert waiting.next_attempt_at == clock.now + timedelta(minutes=1)
    assert deliver(mail_app) == outbox.DeliveryReport()  # not due yet
    clock.advance(minutes=1)
    assert deliver(mail_app) == outbox.DeliveryReport(sent=1)
    assert len(smtp_server.received) == 1 and smtp_server.attempts == 2
    assert row(mail_app, row_id).attempts == 2


def test_a_permanent_refusal_fails_at_once(mail_app: Flask, smtp_server: SmtpSink) -> None:
    smtp_server.replies.append("550 5.1.1 No such user")
    row_id = queue(mail_app)
    assert deliver(mail_app) == outbox.DeliveryReport(failed=1)
    failed = row(mail_app, row_id)
    assert failed.failed_at is not None and failed.sent_at is None
    assert "550" in (failed.last_error or "") and failed.message == b""


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_server_is_retried_and_given_up_after_a_day(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app(smtp_url=f"smtp://127.0.0.1:{closed_port()}")
    row_id = queue(app)
    assert deliver(app) == outbox.DeliveryReport(retrying=1)
    delays = []
    while row(app, row_id).failed_at is None:
        due = row(app, row_id).next_attempt_at
        delays.append(due - clock.now)
        clock.now = due
        deliver(app)
        if len(delays) == 4:  # skip most of the day
            with transaction(app) as session:
                session.execute(
                    update(OutgoingMail)
                    .where(OutgoingMail.id == row_id)
                    .values(created_at=clock.now - timedelta(hours=23, minutes=30))
                )
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    gave_up = row(app, row_id)
    assert timedelta(hours=23) < gave_up.failed_at - gave_up.created_at <= timedelta(hours=24)  # type: ignore[operator]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [outbox.backoff(n) for n in (1, 2, 3, 7, 8, 50)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(hours=1),  # not 64 minutes
        timedelta(hours=1),
        timedelta(hours=1),
    ]


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    return make_certificate(tmp_path)


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_tls_with_auth(
    make_app: Callable[..., Flask],
    certificate: Path,
    tls: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "p@ss:w/rd%"  # noqa: S105 (a test credential)
    sink = SmtpSink(tls=tls, certificate=certificate, user="mailer", password=password).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # trust the test's own CA
        app = make_app(smtp_url=sink.url)
        queue(app)
        assert deliver(app) == outbox.DeliveryReport(sent=1)
        assert sink.logins == ["mailer"]
        assert len(sink.wait_for(1)) == 1
    finally:
        sink.stop()


def test_an_untrusted_certificate_is_refused(
    make_app: Callable[..., Flask], certificate: Path
) -> None:
    sink = SmtpSink(tls="smtps", certificate=certificate).start()
    try:
        app = make_app(smtp_url=sink.url)
        row_id = queue(app)
        assert deliver(app) == outbox.DeliveryReport(retrying=1)
        assert "CERTIFICATE_VERIFY_FAILED" in (row(app, row_id).last_error or "")
        assert sink.received == []
    finally:
        sink.stop()


def test_starttls_is_required_when_asked_for(
    make_app: Callable[..., Flask], smtp_server: SmtpSink
) -> None:
    app = make_app(smtp_url=f"smtp+starttls://{smtp_server.host}:{smtp_server.port}")
    row_id = queue(app)
    assert deliver(app) == outbox.DeliveryReport(retrying=1)
    assert "does not offer STARTTLS" in (row(app, row_id).last_error or "")
    assert smtp_server.received == []


def test_wrong_credentials_are_retried_and_never_logged(make_app: Callable[..., Flask]) -> None:
    sink = SmtpSink(user="mailer", password="right-password").start()  # noqa: S106
    try:
        app = make_app(smtp_url=f"smtp://mailer:wrong-secret@127.0.0.1:{sink.port}")
        row_id = queue(app)
        assert deliver(app) == outbox.DeliveryReport(retrying=1)
        error = row(app, row_id).last_error or ""
        assert "535" in error and "wrong-secret" not in error
        assert sink.received == []
    finally:
        sink.stop()


def test_two_deliverers_send_each_message_once(mail_app: Flask, smtp_server: SmtpSink) -> None:
    ids = [queue(mail_app, f"r{n}@example.com") for n in range(12)]
    reports: list[outbox.DeliveryReport] = []
    start = threading.Barrier(2)

    def run(owner: str) -> None:
        start.wait()
        while True:
            report = deliver(mail_app, owner=owner, limit=3)
            reports.append(report)
            if report == outbox.DeliveryReport():
                return

    threads = [threading.Thread(target=run, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r.sent for r in reports) == len(ids)
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(
        f"r{n}@example.com" for n in range(12)
    )


def test_purge_deletes_old_sent_and_failed_rows(app: Flask, clock: FakeClock) -> None:
    old, failed, recent, waiting = (queue(app, f"{n}@example.com") for n in "abcd")
    long_ago = clock.now - timedelta(days=8)
    with transaction(app) as session:
        session.execute(update(OutgoingMail).where(OutgoingMail.id == old).values(sent_at=long_ago))
        session.execute(
            update(OutgoingMail).where(OutgoingMail.id == failed).values(failed_at=long_ago)
        )
        session.execute(
            update(OutgoingMail)
            .where(OutgoingMail.id == recent)
            .values(sent_at=clock.now - timedelta(days=1))
        )
    result = runner_for(app).invoke(args=["outbox", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 2 (older than 7 days)" in result.stderr
    with transaction(app) as session:
        left = set(session.scalars(select(OutgoingMail.id)))
    assert left == {recent, waiting}


def test_export_lists_mail_without_bodies_and_erase_removes_it(app: Flask) -> None:
    queue(app)
    queue(app, kind="resubscribe-confirm")
    queue(app, "bob@example.com")
    runner = runner_for(app)
    exported = runner.invoke(args=["export", ANN])
    assert exported.exit_code == 0, exported.output
    mail = json.loads(exported.stdout)["outgoing_mail"]
    assert [m["kind"] for m in mail] == ["manage-link", "resubscribe-confirm"]
    assert LINK not in exported.stdout and "message" not in mail[0]
    erased = runner.invoke(args=["erase", "--yes", ANN])
    assert erased.exit_code == 0, erased.output
    with transaction(app) as session:
        assert list(session.scalars(select(OutgoingMail.recipient))) == ["bob@example.com"]


def test_outbox_deliver_once_from_the_cli(mail_app: Flask, smtp_server: SmtpSink) -> None:
    queue(mail_app)
    queue(mail_app, "bob@example.com")
    result = runner_for(mail_app).invoke(args=["outbox", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    assert "Mail: 2 sent, 0 to retry, 0 failed." in result.stderr
    assert len(smtp_server.wait_for(2)) == 2
    listed = runner_for(mail_app).invoke(args=["outbox", "list"])
    assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["sent", "sent"]


def test_serve_deliver_mail_runs_a_deliverer_while_serving(
    mail_app: Flask, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child deliverer sends the queued mail; it is stopped when the server stops."""
    import unsubsvc.serving

    queue(mail_app)
    children: list[object] = []

    def fake_serve(app: Flask, host: str, port: int, **options: object) -> None:
        smtp_server.wait_for(1, timeout=30)  # while "serving", the child delivers

    from unsubsvc.cli import outbox as outbox_cli

    spawn = outbox_cli.spawn_deliverer

    def spawned(interval: float) -> object:
        child = spawn(0.2)
        children.append(child)
        return child

    monkeypatch.setattr(unsubsvc.serving, "serve", fake_serve)
    monkeypatch.setattr(outbox_cli, "spawn_deliverer", spawned)
    result = runner_for(mail_app).invoke(args=["serve", "--deliver-mail"])
    assert result.exit_code == 0, result.output
    [child] = children
    assert child.poll() is not None  # type: ignore[attr-defined]
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("which", ["outbox", "webhooks"])
def test_a_spawned_deliverer_dies_with_a_killed_server(
    env: dict[str, str], which: str, tmp_path: Path
) -> None:
    """SIGKILL runs no cleanup: the kernel stops the child (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        f"from unsubsvc.cli.{which} import spawn_deliverer\n"
        "import sys, time\n"
        "child = spawn_deliverer(0.2)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.stdout.close()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the deliverer outlived its server")
