"""The suppression policy: bounces and complaints from the API and ESPs, and how it ends."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask

from tests.conftest import ApiClient, FakeClock
from tests.helpers import make_list, runner_for, snapshot, transaction
from unsubsvc.core.esp_events import EspEvent, EspEventKind
from unsubsvc.services import esp_events
from unsubsvc.services.erasure import erase
from unsubsvc.services.status import status_document
from unsubsvc.web.context import runtime_of

ANN = "ann@example.com"


@pytest.fixture
def lists(app: Flask, api: ApiClient) -> None:
    """Lists news and other, ann on both."""
    for name in ("news", "other"):
        make_list(app, name)
        assert (
            api.post(f"/lists/{name}/headers", {"recipients": [{"email": ANN}]}).status_code == 200
        )


def reason(api: ApiClient, list_name: str = "news", email: str = ANN) -> str | None:
    answer = api.post(f"/lists/{list_name}/eligibility", {"emails": [email]})
    assert answer.status_code == 200
    excluded = {e["email"]: e["reason"] for e in answer.json["excluded"]}
    return excluded.get(email)


def bounce(api: ApiClient, kind: str = "hard", list_name: str = "news") -> None:
    answer = api.post(f"/lists/{list_name}/bounces", {"email": ANN, "type": kind})
    assert answer.status_code == 200, answer.json


def record(app: Flask, kind: EspEventKind, event_id: str, list_name: str | None = None) -> None:
    runtime = runtime_of(app)
    with transaction(app) as session:
        esp_events.record(
            session,
            EspEvent("ses", event_id, kind, ANN, list_name=list_name),
            settings=runtime.settings,
            keyring=runtime.keyring,
            now=runtime.now(),
        )


def test_api_hard_bounce_suppresses_until_bounce_clear(
    app: Flask, api: ApiClient, lists: None
) -> None:
    bounce(api)
    assert reason(api) == "bounced"
    assert reason(api, "other") is None  # the API names its list
    # Even transactional mail: the address does not take mail.
    answer = api.post("/lists/news/eligibility", {"emails": [ANN], "transactional": True})
    assert answer.json["excluded"] == [{"email": ANN, "reason": "bounced"}]
    result = runner_for(app).invoke(args=["bounce", "clear", "--email", ANN.upper()])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"email": ANN.upper(), "cleared": ["news"]}
    assert reason(api) is None
    assert api.get(f"/lists/news/recipients/{ANN}").json["suppressed"] is None


def test_bounce_clear_of_one_list(app: Flask, api: ApiClient, lists: None) -> None:
    record(app, EspEventKind.HARD_BOUNCE, "b1")  # no list: every list ann is on
    assert reason(api) == reason(api, "other") == "bounced"
    result = runner_for(app).invoke(args=["bounce", "clear", "--email", ANN, "--list", "other"])
    assert result.exit_code == 0, result.output
    assert reason(api, "other") is None
    assert reason(api) == "bounced"
    unknown = runner_for(app).invoke(args=["bounce", "clear", "--email", ANN, "--list", "nope"])
    assert unknown.exit_code != 0


def test_resubscribe_clears_a_bounce(app: Flask, api: ApiClient, lists: None) -> None:
    bounce(api)
    answer = api.post(
        f"/lists/news/recipients/{ANN}/resubscribe", {"reason": "fixed their mailbox"}
    )
    assert answer.status_code == 200
    assert answer.json["changed"] is True
    assert reason(api) is None


def test_soft_bounces_suppress_at_the_limit_within_the_window(
    app: Flask, api: ApiClient, lists: None, clock: FakeClock
) -> None:
    bounce(api, "soft")
    clock.advance(days=10)
    bounce(api, "soft")
    assert reason(api) is None  # 2 of 3
    clock.advance(days=5)  # the first one is now outside the 14 days
    bounce(api, "soft")
    assert reason(api) is None
    bounce(api, "soft")
    assert reason(api) == "bounced"


def test_soft_bounce_limit_is_configurable(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app(soft_bounce_limit=1, soft_bounce_window_days=1)
    make_list(app)
    record(app, EspEventKind.SOFT_BOUNCE, "s1", "news")
    with transaction(app) as session:
        runtime = runtime_of(app)
        document = status_document(session, "news", ANN, now=runtime.now(), keyring=runtime.keyring)
    assert document["suppressed"] == "bounced"


def test_earlier_soft_bounces_do_not_count_after_a_clear(
    app: Flask, api: ApiClient, lists: None
) -> None:
    for _ in range(3):
        bounce(api, "soft")
    assert reason(api) == "bounced"
    assert runner_for(app).invoke(args=["bounce", "clear", "--email", ANN]).exit_code == 0
    bounce(api, "soft")
    assert reason(api) is None


def test_complaint_suppresses_on_every_list(app: Flask, api: ApiClient, lists: None) -> None:
    answer = api.post("/lists/news/complaints", {"email": ANN})
    assert answer.status_code == 200
    assert reason(api) == reason(api, "other") == "unsubscribed"


def test_complaint_scope_list(make_app: Callable[..., Flask], clock: FakeClock) -> None:
    app = make_app(complaint_scope="list")
    for name in ("news", "other"):
        make_list(app, name)
    record(app, EspEventKind.COMPLAINT, "c1", "news")
    with transaction(app) as session:
        runtime = runtime_of(app)
        news = status_document(session, "news", ANN, now=runtime.now(), keyring=runtime.keyring)
        other = status_document(session, "other", ANN, now=runtime.now(), keyring=runtime.keyring)
    assert news["subscribed"] is False
    assert other["subscribed"] is True


def test_same_event_twice_is_recorded_once(app: Flask, api: ApiClient, lists: None) -> None:
    record(app, EspEventKind.SOFT_BOUNCE, "dup", "news")
    before = snapshot(app)
    record(app, EspEventKind.SOFT_BOUNCE, "dup", "news")
    assert snapshot(app) == before


def test_unknown_list_name_falls_back_to_the_address_lists(
    app: Flask, api: ApiClient, lists: None
) -> None:
    record(app, EspEventKind.UNSUBSCRIBE, "u1", "no-such-list")
    assert reason(api) == reason(api, "other") == "unsubscribed"


def test_erased_address_is_not_stored_again(app: Flask, api: ApiClient, lists: None) -> None:
    runtime = runtime_of(app)
    with transaction(app) as session:
        erase(session, runtime.keyring, ANN, now=runtime.now())
    before = {k: v for k, v in snapshot(app).items() if k != "esp_event_seen"}
    for number, kind in enumerate(EspEventKind):
        record(app, kind, f"e{number}", "news")
    after = {k: v for k, v in snapshot(app).items() if k != "esp_event_seen"}
    assert after == before


def test_feed_shows_bounce_suppression_and_its_clear(
    app: Flask, api: ApiClient, lists: None, clock: FakeClock
) -> None:
    bounce(api)
    clock.advance(minutes=1)
    assert runner_for(app).invoke(args=["bounce", "clear", "--email", ANN]).exit_code == 0
    changes = api.get("/suppressions?list=news").json["changes"]
    assert [(c["status"], c["reason"], c["channel"]) for c in changes] == [
        ("unsubscribed", "bounced", "api"),
        ("subscribed", None, "cli"),
    ]


def test_feed_names_complaints(app: Flask, api: ApiClient, lists: None) -> None:
    record(app, EspEventKind.COMPLAINT, "c1", "news")
    changes = api.get("/suppressions").json["changes"]
    assert {(c["list"], c["status"], c["reason"], c["channel"]) for c in changes} == {
        ("news", "unsubscribed", "complaint", "esp:ses"),
        ("other", "unsubscribed", "complaint", "esp:ses"),
    }
