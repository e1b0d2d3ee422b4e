"""Rotating an endpoint's secret: both secrets sign for the overlap, then only the new one.

Deliveries are checked with the reference library (``standardwebhooks``), which
reads the real clock: the fake clock is set to the real time before sending.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

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
    deliver_from,
    one_click,
    real_time,
)
from tests.helpers import CommandRunner, make_list, transaction
from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.keys import Keyring
from unsubsvc.core.secret_box import SecretBox, is_plaintext
from unsubsvc.core.webhooks import new_secret, verify
from unsubsvc.db.models import Webhook
from unsubsvc.services import webhooks as svc
from unsubsvc.services.webhooks import DeliveryStats
from unsubsvc.web.context import runtime_of


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose webhooks may reach the receivers on 127.0.0.1."""
    return make_app(webhook_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.running() as server:
        yield server


def rotate(app: Flask, webhook_id: int, overlap: timedelta) -> str:
    """Rotate the endpoint's secret under the app's keys; return the new secret."""
    rt = runtime_of(app)
    with transaction(app) as session:
        _, secret = svc.rotate_secret(
            session, webhook_id, now=rt.now(), keyring=rt.keyring, overlap=overlap
        )
        return secret


def stored(app: Flask, webhook_id: int) -> Webhook:
    with transaction(app) as session:
        hook = session.scalars(sa.select(Webhook).where(Webhook.id == webhook_id)).one()
        session.expunge(hook)
        return hook


def test_both_secrets_verify_during_the_overlap_and_only_the_new_one_after(
    app: Flask, clock: FakeClock, receiver: Receiver, runner: CommandRunner
) -> None:
    now = real_time(clock)
    make_list(app)
    hook_id, old = add_hook(app, receiver.url)

    # Rotated 24 h (the default overlap) less a minute ago: the old secret signs for a minute.
    clock.now = now - timedelta(hours=24) + timedelta(minutes=1)
    rotated = runner.invoke(args=["webhooks", "rotate", str(hook_id)])
    assert rotated.exit_code == 0, rotated.output
    printed = json.loads(rotated.stdout)
    new = printed["secret"]
    assert new.startswith("whsec_") and new != old
    assert printed["id"] == hook_id and printed["url"] == receiver.url
    until = now + timedelta(minutes=1)
    assert printed["previous_secret_until"] == until.isoformat()
    assert "not shown again" in rotated.stderr

    clock.now = now
    listed = json.loads(runner.invoke(args=["webhooks", "list"]).stdout)
    assert listed["previous_secret_until"] == until.isoformat()
    assert new not in json.dumps(listed) and old not in json.dumps(listed)

    one_click(app, ANN)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    [during] = receiver.received
    signatures = during.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(value.startswith("v1,") for value in signatures)
    assert during.verifies(new)
    assert during.verifies(old)  # a receiver that has not switched yet
    assert not during.verifies(new_secret())

    # Two minutes on (within the library's five-minute tolerance): the overlap is over.
    clock.now = now + timedelta(minutes=2)
    one_click(app, BOB)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    after = receiver.received[-1]
    assert after.doc["email"] == BOB
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert after.verifies(new)
    assert not after.verifies(old)
    assert "previous_secret_until" not in json.loads(
        runner.invoke(args=["webhooks", "list"]).stdout.splitlines()[0]
    )


def test_the_replaced_secret_is_stored_sealed(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    hook_id, old = add_hook(app, receiver.url)
    new = rotate(app, hook_id, timedelta(hours=24))
    hook = stored(app, hook_id)
    box = SecretBox.from_keyring(runtime_of(app).keyring)
    assert hook.previous_secret is not None and not is_plaintext(hook.previous_secret)
    assert old not in hook.previous_secret and new not in hook.secret
    assert box.open(hook.previous_secret) == old and box.open(hook.secret) == new
    assert hook.previous_secret_until == clock.now + timedelta(hours=24)


def test_an_overlap_of_zero_drops_the_old_secret_at_once(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    real_time(clock)
    make_list(app)
    hook_id, old = add_hook(app, receiver.url)
    new = rotate(app, hook_id, timedelta(0))
    hook = stored(app, hook_id)
    assert hook.previous_secret is None and hook.previous_secret_until is None

    one_click(app, ANN)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    [got] = receiver.received
    assert got.verifies(new) and not got.verifies(old)


def test_rotating_again_keeps_only_the_secret_it_replaces(
    app: Flask, clock: FakeClock, receiver: Receiver
) -> None:
    make_list(app)
    hook_id, first = add_hook(app, receiver.url)
    second = rotate(app, hook_id, timedelta(hours=24))
    third = rotate(app, hook_id, timedelta(hours=24))

    one_click(app, ANN)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    [got] = receiver.received
    at = int(clock.now.timestamp())  # the fake clock: checked with unsubsvc's own verify
    assert verify(third, got.header_dict, got.body, now=at)
    assert verify(second, got.header_dict, got.body, now=at)
    assert not verify(first, got.header_dict, got.body, now=at)


def test_rotate_refuses_an_unknown_endpoint_and_a_bad_overlap(
    app: Flask, runner: CommandRunner
) -> None:
    hook_id, _ = add_hook(app, "http://127.0.0.1:9/")
    with pytest.raises(NotFound):
        rotate(app, 999, timedelta(hours=1))
    for bad in (timedelta(seconds=-1), timedelta(days=31)):
        with pytest.raises(InvalidInput, match="overlap"):
            rotate(app, hook_id, bad)
    missing = runner.invoke(args=["webhooks", "rotate", "999"])
    assert missing.exit_code == 1 and "no webhook with id 999" in missing.output
    negative = runner.invoke(args=["webhooks", "rotate", str(hook_id), "--overlap", "-1"])
    assert negative.exit_code == 2
    zero = runner.invoke(args=["webhooks", "rotate", str(hook_id), "--overlap", "0"])
    assert zero.exit_code == 0, zero.output
    assert json.loads(zero.stdout)["previous_secret_until"] is None
    assert "stops signing now" in zero.stderr


def test_the_api_rotates_and_returns_the_new_secret_once(
    app: Flask, api: ApiClient, clock: FakeClock, receiver: Receiver
) -> None:
    real_time(clock)
    make_list(app)
    created = api.post("/webhooks", {"url": receiver.url})
    assert created.status_code == 201, created.json
    hook_id, old = created.json["id"], created.json["secret"]

    rotated = api.post(f"/webhooks/{hook_id}/rotate?overlap_hours=1.5")
    assert rotated.status_code == 200, rotated.json
    body = rotated.json
    assert set(body) == {"id", "url", "secret", "previous_secret_until"}
    assert body["id"] == hook_id and body["url"] == receiver.url
    new = body["secret"]
    assert new.startswith("whsec_") and new != old
    until = datetime.fromisoformat(body["previous_secret_until"])
    assert until == clock.now + timedelta(hours=1.5)
    listed = api.get("/webhooks").json
    assert new not in json.dumps(listed)
    [shown] = listed["webhooks"]
    assert datetime.fromisoformat(shown["previous_secret_until"]) == until

    one_click(app, CAROL)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    [got] = receiver.received
    assert got.verifies(new) and got.verifies(old)

    default = api.post(f"/webhooks/{hook_id}/rotate")
    assert default.status_code == 200, default.json
    until = datetime.fromisoformat(default.json["previous_secret_until"])
    assert until == clock.now + timedelta(hours=24)
    clock.advance(hours=24)  # the overlap has ended: the listing no longer names it
    assert api.get("/webhooks").json["webhooks"][0]["previous_secret_until"] is None
    dropped = api.post(f"/webhooks/{hook_id}/rotate?overlap_hours=0")
    assert dropped.json["previous_secret_until"] is None

    assert api.post("/webhooks/999/rotate").status_code == 404
    for bad in ("-1", "721", "soon"):
        assert api.post(f"/webhooks/{hook_id}/rotate?overlap_hours={bad}").status_code == 422
    assert api.post(f"/webhooks/{hook_id}/rotate?other=1").status_code == 422
    anonymous = api.client.post(f"/api/v1/webhooks/{hook_id}/rotate")
    assert anonymous.status_code == 401


def test_init_reseals_the_replaced_secret_too(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    old_key, new_key = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    app = make_app(secret_keys=(old_key,), webhook_allow_private=True)
    hook_id, first = add_hook(app, "http://127.0.0.1:9/")
    second = rotate(app, hook_id, timedelta(hours=24))

    rotated = make_app(tables=False, secret_keys=(new_key, old_key))
    keyring = runtime_of(rotated).keyring
    with transaction(rotated) as session:
        assert svc.encrypt_stored_secrets(session, keyring) == svc.ResealStats(2, 0)
    newest = SecretBox.from_keyring(Keyring((new_key,)))  # the old key could go now
    hook = stored(rotated, hook_id)
    assert hook.previous_secret is not None
    assert newest.open(hook.secret) == second and newest.open(hook.previous_secret) == first
