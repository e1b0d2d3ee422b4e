"""Outgoing webhooks against a real HTTP receiver on 127.0.0.1: signed, retried, in order.

The receivers listen on loopback, so these apps allow private addresses
(UNSUBSVC_WEBHOOK_ALLOW_PRIVATE); test_webhook_safety checks what is refused without.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
import standardwebhooks
from flask import Flask

from tests.conftest import FakeClock
from tests.helpers import CommandRunner, links_for, make_list, path_of, transaction
from unsubsvc.cli import webhooks as cli_webhooks
from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.events import Channel
from unsubsvc.core.network import UrlPolicy
from unsubsvc.core.tokens import Purpose
from unsubsvc.core.webhooks import message_id, verify
from unsubsvc.db.models import Event, WebhookAttempt, WebhookDelivery
from unsubsvc.services import unsubscribe as unsubscribe_service
from unsubsvc.services.webhooks import (
    DeliveryStats,
    add_endpoint,
    deliver_due,
    disable_endpoint,
    list_endpoints,
    url_policy,
)
from unsubsvc.services.webhooks import http_post as strict_post
from unsubsvc.web.context import runtime_of

ONE_CLICK = "List-Unsubscribe=One-Click"
#: The receivers are on 127.0.0.1: tests, as labs, allow private addresses.
LAB = UrlPolicy(https_only=False, allow_private=True)
ANN = "ann@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose webhooks may reach the receivers on 127.0.0.1."""
    return make_app(webhook_allow_private=True)


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """``services.webhooks.http_post`` allowed to reach loopback, as the apps here are."""
    return strict_post(url, body, headers, policy=LAB)


# --- a real receiver --------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request the receiver accepted."""

    body: bytes
    headers: Message  # looked up case-insensitively, as HTTP header names are

    @property
    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def header_dict(self) -> dict[str, str]:
        """The headers as a plain dict, as a receiver's framework hands them over."""
        return dict(self.headers.items())

    def verifies(self, secret: str) -> bool:
        """Whether the reference library (``standardwebhooks``) accepts it under ``secret``.

        The library reads the real clock: the deliveries checked must be signed near it.
        """
        try:
            standardwebhooks.Webhook(secret).verify(self.body, self.header_dict)
        except standardwebhooks.WebhookVerificationError:
            return False
        return True


def real_time(clock: FakeClock) -> datetime:
    """Set ``clock`` to the real time (whole seconds) and return it, for the library's checks."""
    clock.now = datetime.now(UTC).replace(microsecond=0)
    return clock.now


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that is up (200), failing (503) or down (refusing)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        #: Every POST that reached the server, whatever it was answered.
        self.requests = 0
        #: Answer every request with this status instead of 200 (and record nothing).
        self.status: int | None = None
        #: Answer 503 to the payloads this returns True for.
        self.refuse: Callable[[dict[str, Any]], bool] | None = None
        self.port = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/unsubsvc?source=test"

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [each.doc for each in self.received]

    def answer(self, body: bytes, headers: Message) -> int:
        with self._lock:
            self.requests += 1
            if self.status is not None:
                return self.status
            if self.refuse is not None and self.refuse(json.loads(body)):
                return 503
            self.received.append(Received(body, headers))
            return 200

    def start(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.answer(body, self.headers)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "&moved=1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[Receiver]:
        """A receiver listening for the duration of the ``with`` block."""
        server = cls()
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.running() as server:
        yield server


# --- helpers ----------------------------------------------------------------------------------


def one_click(app: Flask, email: str) -> None:
    """Unsubscribe ``email`` from the list the way a mail client does (RFC 8058 POST)."""
    links = links_for(app, email)
    response = app.test_client(use_cookies=False).post(
        path_of(links.unsubscribe_url),
        data=ONE_CLICK,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200


def resubscribe(app: Flask, email: str) -> None:
    """Undo the unsubscribe, as the preference center's undo does."""
    token = links_for(app, email).token
    with transaction(app) as session:
        payload = runtime_of(app).minter.signer.verify(
            Purpose.UNSUBSCRIBE, token, now=runtime_of(app).now()
        )
        target = unsubscribe_service.resolve(session, payload)
        outcome = unsubscribe_service.resubscribe(
            session, target, channel=Channel.PREFERENCE_CENTER, now=runtime_of(app).now()
        )
        assert outcome.changed


def add_hook(app: Flask, url: str) -> tuple[int, str]:
    """Register ``url`` under the app's settings; return its id and secret."""
    rt = runtime_of(app)
    with transaction(app) as session:
        webhook, secret = add_endpoint(
            session,
            url,
            now=rt.now(),
            keyring=rt.keyring,
            policy=url_policy(rt.settings),
            max_endpoints=rt.settings.webhook_max_endpoints,
        )
        return webhook.id, secret


def deliver_from(app: Flask, clock: Callable[[], datetime], **kwargs: Any) -> DeliveryStats:
    """Run ``deliver_due`` with the app's keys and URL policy."""
    rt = runtime_of(app)
    kwargs.setdefault("keyring", rt.keyring)
    kwargs.setdefault("policy", url_policy(rt.settings))
    return deliver_due(rt.unit_of_work, now=clock, **kwargs)


def deliver(app: Flask, clock: FakeClock, **kwargs: Any) -> DeliveryStats:
    return deliver_from(app, clock, **kwargs)


def outbox(app: Flask) -> list[WebhookDelivery]:
    with transaction(app) as session:
        rows = list(session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))
        session.expunge_all()
        return rows


def attempts(app: Flask, delivery_id: int) -> list[tuple[datetime, int | None, str | None]]:
    with transaction(app) as session:
        rows = session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return [(row.attempted_at, row.status_code, row.error) for row in rows]


def event_ids(app: Flask) -> list[int]:
    with transaction(app) as session:
        return list(session.scalars(sa.select(Event.id).order_by(Event.id)))


def emails_and_types(receiver: Receiver) -> list[tuple[str, str]]:
    return [(doc["email"], doc["type"]) for doc in receiver.docs]


# --- (a) signatures ---------------------------------------------------------------------------


def test_deliveries_are_signed_with_the_documented_recipe(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    """Standard Webhooks: the reference library accepts a real delivery, and nothing altered."""
    real_time(clock)
    make_list(app)
    hook_id, secret = add_hook(app, receiver.url)
    one_click(app, ANN)

    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=1, failed=0)

    [got] = receiver.received
    assert got.verifies(secret)
    assert standardwebhooks.Webhook(secret).verify(got.body, got.header_dict) == got.doc
    msg_id = got.headers["webhook-id"]
    timestamp = int(got.headers["webhook-timestamp"])
    assert timestamp == int(clock.now.timestamp())
    # The recipe of the README, by hand: base64 HMAC-SHA256 of "id.timestamp.body", keyed
    # with the base64-decoded secret after "whsec_".
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + got.body, hashlib.sha256).digest()
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert verify(secret, got.header_dict, got.body, now=timestamp)
    assert "Unsubsvc-Signature" not in got.headers

    # A replay under another id (to slip past deduplication), at another time, or with
    # another body fails, as does another secret.
    for name, value in (("webhook-id", "msg_999_1"), ("webhook-timestamp", str(timestamp - 1))):
        replay = Received(got.body, Message())
        for key_, header in got.headers.items():
            replay.headers[key_] = value if key_.lower() == name else header
        assert replay.header_dict[name] == value
        assert not replay.verifies(secret)
    assert not Received(got.body + b"\n", got.headers).verifies(secret)
    assert not Received(got.body.replace(b"one_click", b"api"), got.headers).verifies(secret)
    assert not got.verifies(add_hook(app, receiver.url)[1])

    [row] = outbox(app)
    assert msg_id == message_id(row.id, row.created_at)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "unsubsvc-webhooks"
    assert got.headers["Unsubsvc-Delivery-Id"] == str(row.id)
    assert got.headers["Unsubsvc-Event-Id"] == str(row.event_id) == str(got.doc["id"])
    assert row.webhook_id == hook_id
    assert row.delivered_at == clock.now
    assert row.attempts == 0 and row.last_error is None
    assert attempts(app, row.id) == [(clock.now, 200, None)]
    assert got.body == row.payload.encode()  # the outbox payload, byte for byte
    assert got.doc == {
        "id": row.event_id,
        "seq": got.doc["seq"],
        "type": "unsubscribe",
        "occurred_at": clock.now.isoformat(),
        "list": "news",
        "email": ANN,
        "subscriber": got.doc["subscriber"],
        "topic": None,
        "campaign": "c1",
        "channel": "one_click",
        "detail": None,
    }


def test_retries_of_a_row_carry_the_same_webhook_id_and_the_time_of_each_attempt(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    t0 = real_time(clock)
    make_list(app)
    _, secret = add_hook(app, receiver.url)
    one_click(app, ANN)
    sent: list[dict[str, str]] = []

    def recording(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(dict(headers))
        return http_post(url, body, headers)

    receiver.status = 503
    assert deliver(app, clock, post=recording) == DeliveryStats(attempted=1, failed=1)
    clock.advance(seconds=10)
    assert deliver(app, clock, post=recording) == DeliveryStats(attempted=1, failed=1)
    receiver.status = None
    clock.advance(seconds=20)
    assert deliver(app, clock, post=recording) == DeliveryStats(attempted=1, delivered=1)

    [row] = outbox(app)
    assert [headers["webhook-id"] for headers in sent] == [message_id(row.id, row.created_at)] * 3
    assert [int(headers["webhook-timestamp"]) - int(t0.timestamp()) for headers in sent] == [
        0,
        10,
        30,
    ]
    assert len({headers["webhook-signature"] for headers in sent}) == 3
    [got] = receiver.received
    assert got.header_dict["webhook-id"] == sent[0]["webhook-id"]
    assert got.verifies(secret)


# --- (b) a receiver that is down --------------------------------------------------------------


def test_a_receiver_that_is_down_gets_everything_exactly_once_when_back(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    add_hook(app, receiver.url)
    for email in (ANN, BOB, CAROL):
        one_click(app, email)
    t0 = clock.now

    receiver.status = 503
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=0, failed=3)
    assert [(r.attempts, r.next_attempt_at, r.last_error) for r in outbox(app)] == [
        (1, t0 + timedelta(seconds=10), "HTTP 503")
    ] * 3

    clock.advance(seconds=9)  # not due yet: nothing is tried
    assert deliver(app, clock) == DeliveryStats()
    assert receiver.requests == 3

    clock.advance(seconds=1)
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=0, failed=3)
    assert {(r.attempts, r.next_attempt_at) for r in outbox(app)} == {
        (2, t0 + timedelta(seconds=10 + 20))
    }

    receiver.stop()  # now connections are refused
    clock.advance(seconds=20)
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=0, failed=3)
    rows = outbox(app)
    assert {(r.attempts, r.next_attempt_at) for r in rows} == {
        (3, t0 + timedelta(seconds=10 + 20 + 40))
    }
    for row in rows:
        assert row.delivered_at is None
        assert row.last_error is not None and "Connection refused" in row.last_error
        tries = attempts(app, row.id)
        assert [(at - t0, status) for at, status, _ in tries] == [
            (timedelta(0), 503),
            (timedelta(seconds=10), 503),
            (timedelta(seconds=30), None),
        ]
        assert tries[2][2] == row.last_error
    assert receiver.requests == 6

    receiver.start()  # back up, on the same port
    receiver.status = None
    clock.advance(seconds=39)
    assert deliver(app, clock) == DeliveryStats()
    clock.advance(seconds=1)
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=3, failed=0)
    clock.advance(hours=2)
    assert deliver(app, clock) == DeliveryStats()

    assert [doc["id"] for doc in receiver.docs] == event_ids(app)
    assert Counter(got.headers["Unsubsvc-Delivery-Id"] for got in receiver.received) == Counter(
        str(row.id) for row in outbox(app)
    )
    assert Counter(got.headers["webhook-id"] for got in receiver.received) == Counter(
        message_id(row.id, row.created_at) for row in outbox(app)
    )
    assert all(row.delivered_at == clock.now - timedelta(hours=2) for row in outbox(app))


# --- (c) order per recipient ------------------------------------------------------------------


def test_a_recipients_events_arrive_in_order_even_when_its_first_delivery_failed(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    add_hook(app, receiver.url)
    receiver.refuse = lambda doc: doc["email"] == ANN

    one_click(app, ANN)  # event 1
    one_click(app, BOB)  # event 2
    assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=1, failed=1)
    assert emails_and_types(receiver) == [(BOB, "unsubscribe")]

    clock.advance(seconds=3)
    resubscribe(app, ANN)  # event 3: must not overtake event 1
    resubscribe(app, BOB)  # event 4
    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=1, failed=0)
    assert emails_and_types(receiver) == [(BOB, "unsubscribe"), (BOB, "resubscribe")]
    ann_first, _, ann_second, _ = outbox(app)
    assert attempts(app, ann_second.id) == []  # held back, not even tried

    receiver.refuse = None
    clock.advance(seconds=7)  # ten seconds after Ann's first failure
    assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=2, failed=0)

    assert emails_and_types(receiver) == [
        (BOB, "unsubscribe"),
        (BOB, "resubscribe"),
        (ANN, "unsubscribe"),
        (ANN, "resubscribe"),
    ]
    ann = [doc for doc in receiver.docs if doc["email"] == ANN]
    assert [doc["id"] for doc in ann] == sorted(doc["id"] for doc in ann)
    assert [doc["channel"] for doc in ann] == ["one_click", "preference_center"]
    assert sorted(doc["id"] for doc in receiver.docs) == event_ids(app)
    # Ann's resubscribe was first tried only once her unsubscribe had been accepted.
    assert [status for _, status, _ in attempts(app, ann_first.id)] == [503, 200]
    assert [status for _, status, _ in attempts(app, ann_second.id)] == [200]


def test_one_run_sends_a_recipients_backlog_in_order_across_batches(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    add_hook(app, receiver.url)
    one_click(app, ANN)
    resubscribe(app, ANN)
    one_click(app, BOB)
    one_click(app, ANN)

    assert deliver(app, clock, batch=1) == DeliveryStats(attempted=4, delivered=4, failed=0)

    assert emails_and_types(receiver) == [
        (ANN, "unsubscribe"),
        (ANN, "resubscribe"),
        (BOB, "unsubscribe"),
        (ANN, "unsubscribe"),
    ]


def test_stop_ends_a_run_between_rows(app: Flask, clock: FakeClock, receiver: Receiver) -> None:
    make_list(app)
    add_hook(app, receiver.url)
    one_click(app, ANN)
    one_click(app, BOB)
    sent: list[int] = []

    def post_once(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(1)
        return http_post(url, body, headers)

    stats = deliver(app, clock, post=post_once, stop=lambda: bool(sent))

    assert stats == DeliveryStats(attempted=1, delivered=1, failed=0)
    assert [row.delivered_at is not None for row in outbox(app)] == [True, False]


# --- (d) which endpoints get what -------------------------------------------------------------


def test_events_before_an_endpoint_existed_are_not_sent_to_it(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    one_click(app, ANN)  # no endpoint yet
    add_hook(app, receiver.url)
    one_click(app, BOB)

    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=1, failed=0)
    assert emails_and_types(receiver) == [(BOB, "unsubscribe")]
    assert len(outbox(app)) == 1


def test_a_disabled_endpoint_gets_nothing_new(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    old_id, _ = add_hook(app, receiver.url)
    other = Receiver()
    other.start()
    try:
        new_id, _ = add_hook(app, other.url)
        one_click(app, ANN)  # owed to both, not yet sent
        with transaction(app) as session:
            disable_endpoint(session, old_id, now=clock.now)
        one_click(app, BOB)  # owed to the active endpoint only

        assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=2, failed=0)

        assert receiver.received == []
        assert emails_and_types(other) == [(ANN, "unsubscribe"), (BOB, "unsubscribe")]
    finally:
        other.stop()
    assert [(row.webhook_id, row.delivered_at is None) for row in outbox(app)] == [
        (old_id, True),
        (new_id, False),
        (new_id, False),
    ]
    with transaction(app) as session:
        listed = list_endpoints(session, now=clock.now)
        assert [(e.id, e.active, e.pending) for e in listed] == [
            (old_id, False, 1),
            (new_id, True, 0),
        ]
        assert listed[0].disabled_at == clock.now
        clock.advance(minutes=1)
        disable_endpoint(session, old_id, now=clock.now)  # again: keeps the first date
        [first, _] = list_endpoints(session, now=clock.now)
        assert first.disabled_at == clock.now - timedelta(minutes=1)
        with pytest.raises(NotFound):
            disable_endpoint(session, 999, now=clock.now)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "/hooks/relative",
        "https://",
        "https://hooks.example.com/a b",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com:99999/",
        "javascript:alert(1)",
        "https://hooks.example.com/" + "x" * 2000,
        "",
    ],
    ids=[
        "ftp",
        "relative",
        "no-host",
        "space",
        "credentials",
        "bad-port",
        "javascript",
        "too-long",
        "empty",
    ],
)
def test_add_endpoint_refuses_what_is_not_an_http_url(app: Flask, url: str) -> None:
    with pytest.raises(InvalidInput):
        add_hook(app, url)


# --- (e) the command line ---------------------------------------------------------------------


def test_cli_add_list_deliver_disable(
    app: Flask, runner: CommandRunner, clock: FakeClock, receiver: Receiver
) -> None:
    real_time(clock)
    make_list(app)
    added = runner.invoke(args=["webhooks", "add", receiver.url])
    assert added.exit_code == 0, added.output
    printed = json.loads(added.stdout)
    assert printed["url"] == receiver.url
    assert printed["secret"].startswith("whsec_")
    assert "not shown again" in added.stderr
    assert "webhook-signature" in added.stderr
    assert printed["secret"] not in runner.invoke(args=["webhooks", "list"]).output

    one_click(app, ANN)
    listed = runner.invoke(args=["webhooks", "list"])
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"id": printed["id"], "url": receiver.url, "active": True, "pending": 1}
    ]

    delivered = runner.invoke(args=["webhooks", "deliver", "--once"])
    assert delivered.exit_code == 0, delivered.output
    assert "1 attempted, 1 delivered, 0 failed" in delivered.stderr
    [got] = receiver.received
    assert got.doc["email"] == ANN
    assert got.verifies(printed["secret"])
    listed = runner.invoke(args=["webhooks", "list"])
    assert json.loads(listed.stdout)["pending"] == 0

    disabled = runner.invoke(args=["webhooks", "disable", str(printed["id"])])
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(runner.invoke(args=["webhooks", "list"]).stdout)["active"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["webhooks", "add", "ftp://example.com/"], "http"),
        (["webhooks", "disable", "42"], "no webhook with id 42"),
    ],
    ids=["bad-url", "unknown-id"],
)
def test_cli_reports_errors_with_exit_1(
    runner: CommandRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert message in result.output


class FakeProcess:
    """Stands in for the deliverer's Popen in the ``serve`` wiring test."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def poll(self) -> int | None:
        return None

    def terminate(self) -> None:
        self.calls.append("terminate")

    def wait(self, timeout: float | None = None) -> int:
        self.calls.append("wait")
        return 0

    def kill(self) -> None:
        self.calls.append("kill")


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (["--deliver-webhooks"], ["spawn 5.0", "serve", "terminate", "wait"]),
        (["--no-deliver-webhooks"], ["serve"]),
        ([], ["serve"]),
    ],
    ids=["on", "off", "default-off"],
)
def test_serve_runs_the_deliverer_alongside_only_when_asked(
    runner: CommandRunner, monkeypatch: pytest.MonkeyPatch, flag: list[str], expected: list[str]
) -> None:
    import unsubsvc.serving

    calls: list[str] = []

    def spawn(interval: float) -> FakeProcess:
        calls.append(f"spawn {interval}")
        return FakeProcess(calls)

    def serve(*args: Any, **kwargs: Any) -> None:
        calls.append("serve")
        raise KeyboardInterrupt  # serving ends however it ends: the deliverer is stopped

    monkeypatch.setattr(cli_webhooks, "spawn_deliverer", spawn)
    monkeypatch.setattr(unsubsvc.serving, "serve", serve)

    runner.invoke(args=["serve", *flag])

    assert calls == expected


@pytest.mark.slow
def test_spawned_deliverer_sends_and_stops_on_sigterm(
    app: Flask, clock: FakeClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m unsubsvc.cli webhooks deliver`` in a child process, on the real clock."""
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on loopback
    make_list(app)
    _, secret = add_hook(app, receiver.url)
    one_click(app, ANN)  # due at the fake clock's time, which is in the past

    process = cli_webhooks.spawn_deliverer(0.1)
    try:
        deadline = time.monotonic() + 60
        while not receiver.received and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        code = cli_webhooks.stop_deliverer(process, timeout=20)

    assert code == 0  # SIGTERM is a clean stop
    [got] = receiver.received
    assert got.doc["email"] == ANN
    assert got.verifies(secret)  # signed on the real clock, as the library checks
    assert all(row.delivered_at is not None for row in outbox(app))


# --- (f) failures that raise ------------------------------------------------------------------


def test_a_post_that_raises_leaves_the_row_pending_with_the_error(
    app: Flask, clock: FakeClock
) -> None:
    make_list(app)
    add_hook(app, "https://hooks.example.com/unsubsvc")
    one_click(app, ANN)

    def broken(url: str, body: bytes, headers: dict[str, str]) -> int:
        raise ConnectionResetError(104, "Connection reset by peer")

    # a fixed time works too
    stats = deliver_from(app, clock, post=broken)

    assert stats == DeliveryStats(attempted=1, delivered=0, failed=1)
    [row] = outbox(app)
    assert row.delivered_at is None
    assert row.attempts == 1
    assert row.next_attempt_at == clock.now + timedelta(seconds=10)
    assert row.last_error == "ConnectionResetError: [Errno 104] Connection reset by peer"
    assert attempts(app, row.id) == [(clock.now, None, row.last_error)]


def test_redirects_are_failures_and_not_followed(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    add_hook(app, receiver.url)
    one_click(app, ANN)
    receiver.status = 307

    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=0, failed=1)

    assert receiver.requests == 1  # the Location was not posted to
    [row] = outbox(app)
    assert row.last_error == "HTTP 307 (redirects are not followed)"
    assert attempts(app, row.id) == [(clock.now, 307, None)]


@pytest.mark.parametrize("status", [200, 204, 302, 404, 503], ids=str)
def test_http_post_returns_the_status_code(receiver: Receiver, status: int) -> None:
    receiver.status = None if status == 200 else status
    assert http_post(receiver.url, b"{}", {"Content-Type": "application/json"}) == status
    assert receiver.requests == 1


def test_http_post_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="non-HTTP"):
        strict_post("file:///etc/passwd", b"{}", {})


# --- concurrency ------------------------------------------------------------------------------


def test_a_change_committed_while_a_delivery_is_in_flight_is_kept(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    """A one-click POST committing during a send neither fails nor gets lost (both databases)."""
    make_list(app)
    add_hook(app, receiver.url)
    links_for(app, BOB)
    one_click(app, ANN)

    def post_during_a_change(url: str, body: bytes, headers: dict[str, str]) -> int:
        if not receiver.requests:
            one_click(app, BOB)
        return http_post(url, body, headers)

    stats = deliver(app, clock, post=post_during_a_change)

    assert stats == DeliveryStats(attempted=2, delivered=2, failed=0)
    assert emails_and_types(receiver) == [(ANN, "unsubscribe"), (BOB, "unsubscribe")]


def test_two_deliverers_never_send_a_row_twice(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    """While one deliverer sends a row, another skips it (leased) and what waits behind it."""
    make_list(app)
    add_hook(app, receiver.url)
    one_click(app, ANN)
    resubscribe(app, ANN)
    one_click(app, BOB)
    meanwhile: list[DeliveryStats] = []

    def post_while_another_runs(url: str, body: bytes, headers: dict[str, str]) -> int:
        if not meanwhile:  # Ann's first row is leased by the outer run right now
            meanwhile.append(deliver_from(app, clock))
        return http_post(url, body, headers)

    # One row claimed at a time, so that Bob's row is left for the other deliverer.
    first = deliver_from(app, clock, post=post_while_another_runs, batch=1)

    assert meanwhile == [DeliveryStats(attempted=1, delivered=1, failed=0)]  # Bob's only
    assert first == DeliveryStats(attempted=2, delivered=2, failed=0)  # Ann's two
    assert emails_and_types(receiver) == [
        (BOB, "unsubscribe"),
        (ANN, "unsubscribe"),
        (ANN, "resubscribe"),
    ]
    assert sorted(doc["id"] for doc in receiver.docs) == event_ids(app)
