"""The suppression feed: every change exactly once across pages, while changes keep arriving."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient
from tests.helpers import make_list, transaction
from unsubsvc.db.models import Event
from unsubsvc.services import lists, senders
from unsubsvc.web.context import runtime_of


def test_feed_lists_changes_with_their_scope(app: Flask, api: ApiClient) -> None:
    make_list(app)
    api.post("/lists/news/recipients/a@example.com/unsubscribe", {"campaign": "c1"})
    api.post("/lists/news/recipients/b@example.com/unsubscribe", {"topic": "events"})
    api.post("/lists/news/recipients/a@example.com/resubscribe", {"reason": "form"})
    page = api.get("/suppressions?list=news").json
    assert [(c["email"], c["scope"], c["status"], c["topic"]) for c in page["changes"]] == [
        ("a@example.com", "list", "unsubscribed", None),
        ("b@example.com", "topic", "unsubscribed", "events"),
        ("a@example.com", "list", "subscribed", None),
    ]
    assert page["changes"][0]["campaign"] == "c1"
    assert page["has_more"] is False
    # Polling again from the cursor returns nothing new, and the same cursor.
    again = api.get(f"/suppressions?cursor={page['next_cursor']}").json
    assert again == {"changes": [], "next_cursor": page["next_cursor"], "has_more": False}


def test_feed_filters_by_list_and_time(app: Flask, api: ApiClient, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    make_list(app)
    make_list(app, "other")
    api.post("/lists/other/recipients/old@example.com/unsubscribe", {})
    clock.advance(hours=1)
    api.post("/lists/news/recipients/new@example.com/unsubscribe", {})
    since = (clock.now - timedelta(minutes=1)).isoformat()
    recent = api.get("/suppressions", query_string={"since": since}).json["changes"]
    assert [c["email"] for c in recent] == ["new@example.com"]
    other = api.get("/suppressions?list=other").json["changes"]
    assert [c["email"] for c in other] == ["old@example.com"]
    assert api.get("/suppressions?list=nope").status_code == 404
    assert api.get("/suppressions?cursor=abc").status_code == 400
    assert api.get("/suppressions?limit=0").status_code == 422
    assert api.get("/suppressions?since=yesterday").status_code == 422


def test_every_change_exactly_once_while_changes_keep_arriving(app: Flask, api: ApiClient) -> None:
    make_list(app)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        client = ApiClient(app.test_client(), api.key)
        try:
            for i in range(60):
                email = f"w{worker}-{i % 7}@example.com"
                action = "unsubscribe" if (i // 7) % 2 == 0 else "resubscribe"
                body = {} if action == "unsubscribe" else {"reason": "test"}
                response = client.post(f"/lists/news/recipients/{email}/{action}", body)
                assert response.status_code == 200, response.json
        except BaseException as exc:  # noqa: BLE001 - surfaced by the main thread
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in writers:
        thread.start()
    seen: list[int] = []
    cursor = ""
    while True:
        writing = any(t.is_alive() for t in writers)
        page = api.get("/suppressions", query_string={"cursor": cursor, "limit": 7}).json
        seen.extend(c["seq"] for c in page["changes"])
        cursor = page["next_cursor"]
        if not writing and not page["has_more"]:
            break
    for thread in writers:
        thread.join()
    stop.set()
    assert errors == []
    # One last poll after everything is committed finds nothing new.
    assert api.get("/suppressions", query_string={"cursor": cursor}).json["changes"] == []
    with transaction(app) as session:
        committed = list(
            session.scalars(
                sa.select(Event.id)
                .where(Event.kind.in_(["unsubscribe", "resubscribe"]))
                # The feed's order: feed_key on PostgreSQL (NULL on SQLite), then id.
                .order_by(sa.func.coalesce(Event.feed_key, 0), Event.id)
            )
        )
    assert len(committed) > 20
    assert seen == committed  # every change, once, in order


def test_changes_to_one_address_keep_their_order_when_transaction_ids_do_not(
    app: Flask, api: ApiClient
) -> None:
    """A transaction that got its id first but changes the address second sorts second.

    PostgreSQL hands out transaction ids in start order. Here ``early`` gets its id,
    ``late`` unsubscribes and commits, then ``early`` resubscribes: the feed must say
    unsubscribed, then subscribed (the address's real history), and must not show
    ``late``'s change while ``early``, with a smaller id, could still commit.
    """
    runtime = runtime_of(app)
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: ids follow commit order")
    make_list(app)
    now = runtime.clock()
    with runtime.unit_of_work() as session:
        news = lists.get_list(session, "news")
        keys = runtime.keyring
        senders.unsubscribe_address(session, news, "x@example.com", now=now, keyring=keys)
        senders.resubscribe_address(
            session, news, "x@example.com", now=now, keyring=keys, reason="test"
        )
    start = api.get("/suppressions").json["next_cursor"]

    early = runtime.session_factory()
    try:
        early.execute(sa.text("SELECT pg_current_xact_id()"))  # takes its id now
        with runtime.unit_of_work() as late:
            senders.unsubscribe_address(
                late, lists.get_list(late, "news"), "x@example.com", now=now, keyring=keys
            )
        held = api.get("/suppressions", query_string={"cursor": start}).json
        assert held["changes"] == []  # early may still commit below late's key
        assert held["next_cursor"] == start
        senders.resubscribe_address(
            early,
            lists.get_list(early, "news"),
            "x@example.com",
            now=now,
            keyring=keys,
            reason="test",
        )
        early.commit()
    finally:
        early.close()
    changes = api.get("/suppressions", query_string={"cursor": start}).json["changes"]
    assert [c["status"] for c in changes] == ["unsubscribed", "subscribed"]
