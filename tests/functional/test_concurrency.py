"""Mail clients retry, and a provider may POST the same link from several machines at once."""

from __future__ import annotations

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from tests.helpers import count_events, links_for, make_list, path_of, status, transaction

ONE_CLICK = b"List-Unsubscribe=One-Click"


def post(url: str) -> tuple[int, str | None, str | None]:
    request = urllib.request.Request(
        url,
        data=ONE_CLICK,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers.get("Set-Cookie"), response.headers.get("Location")


def test_twenty_concurrent_posts_of_one_token_unsubscribe_once(
    app: Flask, live_server: str
) -> None:
    make_list(app)
    url = live_server + path_of(links_for(app).unsubscribe_url)
    start = threading.Barrier(20)

    def hammer(_: int) -> tuple[int, str | None, str | None]:
        start.wait()
        return post(url)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(hammer, range(20)))

    assert answers == [(200, None, None)] * 20
    assert count_events(app) == 1
    assert status(app)["subscribed"] is False


def test_concurrent_first_contact_for_a_new_address_creates_one_subscriber(
    app: Flask,
) -> None:
    """Twenty sender threads asking headers for the same new address race on the insert."""
    import sqlalchemy as sa

    from unsubsvc.db.models import Subscriber

    make_list(app)
    start = threading.Barrier(10)

    def mint(_: int) -> str:
        start.wait()
        return links_for(app, "new.person@example.com").token

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = list(pool.map(mint, range(10)))

    with transaction(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 1
    # Every token names the same subscriber: the public id part is identical.
    assert len({t.split(".")[2] for t in tokens}) == 1
