"""Webhook deliverers that scale out: leases, endpoints kept apart, failing ones disabled, purge."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient, FakeClock
from tests.functional.test_webhooks import (
    ANN,
    BOB,
    CAROL,
    Receiver,
    add_hook,
    attempts,
    deliver_from,
    event_ids,
    http_post,
    one_click,
    outbox,
    resubscribe,
)
from tests.helpers import CommandRunner, make_list, transaction
from unsubsvc.cli import webhooks as cli_webhooks
from unsubsvc.db.models import Webhook, WebhookAttempt, WebhookDelivery
from unsubsvc.services.webhooks import (
    Deliverer,
    DeliveryStats,
    Outcome,
    PurgeStats,
    claim,
    disable_endpoint,
    list_endpoints,
    purge_delivered,
    record,
    url_policy,
)
from unsubsvc.settings import ConfigError, load_settings
from unsubsvc.web.context import runtime_of

DAVE = "dave@example.com"
#: The deliverers' HTTP timeout in the hanging-endpoint test: far longer than "promptly".
HANG_TIMEOUT = 8.0


class HangingReceiver:
    """An HTTP endpoint on 127.0.0.1 that accepts every POST and never answers it."""

    def __init__(self) -> None:
        self.requests = 0
        self.hanging = 0
        #: The Unsubsvc-Delivery-Id of every POST received.
        self.delivery_ids: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                with receiver._lock:
                    receiver.requests += 1
                    receiver.hanging += 1
                    receiver.delivery_ids.append(self.headers["Unsubsvc-Delivery-Id"])
                receiver.released.wait(60)  # then hang up without a word
                with receiver._lock:
                    receiver.hanging -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/never-answers"

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose webhooks may reach the receivers on 127.0.0.1."""
    return make_app(webhook_allow_private=True)


@pytest.fixture
def good() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hanging() -> Iterator[HangingReceiver]:
    server = HangingReceiver()
    try:
        yield server
    finally:
        server.stop()


def deliver(app: Flask, clock: Callable[[], datetime], **kwargs: Any) -> DeliveryStats:
    return deliver_from(app, clock, **kwargs)


def webhook_row(app: Flask, webhook_id: int) -> tuple[datetime | None, datetime | None]:
    """Return the endpoint's (failing_since, disabled_at)."""
    with transaction(app) as session:
        hook = session.get(Webhook, webhook_id)
        assert hook is not None
        return hook.failing_since, hook.disabled_at


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- the acceptance test ------------------------------------------------------------------------


def test_two_deliverers_a_hanging_endpoint_never_delays_the_good_one(
    app: Flask, clock: FakeClock, good: Receiver, hanging: HangingReceiver
) -> None:
    """Two deliverers, one endpoint that never answers, one that does: every event once, fast."""
    make_list(app)
    dead_id, _ = add_hook(app, hanging.url)
    good_id, _ = add_hook(app, good.url)
    people = [f"user{i}@example.com" for i in range(12)]
    for email in people[:6]:
        one_click(app, email)
    resubscribe(app, "user0@example.com")  # must reach the good endpoint after the unsubscribe

    started = time.monotonic()

    def live() -> datetime:  # the fixed test time, moving on in real time
        return clock.now + timedelta(seconds=time.monotonic() - started)

    stop = threading.Event()
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with Deliverer(
                runtime_of(app).unit_of_work,
                clock=live,
                keyring=runtime_of(app).keyring,
                policy=url_policy(runtime_of(app).settings),
                owner=name,
                stop=stop.is_set,
                timeout=HANG_TIMEOUT,
                lease=timedelta(seconds=30),
            ) as deliverer:
                while not stop.is_set():
                    deliverer.poll()
                    time.sleep(0.02)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"deliverer-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: len(good.received) == 7, 3), good.docs
        for email in people[6:]:  # more changes while the dead endpoint keeps hanging
            one_click(app, email)
        assert wait_for(lambda: len(good.received) == 13, 3), good.docs
        elapsed = time.monotonic() - started
        # Each deliverer may wait on a row of its own there (the second on a newer
        # recipient's), never on the same row, and never on two rows at once.
        assert 1 <= hanging.hanging == hanging.requests <= 2
        assert len(set(hanging.delivery_ids)) == hanging.requests
    finally:
        stop.set()
        hanging.released.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert elapsed < HANG_TIMEOUT / 2  # the good endpoint never waited for the hanging one

    assert (
        Counter(got.headers["Unsubsvc-Delivery-Id"] for got in good.received).most_common(1)[0][1]
        == 1
    )
    assert sorted(doc["id"] for doc in good.docs) == event_ids(app)
    user0 = [doc["type"] for doc in good.docs if doc["email"] == "user0@example.com"]
    assert user0 == ["unsubscribe", "resubscribe"]
    rows = outbox(app)
    assert all(row.delivered_at is not None for row in rows if row.webhook_id == good_id)
    assert all(row.delivered_at is None for row in rows if row.webhook_id == dead_id)
    assert all(row.lease_owner is None for row in rows)  # stopping gave back what it held
    with transaction(app) as session:
        good_attempts = session.scalar(
            sa.select(sa.func.count())
            .select_from(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.webhook_id == good_id)
        )
    assert good_attempts == 13  # one attempt per event: nothing was sent twice


# --- leases -------------------------------------------------------------------------------------


def test_a_row_whose_deliverer_died_is_taken_over_when_its_lease_runs_out(
    app: Flask, clock: FakeClock, good: Receiver
) -> None:
    make_list(app)
    hook_id, _ = add_hook(app, good.url)
    one_click(app, ANN)
    with transaction(app) as session:  # a deliverer claims the row, then dies
        [dead] = claim(
            session,
            hook_id,
            owner="dead",
            cutoff=clock.now,
            now=clock.now,
            lease=timedelta(seconds=60),
            limit=10,
        )
    assert dead.until == clock.now + timedelta(seconds=60)

    assert deliver(app, clock) == DeliveryStats()  # leased: left alone
    clock.advance(seconds=59)
    assert deliver(app, clock) == DeliveryStats()
    clock.advance(seconds=1)
    assert deliver(app, clock, owner="heir") == DeliveryStats(attempted=1, delivered=1)

    assert [doc["email"] for doc in good.docs] == [ANN]
    [row] = outbox(app)
    assert (row.delivered_at, row.leased_until, row.lease_owner) == (clock.now, None, None)
    with transaction(app) as session:  # the dead one, back, cannot record an answer
        outcome = record(
            session,
            dead,
            status=200,
            error=None,
            started=clock.now,
            finished=clock.now,
            cutoff=clock.now,
        )
    assert outcome is Outcome.LOST
    assert attempts(app, row.id) == [(clock.now, 200, None)]
    assert deliver(app, clock) == DeliveryStats()  # delivered: never sent again


def test_a_stale_owner_cannot_record_after_its_lease_was_taken_over(
    app: Flask, clock: FakeClock, good: Receiver
) -> None:
    make_list(app)
    add_hook(app, good.url)
    one_click(app, ANN)
    other: list[DeliveryStats] = []

    def stalled_post(url: str, body: bytes, headers: dict[str, str]) -> int:
        # This deliverer stalls past its lease; another takes the row over meanwhile.
        clock.advance(seconds=61)
        other.append(deliver_from(app, clock, owner="second"))
        clock.advance(seconds=1)
        return http_post(url, body, headers)

    first = deliver_from(app, clock, post=stalled_post, owner="first")

    assert other == [DeliveryStats(attempted=1, delivered=1)]
    assert first == DeliveryStats(attempted=1, lost=1)
    assert str(first) == "1 attempted, 0 delivered, 0 failed, 1 lost to another deliverer"
    [row] = outbox(app)
    # Recorded once, by the second deliverer, at its time.
    assert row.delivered_at == clock.now - timedelta(seconds=1)
    assert attempts(app, row.id) == [(clock.now - timedelta(seconds=1), 200, None)]
    # Only a stall beyond the lease sends twice; the receiver dedupes on the delivery id.
    assert [got.headers["Unsubsvc-Delivery-Id"] for got in good.received] == [str(row.id)] * 2


def test_a_post_starts_only_while_the_lease_outlasts_the_timeout(
    app: Flask, clock: FakeClock, good: Receiver
) -> None:
    """A batch whose lease runs short is given back and claimed afresh, not sent on an old lease."""
    make_list(app)
    add_hook(app, good.url)
    for email in (ANN, BOB, CAROL):
        one_click(app, email)
    t0 = clock.now
    leases: list[datetime | None] = []

    def slow_post(url: str, body: bytes, headers: dict[str, str]) -> int:
        delivery_id = int(headers["Unsubsvc-Delivery-Id"])
        [row] = [row for row in outbox(app) if row.id == delivery_id]
        leases.append(row.leased_until)
        clock.advance(seconds=25)
        return http_post(url, body, headers)

    stats = deliver(app, clock, post=slow_post, lease=timedelta(seconds=60), timeout=10)

    assert stats == DeliveryStats(attempted=3, delivered=3)
    # 60 s from t0 left 10 s at t0 + 50 s, no more than the timeout: the third was claimed again.
    assert leases == [t0 + timedelta(seconds=60)] * 2 + [t0 + timedelta(seconds=50 + 60)]


def test_a_lease_shorter_than_the_timeout_is_refused(app: Flask) -> None:
    with pytest.raises(ValueError, match="outlast"):
        Deliverer(
            runtime_of(app).unit_of_work,
            clock=lambda: datetime.now(),
            keyring=runtime_of(app).keyring,
            policy=url_policy(runtime_of(app).settings),
            timeout=60,
        )
    runner = CommandRunner(runtime_of(app))
    result = runner.invoke(args=["webhooks", "deliver", "--once", "--timeout", "5", "--lease", "5"])
    assert result.exit_code == 2
    assert "--lease" in result.output


# --- failing endpoints --------------------------------------------------------------------------


def test_an_endpoint_failing_for_three_days_is_disabled_and_shown_so(
    app: Flask, clock: FakeClock, good: Receiver, runner: CommandRunner, api: ApiClient
) -> None:
    make_list(app)
    hook_id, _ = add_hook(app, good.url)
    good.status = 503
    one_click(app, ANN)
    t0 = clock.now

    assert deliver(app, clock) == DeliveryStats(attempted=1, failed=1)
    assert webhook_row(app, hook_id) == (t0, None)
    clock.advance(days=3, minutes=-1)  # retried hourly by then; still under three days
    assert deliver(app, clock) == DeliveryStats(attempted=1, failed=1)
    assert webhook_row(app, hook_id) == (t0, None)  # the first failure's time is kept

    clock.advance(hours=1)
    assert deliver(app, clock) == DeliveryStats(attempted=1, failed=1)
    assert webhook_row(app, hook_id) == (t0, clock.now)
    clock.advance(hours=2)
    assert deliver(app, clock) == DeliveryStats()  # disabled: nothing more is sent

    reason = f"failing since {t0.isoformat()}: no delivery accepted for 3 days"
    with transaction(app) as session:
        [endpoint] = list_endpoints(session, now=clock.now)
    assert (endpoint.active, endpoint.disabled_reason, endpoint.pending) == (False, reason, 1)
    listed = json.loads(runner.invoke(args=["webhooks", "list"]).stdout)
    assert listed == {
        "id": hook_id,
        "url": good.url,
        "active": False,
        "pending": 1,
        "failing_since": t0.isoformat(),
        "disabled_at": (clock.now - timedelta(hours=2)).isoformat(),
        "disabled_reason": reason,
    }
    [shown] = api.get("/webhooks").json["webhooks"]
    assert (shown["active"], shown["disabled_reason"]) == (False, reason)
    assert shown["failing_since"] is not None and shown["disabled_at"] is not None


def test_a_success_clears_failing_and_an_operator_disable_says_so(
    app: Flask, clock: FakeClock, good: Receiver, runner: CommandRunner
) -> None:
    make_list(app)
    hook_id, _ = add_hook(app, good.url)
    good.refuse = lambda doc: doc["email"] == ANN
    one_click(app, ANN)
    assert deliver(app, clock) == DeliveryStats(attempted=1, failed=1)
    assert webhook_row(app, hook_id) == (clock.now, None)

    clock.advance(days=2)
    one_click(app, BOB)  # another recipient's row is accepted: the endpoint works
    assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=1, failed=1)
    assert webhook_row(app, hook_id) == (None, None)
    clock.advance(days=2)
    assert deliver(app, clock) == DeliveryStats(attempted=1, failed=1)
    assert webhook_row(app, hook_id) == (clock.now, None)  # failing afresh, not since day 0

    assert runner.invoke(args=["webhooks", "disable", str(hook_id)]).exit_code == 0
    listed = json.loads(runner.invoke(args=["webhooks", "list"]).stdout)
    assert (listed["active"], listed["disabled_reason"]) == (False, "disabled by an operator")


# --- purge --------------------------------------------------------------------------------------


def count(app: Flask, model: type[WebhookDelivery] | type[WebhookAttempt]) -> int:
    with transaction(app) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_purge_removes_only_delivered_rows_past_the_retention_with_their_attempts(
    app: Flask, clock: FakeClock, good: Receiver
) -> None:
    make_list(app)
    add_hook(app, good.url)
    t0 = clock.now
    good.refuse = lambda doc: doc["email"] in (ANN, CAROL)
    for email in (ANN, BOB, CAROL):
        one_click(app, email)
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=1, failed=2)
    good.refuse = lambda doc: doc["email"] == CAROL  # Carol's row is never accepted
    clock.advance(seconds=10)
    assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=1, failed=1)
    clock.advance(days=1)
    one_click(app, DAVE)
    assert deliver(app, clock) == DeliveryStats(attempted=2, delivered=1, failed=1)
    ann, bob, carol, dave = outbox(app)
    assert count(app, WebhookAttempt) == 7

    clock.now = t0 + timedelta(days=30, seconds=10)  # Ann's delivery is exactly 30 days old
    with transaction(app) as session:
        assert purge_delivered(session, now=clock.now, retention_days=30) == PurgeStats(1, 1)
    assert [row.id for row in outbox(app)] == [ann.id, carol.id, dave.id]

    clock.advance(seconds=1)
    with transaction(app) as session:
        stats = purge_delivered(session, now=clock.now, retention_days=30)
    assert stats == PurgeStats(deliveries=1, attempts=2)
    assert str(stats) == "purged 1 delivered rows and 2 attempts"
    # Carol's row is still owed, however old; Dave's was delivered a day later.
    assert [row.id for row in outbox(app)] == [carol.id, dave.id]
    assert len(attempts(app, carol.id)) == 3 and len(attempts(app, dave.id)) == 1
    assert attempts(app, ann.id) == attempts(app, bob.id) == []


def test_purge_drops_every_row_of_an_endpoint_disabled_longer_than_the_retention(
    app: Flask, clock: FakeClock, good: Receiver
) -> None:
    """Undelivered rows (each with an address) go once their endpoint was disabled that long."""
    make_list(app)
    gone_id, _ = add_hook(app, good.url)
    kept_id, _ = add_hook(app, good.url + "&kept=1")
    good.status = 503  # nothing is accepted: every row stays owed
    for email in (ANN, BOB):
        one_click(app, email)
    assert deliver(app, clock) == DeliveryStats(attempted=4, failed=4)
    with transaction(app) as session:
        disable_endpoint(session, gone_id, now=clock.now)
    assert len(outbox(app)) == 4 and count(app, WebhookAttempt) == 4

    clock.advance(days=30)  # disabled exactly 30 days ago: not yet
    with transaction(app) as session:
        assert purge_delivered(session, now=clock.now, retention_days=30) == PurgeStats(0, 0)
    clock.advance(seconds=1)
    with transaction(app) as session:
        stats = purge_delivered(session, now=clock.now, retention_days=30)

    assert stats == PurgeStats(deliveries=2, attempts=2)
    assert {row.webhook_id for row in outbox(app)} == {kept_id}  # the active one's are owed
    assert all(row.delivered_at is None for row in outbox(app))


def test_purge_goes_in_chunks(app: Flask, clock: FakeClock, good: Receiver) -> None:
    make_list(app)
    add_hook(app, good.url)
    for email in (ANN, BOB, CAROL):
        one_click(app, email)
    assert deliver(app, clock) == DeliveryStats(attempted=3, delivered=3)
    clock.advance(days=31)
    with transaction(app) as session:
        purge = [purge_delivered(session, now=clock.now, retention_days=30, limit=2) for _ in "abc"]
    assert purge == [PurgeStats(2, 2), PurgeStats(1, 1), PurgeStats(0, 0)]
    assert outbox(app) == []


def test_cli_purge_follows_the_retention_setting(
    make_app: Callable[..., Flask], clock: FakeClock, good: Receiver
) -> None:
    app = make_app(webhook_retention_days=2, webhook_allow_private=True)
    make_list(app)
    add_hook(app, good.url)
    one_click(app, ANN)
    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=1)
    runner = CommandRunner(runtime_of(app))

    clock.advance(days=2)
    kept = runner.invoke(args=["webhooks", "purge"])
    assert kept.exit_code == 0, kept.output
    assert "purged 0 delivered rows and 0 attempts (older than 2 days)" in kept.stderr
    clock.advance(seconds=1)
    purged = runner.invoke(args=["webhooks", "purge"])
    assert "purged 1 delivered rows and 1 attempts" in purged.stderr
    assert outbox(app) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 30),
        ("7", 7),
        (" 90 ", 90),
        ("0", ConfigError),
        ("-1", ConfigError),
        ("x", ConfigError),
    ],
    ids=["default", "seven", "spaces", "zero", "negative", "not-a-number"],
)
def test_the_retention_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, value: str | None, expected: object
) -> None:
    environ = {"UNSUBSVC_SECRET_KEY": "k" * 32}
    if value is not None:
        environ["UNSUBSVC_WEBHOOK_RETENTION_DAYS"] = value
    if expected is ConfigError:
        with pytest.raises(ConfigError, match="UNSUBSVC_WEBHOOK_RETENTION_DAYS"):
            load_settings(tmp_path, environ)
    else:
        assert load_settings(tmp_path, environ).webhook_retention_days == expected


@pytest.mark.slow
def test_the_deliverer_loop_purges_old_rows(
    app: Flask, clock: FakeClock, good: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``webhooks deliver`` in a child process on the real clock, months after the fixed time."""
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on loopback
    make_list(app)
    add_hook(app, good.url)
    one_click(app, ANN)
    assert deliver(app, clock) == DeliveryStats(attempted=1, delivered=1)  # at the fixed time
    one_click(app, BOB)
    [old, new] = outbox(app)
    assert datetime.now(clock.now.tzinfo) - clock.now > timedelta(days=31)

    process = cli_webhooks.spawn_deliverer(0.1)
    try:
        assert wait_for(lambda: len(good.received) == 2 or process.poll() is not None, 60)
        assert wait_for(lambda: [row.id for row in outbox(app)] == [new.id], 30)
    finally:
        assert cli_webhooks.stop_deliverer(process, timeout=20) == 0
    assert old.id != new.id
