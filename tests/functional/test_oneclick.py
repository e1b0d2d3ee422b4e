"""The URI in List-Unsubscribe, driven the way mail clients and people drive it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import count_events, events, links_for, make_list, path_of, snapshot, status

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def uri(app: Flask) -> str:
    make_list(app)
    return path_of(links_for(app).unsubscribe_url)


def post_urlencoded(client: FlaskClient, uri: str) -> TestResponse:
    return client.post(uri, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")


def post_multipart(client: FlaskClient, uri: str) -> TestResponse:
    return client.post(
        uri, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
    )


def post_empty(client: FlaskClient, uri: str) -> TestResponse:
    return client.post(uri)


@pytest.mark.parametrize(
    "send",
    [post_urlencoded, post_multipart, post_empty],
    ids=["urlencoded", "multipart", "no-body"],
)
def test_one_click_post_unsubscribes_like_a_mail_client(
    app: Flask, uri: str, send: Callable[[FlaskClient, str], TestResponse]
) -> None:
    client = app.test_client(use_cookies=False)

    response = send(client, uri)

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Location" not in response.headers
    assert status(app)["subscribed"] is False
    assert events(app) == [
        {
            "kind": "unsubscribe",
            "channel": "one_click",
            "topic_id": None,
            "campaign": "c1",
            "subscriber_id": events(app)[0]["subscriber_id"],
        }
    ]


def test_the_one_click_field_beside_other_fields_is_accepted(app: Flask, uri: str) -> None:
    """README: the field RFC 8058 §3.1 names is what counts; other fields beside it are ignored."""
    response = app.test_client().post(
        uri,
        data="List-Unsubscribe=One-Click&foo=bar",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert status(app)["subscribed"] is False


def test_raw_multipart_body_as_a_client_sends_it(app: Flask, uri: str) -> None:
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n"
        b"--XyZ--\r\n"
    )
    response = app.test_client(use_cookies=False).post(
        uri, data=body, content_type="multipart/form-data; boundary=XyZ"
    )
    assert response.status_code == 200
    assert status(app)["subscribed"] is False


def test_repeated_post_is_idempotent(app: Flask, uri: str) -> None:
    client = app.test_client(use_cookies=False)
    answers = [post_urlencoded(client, uri).status_code for _ in range(20)]
    assert answers == [200] * 20
    assert count_events(app) == 1
    assert status(app)["subscribed"] is False


def test_topic_token_unsubscribes_only_that_topic(app: Flask) -> None:
    make_list(app)
    uri = path_of(links_for(app, topic="events").unsubscribe_url)

    assert post_urlencoded(app.test_client(), uri).status_code == 200

    state = status(app)
    assert state["subscribed"] is True
    assert state["topics"] == {"product": True, "events": False}
    assert [e["topic_id"] is not None for e in events(app)] == [True]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("List-Unsubscribe=Nope", "application/x-www-form-urlencoded", 400),
        ("email=ann%40example.com", "application/x-www-form-urlencoded", 400),
        ("List-Unsubscribe=One-Click", "application/json", 415),
        ('{"List-Unsubscribe": "One-Click"}', "application/json", 415),
        ("unsubscribe me", "text/plain", 415),
    ],
    ids=["wrong-value", "other-field", "json-content-type", "json", "text"],
)
def test_wrong_body_is_refused_and_changes_nothing(
    app: Flask, uri: str, body: str, content_type: str, expected: int
) -> None:
    before = snapshot(app)
    response = app.test_client().post(uri, data=body, content_type=content_type)
    assert response.status_code == expected
    assert response.mimetype == "text/html"
    assert b"nothing was changed" in response.data
    assert snapshot(app) == before


def test_body_without_content_type_but_right_bytes_still_unsubscribes(app: Flask, uri: str) -> None:
    response = app.test_client().post(uri, data=ONE_CLICK.encode(), content_type="")
    assert response.status_code == 200
    assert status(app)["subscribed"] is False


def test_oversized_body_is_413_and_changes_nothing(app: Flask, uri: str) -> None:
    before = snapshot(app)
    big = ONE_CLICK + "&pad=" + "x" * (64 * 1024)
    response = app.test_client().post(
        uri, data=big, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert snapshot(app) == before


def test_oversized_multipart_upload_is_413(app: Flask, uri: str) -> None:
    data = {"List-Unsubscribe": "One-Click", "file": (io.BytesIO(b"x" * 70_000), "big.bin")}
    response = app.test_client().post(uri, data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    assert status(app)["subscribed"] is True


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(app: Flask, uri: str, method: str) -> None:
    before = snapshot(app)
    response = app.test_client().open(uri, method=method, data=ONE_CLICK)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert snapshot(app) == before


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_change_nothing(app: Flask, uri: str, method: str) -> None:
    before = snapshot(app)
    for _ in range(3):  # a scanner may fetch more than once
        response = app.test_client().open(uri, method=method)
        assert response.status_code == 200
    assert snapshot(app) == before
    assert status(app)["subscribed"] is True


def test_landing_page_explains_and_links_to_preferences(client: FlaskClient, uri: str) -> None:
    page = client.get(uri).get_data(as_text=True)
    assert "Unsubscribe from News from Example?" in page
    assert "all mail from News from Example" in page
    assert re.search(r'<form method="post" action="/u/[^"]+/confirm">', page)
    # The signed URI is the button's credential: no CSRF token, so no cookie is needed.
    assert 'name="csrf_token"' not in page
    assert re.search(r'href="https://unsub.example.com/p/[^"]+"', page)
    # The address is recognisable but not spelled out for whoever the link reaches.
    assert "Ann@Example.com" not in page
    assert "A•@Example.com" not in page and "A•" in page


def test_landing_page_button_unsubscribes_and_redirects(app: Flask, uri: str) -> None:
    app.config["WTF_CSRF_ENABLED"] = True  # as in production: the button still needs no token
    client = app.test_client(use_cookies=False)

    response = client.post(uri + "/confirm", data={})

    assert response.status_code == 303
    location = response.headers["Location"]
    assert "/unsubscribed?" in location and "undo=" in location and location.endswith("#status")
    assert "Set-Cookie" not in response.headers
    assert status(app)["subscribed"] is False
    assert [(e["kind"], e["channel"], e["campaign"]) for e in events(app)] == [
        ("unsubscribe", "landing_page", "c1")
    ]
    shown = client.get(location).get_data(as_text=True)
    assert "You are unsubscribed" in shown
    assert "Undo: resubscribe me" in shown
    # Coming back shows the current state instead of the button.
    again = client.get(uri).get_data(as_text=True)
    assert "You are unsubscribed" in again
    assert "/confirm" not in again


def test_pressing_the_button_again_changes_nothing_more(app: Flask, uri: str) -> None:
    client = app.test_client(use_cookies=False)
    client.post(uri + "/confirm")
    again = client.post(uri + "/confirm")
    assert again.status_code == 303
    assert "done=already" in again.headers["Location"]
    assert "undo=" not in again.headers["Location"]
    assert count_events(app) == 1


def test_confirm_is_post_only(client: FlaskClient, uri: str) -> None:
    assert client.get(uri + "/confirm").status_code == 405
