"""Hypothesis over every token, form and API body parser: no 5xx, and nobody else's data moves.

Each test draws requests against one world (two subscribers, a list with
topics and cadences, a campaign, an admin) and diffs every table
(``Base.metadata.sorted_tables``) around each request:

- a junk, mutated or foreign token changes nothing;
- a genuine token changes only its holder's rows;
- any 4xx changes nothing (the request's unit of work rolls back);
- nothing answers 5xx (with TESTING, an unhandled exception propagates and fails too).

Every request comes from a client address of its own (``fresh_address``):
junk tokens and sign-ins are rate limited per address, and the limiter is
not what these tests are about. Bounded for CI by the ``unsubsvc-fuzz``
profile (tests/fuzz_strategies.py); schemathesis covers conforming API
bodies (test_openapi.py), these tests the non-conforming ones.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st
from itsdangerous import TimestampSigner
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.fuzz_strategies import (
    FUZZ,
    FilePart,
    Holder,
    changes,
    changes_not_of,
    field_text,
    file_parts,
    form_fields,
    fresh_address,
    json_values,
    junk_tokens,
    mutated,
    nested,
    snapshot,
    token_path,
)
from tests.helpers import csrf_token, links_for, make_list, path_of, transaction
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.services import admin_users

ONE_CLICK = "List-Unsubscribe=One-Click"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery"
FORM = "application/x-www-form-urlencoded"

# -- the world every example runs against -------------------------------------------------


@dataclass(frozen=True)
class World:
    """Ann holds the tokens under test; Bob must never be touched by them."""

    unsubscribe: str  # Ann's list unsubscribe token
    topic_unsubscribe: str  # Ann's unsubscribe token for one topic
    preferences: str  # Ann's preferences token
    bob_unsubscribe: str
    holder: Holder


def token_of(url: str) -> str:
    return path_of(url).rsplit("/", 1)[1]


@pytest.fixture
def world(app: Flask, clock: FakeClock) -> World:
    make_list(app)
    make_list(app, "other", topics=("misc",), frequencies=("daily",))
    ann = links_for(app, "ann@example.com", campaign="c1")
    ann_topic = links_for(app, "ann@example.com", campaign="c1", topic="product")
    bob = links_for(app, "bob@example.com", campaign="c1")
    bob_other = links_for(app, "bob@example.com", list_name="other", campaign=None)
    client = app.test_client()
    # Bob has a history of his own: one topic off, the other list left, a survey answer.
    bob_topic = links_for(app, "bob@example.com", campaign="c1", topic="events")
    for url in (bob_topic.unsubscribe_url, bob_other.unsubscribe_url):
        fresh_address(client)
        assert client.post(path_of(url), data=ONE_CLICK, content_type=FORM).status_code == 200
    with transaction(app) as session:
        admin_users.create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD, now=clock.now)
    state = snapshot(app)
    public_id = ann.token.split(".")[2]
    (ann_id,) = [r["id"] for r in state["subscriber"] if r["public_id"] == public_id]
    campaigns = frozenset(r["id"] for r in state["campaign"] if r["key"] == "c1")
    return World(
        unsubscribe=ann.token,
        topic_unsubscribe=ann_topic.token,
        preferences=token_of(ann.preferences_url),
        bob_unsubscribe=bob.token,
        holder=Holder(ann_id, campaigns),
    )


# -- sending a drawn request ----------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A request body as drawn: form pairs (maybe with file parts), or raw bytes."""

    encoding: str  # "none", "urlencoded", "multipart", or a raw content type
    pairs: tuple[tuple[str, str | FilePart], ...] = ()
    raw: bytes = b""

    def kwargs(self) -> dict[str, Any]:
        if self.encoding == "none":
            return {}
        if self.encoding == "urlencoded":
            text = urlencode([(k, v) for k, v in self.pairs if isinstance(v, str)])
            return {"data": text, "content_type": FORM}
        if self.encoding == "multipart":
            data = MultiDict(
                [
                    (k, (io.BytesIO(v.content), v.filename) if isinstance(v, FilePart) else v)
                    for k, v in self.pairs
                ]
            )
            # A dummy part keeps an all-empty form multipart (Werkzeug would send no body).
            data.add("_", "")
            return {"data": data, "content_type": "multipart/form-data"}
        return {"data": self.raw, "content_type": self.encoding or None}


RAW_TYPES = ["application/json", "text/plain", "application/xml", "", "multipart/form-data"]


def bodies(
    pairs: st.SearchStrategy[list[tuple[str, str]]], *, files: bool = False
) -> st.SearchStrategy[Body]:
    """Return bodies built from ``pairs``: each form encoding, or raw bytes of another type."""
    form_pairs = pairs
    if files:
        form_pairs = st.lists(
            st.tuples(st.sampled_from(["x"]), st.one_of(field_text, file_parts)), max_size=3
        ).flatmap(lambda extra: pairs.map(lambda p: p + extra))
    return st.one_of(
        st.just(Body("none")),
        st.builds(Body, st.just("urlencoded"), pairs.map(tuple)),
        st.builds(Body, st.just("multipart"), form_pairs.map(tuple)),
        st.builds(
            Body,
            st.sampled_from(RAW_TYPES),
            raw=st.one_of(
                st.binary(max_size=300),
                pairs.map(lambda p: urlencode(p).encode("utf-8", "surrogatepass")),
                st.integers(65_000, 70_000).map(lambda n: b"x" * n),
            ),
        ),
    )


def send(client: FlaskClient, method: str, path: str, body: Body) -> TestResponse:
    fresh_address(client)
    return client.open(path, method=method, **body.kwargs())


def assert_no_5xx(response: TestResponse) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]


# -- regressions: what the fuzz tests found -------------------------------------------------


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"], ids=["ipv4", "ipv6", "v4-mapped"]
)
def test_junk_token_from_any_kind_of_address_is_400(app: Flask, address: str) -> None:
    """Found by test_junk_token_changes_nothing: counting a bad token for an IPv4 client
    asked an IPv4Address for ``ipv4_mapped`` (an IPv6-only attribute), a 500."""
    response = app.test_client().get("/u/junk", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 400


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_400(app: Flask, api: ApiClient, depth: int) -> None:
    """Found by test_api_bodies_no_5xx_and_4xx_changes_nothing: json.loads raises
    RecursionError (not ValueError) past its stack, which get_json(silent=True) lets through."""
    make_list(app)
    before = snapshot(app)
    response = api.client.post(
        "/api/v1/lists/news/recipients/ann@example.com/unsubscribe",
        data=nested(depth),
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code in {400, 422}
    assert changes(before, snapshot(app)) == {}


# -- 1. tokens -------------------------------------------------------------------------------

#: The preference center's posts, by the suffix after ``/p/<token>`` ("" is the one save form).
CENTER_POSTS = ["", "/unsubscribe", "/undo", "/resubscribe", "/survey"]
#: (method, prefix, suffix) of every route that takes a token.
TOKEN_ROUTES = [
    ("GET", "/u/", ""),
    ("HEAD", "/u/", ""),
    ("POST", "/u/", ""),
    ("POST", "/u/", "/confirm"),
    ("GET", "/p/", ""),
    *[("POST", "/p/", suffix) for suffix in CENTER_POSTS],
]
one_click_bodies = bodies(
    st.one_of(
        st.just([("List-Unsubscribe", "One-Click")]),
        form_fields(["List-Unsubscribe", "foo", "csrf_token"], ["One-Click", "Yes", ""]),
    ),
    files=True,
)


def token_request(
    client: FlaskClient, route: tuple[str, str, str], token: str, raw: bool, body: Body
) -> TestResponse:
    method, prefix, suffix = route
    return send(client, method, token_path(prefix, token, raw) + suffix, body)


@given(
    token=junk_tokens,
    raw=st.booleans(),
    route=st.sampled_from(TOKEN_ROUTES),
    body=one_click_bodies,
)
@FUZZ
def test_junk_token_changes_nothing(
    app: Flask, world: World, token: str, raw: bool, route: tuple[str, str, str], body: Body
) -> None:
    client = app.test_client()
    before = snapshot(app)
    response = token_request(client, route, token, raw, body)
    assert_no_5xx(response)
    # Not a success: a 4xx, or Werkzeug's 308 to the path without an empty segment
    # (a token of "%2F" makes "/u//").
    assert response.status_code >= 300
    assert changes(before, snapshot(app)) == {}


def foreign_tokens(world: World) -> st.SearchStrategy[tuple[str, str]]:
    """Return (prefix, token) pairs that are not a genuine token for that prefix."""
    subscriber = world.unsubscribe.split(".")[2]
    list_id = int(world.unsubscribe.split(".")[1], 36)
    genuine = [world.unsubscribe, world.topic_unsubscribe, world.preferences]
    return st.one_of(
        # A genuine token, changed.
        st.tuples(
            st.sampled_from(["/u/", "/p/"]),
            st.sampled_from(genuine).flatmap(mutated),
        ),
        # A genuine token of the other purpose.
        st.sampled_from(
            [
                ("/p/", world.unsubscribe),
                ("/p/", world.topic_unsubscribe),
                ("/u/", world.preferences),
            ]
        ),
        # Ann's payload signed by itsdangerous (as tokens are) with a key that is not ours.
        st.sampled_from(list(Purpose)).map(
            lambda p: (
                "/u/" if p is Purpose.UNSUBSCRIBE else "/p/",
                TimestampSigner(
                    "not-our-key",
                    salt=p.salt,
                    key_derivation="django-concat",
                    digest_method=hashlib.sha256,
                )
                .sign(TokenPayload(list_id, subscriber).encode())
                .decode(),
            )
        ),
    )


@given(data=st.data(), raw=st.booleans(), body=one_click_bodies)
@FUZZ
def test_mutated_or_foreign_token_changes_nothing(
    app: Flask, world: World, data: st.DataObject, raw: bool, body: Body
) -> None:
    prefix, token = data.draw(foreign_tokens(world), label="token")
    route = data.draw(st.sampled_from([r for r in TOKEN_ROUTES if r[1] == prefix]), label="route")
    client = app.test_client()
    before = snapshot(app)
    response = token_request(client, route, token, raw, body)
    assert_no_5xx(response)
    assert 400 <= response.status_code
    assert changes(before, snapshot(app)) == {}


def test_the_diff_sees_a_change_to_anyone_else(app: Flask, world: World) -> None:
    """The holder check can fail: Bob's unsubscribe is a change not of Ann, and only of Bob."""
    before = snapshot(app)
    client = app.test_client()
    fresh_address(client)
    assert (
        client.post(f"/u/{world.bob_unsubscribe}", data=ONE_CLICK, content_type=FORM).status_code
        == 200
    )
    after = snapshot(app)
    assert {"event", "subscription"} <= set(changes_not_of(world.holder, before, after))
    (bob,) = [r for r in after["subscriber"] if r["email"] == "bob@example.com"]
    assert changes_not_of(Holder(bob["id"], world.holder.campaign_ids), before, after) == {}


@given(
    route=st.sampled_from(TOKEN_ROUTES),
    which=st.sampled_from(["list", "topic"]),
    body=one_click_bodies,
)
@FUZZ
def test_genuine_token_changes_only_its_holder(
    app: Flask, world: World, route: tuple[str, str, str], which: str, body: Body
) -> None:
    token = (
        world.preferences
        if route[1] == "/p/"
        else (world.unsubscribe if which == "list" else world.topic_unsubscribe)
    )
    client = app.test_client()
    before = snapshot(app)
    response = token_request(client, route, token, False, body)
    assert_no_5xx(response)
    after = snapshot(app)
    assert changes_not_of(world.holder, before, after) == {}
    if response.status_code >= 400:
        assert changes(before, after) == {}


# -- 2. forms ---------------------------------------------------------------------------

#: Each form a recipient can post: (path under the token, the form's field names, choices).
RECIPIENT_FORMS: dict[str, tuple[str, list[str], list[str]]] = {
    "confirm": ("/u/{unsubscribe}/confirm", ["submit"], ["Unsubscribe"]),
    "save": (
        "/p/{preferences}",
        ["frequency", "topics", "pause"],
        ["weekly", "monthly", "daily", "product", "events", "misc", "none", "keep", "1m", "3m"],
    ),
    "undo": ("/p/{preferences}/undo", ["undo", "scope"], ["junk", "list", "all", "topic:misc"]),
    "unsubscribe": ("/p/{preferences}/unsubscribe", ["scope"], ["list", "all", "topic:product"]),
    "resubscribe": (
        "/p/{preferences}/resubscribe",
        ["scope"],
        ["list", "all", "topic:product", "topic:events", "topic:misc", "topic:", "bogus"],
    ),
    "survey": (
        "/p/{preferences}/survey",
        ["reason", "comment", "scope"],
        ["too_many", "not_relevant", "other", "list", "all", "topic:events"],
    ),
}


def with_csrf(client: FlaskClient, page: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Return the CSRF fields a post might carry: the page's valid token, junk, or none."""
    fresh_address(client)
    valid = csrf_token(client.get(page).get_data(as_text=True))
    return st.sampled_from([[("csrf_token", valid)], [], [("csrf_token", "junk")]])


@given(data=st.data(), name=st.sampled_from(sorted(RECIPIENT_FORMS)))
@FUZZ
def test_recipient_forms_change_only_the_holder(
    app: Flask, world: World, data: st.DataObject, name: str
) -> None:
    path, fields, choices = RECIPIENT_FORMS[name]
    # Recipient forms carry no CSRF token (their credential is the signed token in the
    # path, and they must work without cookies): a stray one is ignored.
    client = app.test_client(use_cookies=False)
    stray = data.draw(st.sampled_from([[], [("csrf_token", "junk")]]), label="csrf")
    body = data.draw(
        bodies(form_fields(fields, choices).map(lambda p: stray + p), files=False), label="body"
    )
    before = snapshot(app)
    response = send(client, "POST", path.format(**vars(world)), body)
    assert_no_5xx(response)
    after = snapshot(app)
    assert changes_not_of(world.holder, before, after) == {}
    if response.status_code >= 400:
        assert changes(before, after) == {}


#: Every text field of every form, by the path its form is posted to.
TEXT_FIELDS = [
    ("/u/{unsubscribe}", "List-Unsubscribe"),
    ("/u/{unsubscribe}/confirm", "submit"),
    ("/p/{preferences}", "frequency"),
    ("/p/{preferences}", "topics"),
    ("/p/{preferences}", "pause"),
    ("/p/{preferences}/undo", "undo"),
    ("/p/{preferences}/unsubscribe", "scope"),
    ("/p/{preferences}/resubscribe", "scope"),
    ("/p/{preferences}/survey", "reason"),
    ("/p/{preferences}/survey", "comment"),
    ("/p/{preferences}/survey", "scope"),
    ("/admin/login", "email"),
    ("/admin/login", "password"),
    ("/admin/lists/news/campaigns/c1/excuse", "reason"),
    ("/admin/lists/news/campaigns/c1/excuse", "details"),
    ("/admin/lists/news/campaigns/c1/excuse", "action"),
]
#: What the field would carry as text, so the file part is the only thing wrong.
GOOD_VALUES = {
    "List-Unsubscribe": "One-Click",
    "submit": "Send",
    "frequency": "monthly",
    "topics": "product",
    "pause": "1m",
    "undo": "junk",
    "scope": "list",
    "reason": "other",
    "comment": "hello",
    "email": ADMIN_EMAIL,
    "password": ADMIN_PASSWORD,
    "details": "a pivot",
    "action": "set",
}


@pytest.fixture
def signed_in(app: Flask, world: World) -> FlaskClient:
    """A client signed in to the console (for the excuse form)."""
    client = app.test_client()
    fresh_address(client)
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    fresh_address(client)
    response = client.post(
        "/admin/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    return client


@pytest.fixture
def form_clients(app: Flask, world: World, signed_in: FlaskClient) -> dict[str, Any]:
    """Return, per form family, a client and a valid CSRF token of its session."""

    def token(client: FlaskClient, page: str) -> tuple[FlaskClient, str]:
        fresh_address(client)
        return client, csrf_token(client.get(page).get_data(as_text=True))

    return {
        "/admin/lists": token(signed_in, "/admin/lists/news/campaigns/c1"),
        "/admin/login": token(app.test_client(), "/admin/login"),
        "/": (app.test_client(use_cookies=False), ""),  # recipient forms: no CSRF token
    }


@given(field=st.sampled_from(TEXT_FIELDS), part=file_parts)
@example(field=("/p/{preferences}/survey", "comment"), part=FilePart(b"x", "a.txt"))
@FUZZ
def test_file_part_in_any_text_field_is_400(
    app: Flask, world: World, form_clients: dict[str, Any], field: tuple[str, str], part: FilePart
) -> None:
    """A file where a form expects text is a malformed form: 400, and nothing changes."""
    path, name = field
    family = next(prefix for prefix in form_clients if path.startswith(prefix))
    client, token = form_clients[family]
    pairs: list[tuple[str, str | FilePart]] = [("csrf_token", token)] if token else []
    pairs += [(key, value) for key, value in GOOD_VALUES.items() if key != name]
    pairs.append((name, part))
    before = snapshot(app)
    response = send(client, "POST", path.format(**vars(world)), Body("multipart", tuple(pairs)))
    assert response.status_code == 400, (path, name, response.status_code)
    assert changes(before, snapshot(app)) == {}


@given(data=st.data())
@FUZZ
def test_admin_login_form(app: Flask, world: World, data: st.DataObject) -> None:
    """Sign-in: no 5xx; a 4xx changes nothing; otherwise only admin rows move."""
    client = app.test_client()
    csrf = data.draw(with_csrf(client, "/admin/login"), label="csrf")
    fields = form_fields(
        ["email", "password", "submit", "next"],
        [ADMIN_EMAIL, ADMIN_PASSWORD, "ROOT@EXAMPLE.COM", "nobody@example.com"],
    )
    body = data.draw(bodies(fields.map(lambda p: csrf + p)), label="body")
    before = snapshot(app)
    response = send(client, "POST", "/admin/login", body)
    assert_no_5xx(response)
    changed = changes(before, snapshot(app))
    if response.status_code >= 400:
        assert changed == {}
    assert set(changed) <= {"admin_user", "admin_session", "audit_event"}


@given(data=st.data(), campaign=st.one_of(st.just("c1"), st.text(min_size=1, max_size=30)))
@FUZZ
def test_admin_excuse_form(
    app: Flask, world: World, signed_in: FlaskClient, data: st.DataObject, campaign: str
) -> None:
    """The excuse form: no 5xx; a 4xx changes nothing; otherwise only the campaign's excuse."""
    from urllib.parse import quote

    csrf = data.draw(with_csrf(signed_in, "/admin/lists/news/campaigns/c1"), label="csrf")
    fields = form_fields(
        ["action", "reason", "details"],
        ["set", "clear", "pivot", "other", "acquired", "sunset", "seasonal", "pause"],
    )
    body = data.draw(bodies(fields.map(lambda p: csrf + p)), label="body")
    path = f"/admin/lists/news/campaigns/{quote(campaign, safe='')}/excuse"
    before = snapshot(app)
    response = send(signed_in, "POST", path, body)
    assert_no_5xx(response)
    changed = changes(before, snapshot(app))
    if response.status_code >= 400:
        assert changed == {}
    assert set(changed) <= {"campaign", "admin_session", "audit_event"}


# -- 3. API bodies ---------------------------------------------------------------------------


def body_operations(app: Flask) -> list[tuple[str, str]]:
    """Return (method, path) of every operation in the OpenAPI document that takes a body."""
    document = app.test_client().get("/api/v1/openapi.json").json
    assert document is not None
    found = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(found) >= 8  # every POST with a JSON body
    return found


def fill(path: str) -> str:
    return path.format(name="news", email="ann@example.com", campaign="c1", webhook_id=1)


#: Bodies no JSON schema describes: not JSON, deep, huge numbers, NaN spelled out.
raw_json_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b'{"count": NaN}',
            b'{"count": Infinity}',
            b'{"count": 1e400}',
            b'{"count": 9223372036854775808}',
            b'{"count": -1}',
            b'{"email": "ann@example.com", "campaign": 1e308}',
            b'{"reason": "\xff\xfe"}',
            b'{"a": 1, "a": 2}',
            b"\xef\xbb\xbf{}",
            nested(50).encode(),
        ]
    ),
    st.integers(1_000, 200_000).map(lambda depth: nested(depth).encode()),
)
api_content_types = st.sampled_from(
    ["application/json", "application/json; charset=latin-1", "text/plain", FORM, ""]
)


@given(data=st.data(), body=raw_json_bodies, content_type=api_content_types)
@example(data=None, body=nested(100_000).encode(), content_type="application/json")
@FUZZ
def test_api_bodies_no_5xx_and_4xx_changes_nothing(
    app: Flask,
    world: World,
    api: ApiClient,
    data: st.DataObject | None,
    body: bytes,
    content_type: str,
) -> None:
    operations = body_operations(app)
    method, path = (
        data.draw(st.sampled_from(operations), label="operation")
        if data
        else (
            "POST",
            "/api/v1/lists/{name}/recipients/{email}/unsubscribe",
        )
    )
    before = snapshot(app)
    fresh_address(api.client)
    response = api.client.open(
        fill(path), method=method, data=body, content_type=content_type or None, headers=api.headers
    )
    assert_no_5xx(response)
    if response.status_code >= 400:
        assert changes(before, snapshot(app)) == {}


@given(data=st.data(), value=json_values)
@FUZZ
def test_api_fields_of_any_type(
    app: Flask, world: World, api: ApiClient, data: st.DataObject, value: Any
) -> None:
    """Each documented field given any JSON value: no 5xx, and a 4xx changes nothing."""
    document = api.get("/openapi.json").json
    operations = body_operations(app)
    method, path = data.draw(st.sampled_from(operations), label="operation")
    schema = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    ref = schema["schema"]["$ref"].rsplit("/", 1)[1]
    fields = sorted(document["components"]["schemas"][ref]["properties"])
    body = data.draw(
        st.dictionaries(st.sampled_from(fields), st.just(value) | json_values, max_size=4),
        label="body",
    )
    before = snapshot(app)
    fresh_address(api.client)
    response = api.client.open(fill(path), method=method, json=body, headers=api.headers)
    assert_no_5xx(response)
    if response.status_code >= 400:
        assert changes(before, snapshot(app)) == {}
