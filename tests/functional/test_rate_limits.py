"""Rate limits: floods of bad tokens, passwords and API keys get 429; valid clicks never do."""

from __future__ import annotations

import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash
from werkzeug.test import TestResponse

from tests.conftest import ApiClient, FakeClock
from tests.functional.conftest import MintedLinks, mint_links_on
from tests.helpers import count_events, csrf_token, make_list
from unsubsvc.services import admin_users
from unsubsvc.services.admin_users import create_admin
from unsubsvc.web import limits
from unsubsvc.web.context import runtime_of

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
REDIS_URL = "redis://127.0.0.1:6379/0"
JUNK_PER_MINUTE = limits.BAD_TOKENS.items[0].amount


def unique_address() -> str:
    """Return a client address no other test (or concurrent run) counts under."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def from_address(client: FlaskClient, address: str) -> FlaskClient:
    client.environ_base["REMOTE_ADDR"] = address
    return client


def junk_path(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(60)}"


def retry_after(response: TestResponse | requests.Response) -> int:
    value = int(response.headers["Retry-After"])
    assert 1 <= value <= 3600
    return value


Mint = Callable[..., list[MintedLinks]]


@pytest.fixture
def valid_paths(app: Flask, mint_links: Mint) -> dict[str, str]:
    make_list(app)
    (links,) = mint_links(["ann@example.com"])
    return {"/u/": links.unsubscribe, "/p/": links.preferences}


@pytest.mark.parametrize("prefix", ["/u/", "/p/"], ids=["one-click", "center"])
def test_junk_token_flood_is_refused_but_a_valid_token_is_not(
    app: Flask, valid_paths: dict[str, str], prefix: str
) -> None:
    client = from_address(app.test_client(), "198.51.100.7")
    answers = []
    for _ in range(600):
        response = client.get(junk_path(prefix))
        answers.append(response.status_code)
        if response.status_code == 429:
            retry_after(response)
            assert response.mimetype == "text/html"
            assert b"Please wait" in response.data
        # Meanwhile the same address opens a genuine link, refused by no limit.
        if len(answers) % 100 == 0:
            assert client.get(valid_paths[prefix]).status_code == 200
    assert answers[:JUNK_PER_MINUTE] == [400] * JUNK_PER_MINUTE
    assert set(answers[JUNK_PER_MINUTE:]) == {429}
    # Another address is counted apart.
    other = from_address(app.test_client(), "198.51.100.8")
    assert other.get(junk_path(prefix)).status_code == 400


@pytest.mark.parametrize(
    "path",
    ["/u/{}", "/u/{}/confirm", "/p/{}", "/p/{}/survey", "/p/{}/undo"],
    ids=["one-click", "confirm", "save", "survey", "undo"],
)
def test_junk_posts_count_too(app: Flask, path: str) -> None:
    """POSTs with a junk token are counted alike, whatever form they imitate."""
    client = from_address(app.test_client(), "198.51.100.9")
    form = {"List-Unsubscribe": "One-Click", "topics": "product", "frequency": "normal"}
    answers = [
        client.post(path.format(secrets.token_urlsafe(40)), data=form)
        for _ in range(JUNK_PER_MINUTE + 5)
    ]
    statuses = [a.status_code for a in answers]
    assert statuses[:JUNK_PER_MINUTE] == [400] * JUNK_PER_MINUTE
    assert statuses[-5:] == [429] * 5
    assert all(retry_after(a) for a in answers[-5:])


def test_two_thousand_valid_one_clicks_from_one_address_all_succeed(
    app: Flask, mint_links: Mint
) -> None:
    """A provider's unsubscribe proxy: thousands of valid POSTs, stale links mixed in."""
    make_list(app)
    paths = [links.unsubscribe for links in mint_links([f"r{i}@example.com" for i in range(2000)])]
    client = from_address(app.test_client(use_cookies=False), "192.0.2.44")
    refused = []
    for i, path in enumerate(paths):
        if i % 10 == 0:  # 200 stale links: well past the junk limit for this address
            client.post(junk_path("/u/"), data=ONE_CLICK, content_type=FORM)
        response = client.post(path, data=ONE_CLICK, content_type=FORM)
        if response.status_code != 200:
            refused.append(response.status_code)
    assert refused == []
    assert client.post(junk_path("/u/"), data=ONE_CLICK, content_type=FORM).status_code == 429
    assert count_events(app) == 2000


def test_wrong_api_keys_are_throttled_and_a_valid_key_still_works(
    app: Flask, api: ApiClient
) -> None:
    client = from_address(app.test_client(), "203.0.113.20")
    limit = limits.API_KEY_FAILURES.items[0].amount
    answers = [
        client.get("/api/v1/lists", headers={"Authorization": f"Bearer usk_{i:012d}_" + "x" * 43})
        for i in range(limit + 10)
    ]
    assert [a.status_code for a in answers[:limit]] == [401] * limit
    for answer in answers[limit:]:
        assert answer.status_code == 429
        assert answer.json is not None and "invalid API key" in answer.json["error"]
        assert answer.headers["Cache-Control"] == "no-store"
        retry_after(answer)
    # The right key from the same address is not refused by the failure limit.
    assert client.get("/api/v1/lists", headers=api.headers).status_code == 200
    # A request with no key at all costs no lookup and is not counted: it is told to send one.
    assert client.get("/api/v1/lists").status_code == 401


@pytest.fixture
def admin(app: Flask, clock: FakeClock) -> tuple[str, str]:
    email, password = "ops@example.com", "correct horse battery staple 42"
    with runtime_of(app).unit_of_work() as session:
        create_admin(session, email, password, now=clock.now)
    return email, password


def sign_in_form(client: FlaskClient, email: str, password: str) -> dict[str, str]:
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return {"email": email, "password": password, "csrf_token": token}


def test_admin_sign_in_burst_gets_one_attempt(app: Flask, admin: tuple[str, str]) -> None:
    """A burst of 20 wrong passwords from one address costs one password check, not 20."""
    email, password = admin
    client = from_address(app.test_client(), "203.0.113.30")
    form = sign_in_form(client, email, "wrong")
    answers = [client.post("/admin/login", data=form) for _ in range(20)]
    assert answers[0].status_code != 429
    assert [a.status_code for a in answers[1:]] == [429] * 19
    assert all(1 <= retry_after(a) <= 2 for a in answers[1:])
    assert answers[-1].mimetype == "text/html"
    assert b"sign-in attempts" in answers[-1].data
    # Even the right password waits: the limit is checked before the password is.
    right = {**form, "password": password}
    assert client.post("/admin/login", data=right).status_code == 429
    # Another address signs in.
    other = from_address(app.test_client(), "203.0.113.31")
    assert other.post("/admin/login", data=sign_in_form(other, email, password)).status_code == 303


def test_admin_sign_in_five_a_minute_per_address(app: Flask, admin: tuple[str, str]) -> None:
    """Spaced past the burst rule, the sixth attempt in a minute is refused."""
    email, _ = admin
    client = from_address(app.test_client(), "203.0.113.32")
    form = sign_in_form(client, email, "wrong")
    statuses = []
    for _ in range(6):
        statuses.append(client.post("/admin/login", data=form).status_code)
        time.sleep(2.05)
    assert 429 not in statuses[:5]
    assert statuses[5] == 429


def test_admin_sign_in_flood_costs_one_password_check_beside_one_click(
    app: Flask,
    admin: tuple[str, str],
    live_server: str,
    mint_links: Mint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood is refused before any scrypt work, so one-click, served meanwhile, has the
    cores to itself: of 20 sign-in attempts only the first runs the KDF. (Counted, not
    timed: a latency ratio on a shared two-core machine says more about the machine.)"""
    make_list(app)
    checks: list[str] = []

    def counting_check(stored: str, password: str) -> bool:
        checks.append(password)
        return check_password_hash(stored, password)

    monkeypatch.setattr(admin_users, "check_password_hash", counting_check)
    minted = mint_links([f"lat{i}@example.com" for i in range(400)])
    urls = iter(live_server + links.unsubscribe for links in minted)
    mail_client = requests.Session()

    email, _ = admin
    flood_statuses: list[int] = []
    flood_client = requests.Session()
    page = flood_client.get(live_server + "/admin/login")
    token = csrf_token(page.text)
    # The base URL is https, so the cookie is Secure: requests would not send it over http.
    cookie = "; ".join(f"{c.name}={c.value}" for c in page.cookies)

    def flood() -> None:
        for i in range(20):
            response = flood_client.post(
                live_server + "/admin/login",
                data={"email": email, "password": f"guess-{i}", "csrf_token": token},
                headers={"Cookie": cookie},
            )
            flood_statuses.append(response.status_code)

    flooding = threading.Thread(target=flood)
    clicked: list[int] = []
    flooding.start()
    while flooding.is_alive() or len(clicked) < 20:
        response = mail_client.post(next(urls), data=ONE_CLICK, headers={"Content-Type": FORM})
        clicked.append(response.status_code)
    flooding.join()

    assert flood_statuses[0] != 429
    assert flood_statuses[1:] == [429] * 19
    assert checks == ["guess-0"]  # one scrypt for the whole flood
    assert clicked == [200] * len(clicked)
    assert count_events(app) == len(clicked)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (tests/run.sh starts it)")
    yield client
    client.close()


def test_servers_sharing_redis_share_the_count(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    first = make_app(ratelimit_storage_url=REDIS_URL)
    second = make_app(ratelimit_storage_url=REDIS_URL, tables=False)
    make_list(first)
    valid = mint_links_on(first, ["ann@example.com"])[0].unsubscribe
    address = unique_address()
    try:
        one = from_address(first.test_client(), address)
        two = from_address(second.test_client(), address)
        statuses = [one.get(junk_path("/u/")).status_code for _ in range(JUNK_PER_MINUTE)]
        assert statuses == [400] * JUNK_PER_MINUTE
        # The second server has seen nothing from this address itself, yet refuses.
        refused = two.get(junk_path("/u/"))
        assert refused.status_code == 429
        retry_after(refused)
        assert two.post(valid, data=ONE_CLICK, content_type=FORM).status_code == 200
        # A third app on memory:// (the default) counts on its own.
        assert make_app(tables=False).test_client().get(junk_path("/u/")).status_code == 400
    finally:
        for key in redis_client.scan_iter(match=f"unsubsvc*{address}*"):
            redis_client.delete(key)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_redis_fails_open(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(ratelimit_storage_url=f"redis://127.0.0.1:{closed_port()}/0")
    make_list(app)
    client = from_address(app.test_client(), "198.51.100.70")
    with caplog.at_level(logging.WARNING, logger=limits.__name__):
        junk = [client.get(junk_path("/u/")).status_code for _ in range(JUNK_PER_MINUTE + 3)]
        clicked = client.post(
            mint_links_on(app, ["ann@example.com"])[0].unsubscribe,
            data=ONE_CLICK,
            content_type=FORM,
        )
    assert clicked.status_code == 200
    assert count_events(app) == 1
    # Counting went on in this process's memory; the failure was logged, once.
    assert junk[:JUNK_PER_MINUTE] == [400] * JUNK_PER_MINUTE
    assert junk[JUNK_PER_MINUTE:] == [429] * 3
    failures = [r for r in caplog.records if "rate-limit storage" in r.getMessage()]
    assert len(failures) == 1
    assert re.search(r"redis://127\.0\.0\.1:\d+/0 failed", failures[0].getMessage())


def test_each_app_counts_apart(make_app: Callable[..., Flask]) -> None:
    """Apps built in one process (tests, several workers' preload) share no memory counts."""
    first, second = make_app(), make_app(tables=False)
    for _ in range(JUNK_PER_MINUTE):
        from_address(first.test_client(), "198.51.100.80").get(junk_path("/p/"))
    assert from_address(first.test_client(), "198.51.100.80").get("/p/x").status_code == 429
    assert from_address(second.test_client(), "198.51.100.80").get("/p/x").status_code == 400


def test_limits_can_be_switched_off_for_flooding_tests(app: Flask) -> None:
    app.config["RATELIMIT_ENABLED"] = False
    client = from_address(app.test_client(), "198.51.100.90")
    statuses = {client.get(junk_path("/u/")).status_code for _ in range(JUNK_PER_MINUTE + 5)}
    assert statuses == {400}


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a trusted proxy: ignored
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),  # the local nginx names the client
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # forged hops ignored
        ("::1", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:aa:bb:1::9", None, "2001:db8:aa:bb::/64"),
        ("::ffff:192.0.2.9", None, "192.0.2.9"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", None, "127.0.0.1"),
        (None, None, "unknown"),
    ],
    ids=[
        "direct",
        "direct-forged-header",
        "behind-nginx",
        "forged-hops",
        "ipv6-behind-nginx",
        "ipv6-per-64",
        "ipv4-mapped",
        "junk-header",
        "loopback",
        "no-peer",
    ],
)
def test_client_key(peer: str | None, forwarded_for: str | None, expected: str) -> None:
    assert limits.client_key(peer, forwarded_for) == expected
