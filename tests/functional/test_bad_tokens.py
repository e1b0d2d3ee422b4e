"""Tokens that are not ours, or name something gone: a clear 4xx page, never a 5xx."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask

from tests.conftest import FakeClock
from tests.helpers import (
    count_events,
    events,
    links_for,
    make_list,
    path_of,
    snapshot,
    status,
    transaction,
)
from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner
from unsubsvc.web.context import runtime_of

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def token(app: Flask) -> str:
    make_list(app)
    return links_for(app).token


def flip(char: str) -> str:
    return "B" if char != "B" else "C"


def variants(token: str) -> dict[str, str]:
    payload_end = token.index(".", 2)
    return {
        "payload-char-changed": token[:2] + flip(token[2]) + token[3:],
        "signature-char-changed": token[:-5] + flip(token[-5]) + token[-4:],
        "last-char-changed": token[:-1] + flip(token[-1]),
        "cut-short": token[:-10],
        "cut-to-payload": token[:payload_end],
        "random-bytes": secrets.token_urlsafe(48),
        "junk-10kb": "x" * 10_000,
        "dots": "....",
        "other-key": TokenSigner(Keyring(("some-other-key",))).sign(
            Purpose.UNSUBSCRIBE, TokenPayload(1, "AAAAAAAAAAAAAAAA")
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "payload-char-changed",
        "signature-char-changed",
        "last-char-changed",
        "cut-short",
        "cut-to-payload",
        "random-bytes",
        "junk-10kb",
        "dots",
        "other-key",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_bad_token_is_400_with_a_message(app: Flask, token: str, kind: str, method: str) -> None:
    bad = variants(token)[kind]
    before = snapshot(app)
    response = app.test_client().open(
        f"/u/{bad}", method=method, data=ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )
    # Every variant fails the signature check: that is 400, never the 404 kept for
    # genuine tokens whose list or subscriber is gone (tested below).
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    if method != "HEAD":
        assert "not valid" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_preferences_token_is_not_an_unsubscribe_token(app: Flask) -> None:
    make_list(app)
    prefs_path = path_of(links_for(app).preferences_url)
    prefs_token = prefs_path.rsplit("/", 1)[1]
    response = app.test_client().post(f"/u/{prefs_token}", data=ONE_CLICK)
    assert response.status_code == 400
    assert status(app)["subscribed"] is True


def test_valid_token_for_unknown_subscriber_is_404(app: Flask) -> None:
    list_id = make_list(app)
    token = runtime_of(app).minter.signer.sign(
        Purpose.UNSUBSCRIBE, TokenPayload(list_id, "NoSuchSubscriber")
    )
    response = app.test_client().post(f"/u/{token}", data=ONE_CLICK)
    assert response.status_code == 404
    assert "no subscriber" in response.get_data(as_text=True)


@pytest.mark.parametrize("field", ["list_id", "topic_id", "campaign_id"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_valid_token_with_ids_beyond_the_integer_keys_is_404(
    app: Flask, field: str, method: str
) -> None:
    """PostgreSQL would refuse such an id ("integer out of range"): it names nothing."""
    list_id = make_list(app)
    subscriber = links_for(app).token.split(".")[2]
    big = 2**31
    payload = {
        "list_id": TokenPayload(big, subscriber),
        "topic_id": TokenPayload(list_id, subscriber, topic_id=big),
        "campaign_id": TokenPayload(list_id, subscriber, campaign_id=big),
    }[field]
    token = runtime_of(app).minter.signer.sign(Purpose.UNSUBSCRIBE, payload)
    response = app.test_client().open(f"/u/{token}", method=method, data=ONE_CLICK)
    assert response.status_code == 404
    assert count_events(app) == 0


def test_valid_token_for_deleted_list_is_404(app: Flask) -> None:
    make_list(app)
    token = links_for(app).token
    with transaction(app) as session:
        from sqlalchemy import text

        session.execute(text("DELETE FROM mailing_list"))
        session.commit()
    for method in ("GET", "POST"):
        assert app.test_client().open(f"/u/{token}", method=method).status_code == 404


def test_token_signed_with_the_previous_key_still_works(
    env: dict[str, str], make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_app = make_app()
    make_list(old_app)
    uri = path_of(links_for(old_app).unsubscribe_url)

    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "a-brand-new-key," + env["UNSUBSVC_SECRET_KEY"])
    rotated = make_app(tables=False)
    assert rotated.test_client().post(uri, data=ONE_CLICK).status_code == 200
    assert status(rotated)["subscribed"] is False

    # Once the old key is dropped, its tokens stop working.
    monkeypatch.setenv("UNSUBSVC_SECRET_KEY", "a-brand-new-key")
    dropped = make_app(tables=False)
    assert dropped.test_client().get(uri).status_code == 400


def test_link_from_a_year_old_message_still_unsubscribes(app: Flask, clock: FakeClock) -> None:
    make_list(app)
    clock.advance(days=-400)
    uri = path_of(links_for(app).unsubscribe_url)
    clock.advance(days=400)

    response = app.test_client().post(uri, data=ONE_CLICK)

    assert response.status_code == 200
    assert status(app)["subscribed"] is False
    assert len(events(app)) == 1


def test_configured_max_age_expires_old_links(
    app: Flask, make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    make_list(app)

    uri = path_of(links_for(app).unsubscribe_url)
    expiring = make_app(tables=False, token_max_age=3600)  # same database and keys
    clock.now += timedelta(hours=2)
    response = expiring.test_client().post(uri, data=ONE_CLICK)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert status(app)["subscribed"] is True
