"""How many SQL statements the hot paths send: a bound each, counted at the driver.

The preference center's GET used to read the recipient's state twice (ten
statements on SQLite); the batch headers call must stay bounded by its chunks,
not by its recipients. Each bound is what the code needs plus nothing, so a
regression that adds a round trip per request or per recipient fails here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine.interfaces import DBAPICursor

from tests.conftest import ApiClient
from tests.helpers import links_for, make_list, path_of
from unsubsvc.services.batch import CHUNK
from unsubsvc.web.context import runtime_of

#: Transaction control is not a query: SQLite's BEGIN is a statement, PostgreSQL's is implicit.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL the app's engine sends while the block runs, transaction control aside."""
    sent: list[str] = []

    def spy(conn: sa.Connection, cursor: DBAPICursor, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(CONTROL):
            sent.append(statement)

    engine = runtime_of(app).engine
    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)


def verbs(sent: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for statement in sent:
        verb = statement.lstrip().split(None, 1)[0].upper()
        counts[verb] = counts.get(verb, 0) + 1
    return counts


@pytest.fixture
def center_path(app: Flask) -> str:
    make_list(app)
    return path_of(links_for(app).preferences_url)


def test_center_page_reads_the_state_once(app: Flask, center_path: str) -> None:
    client = app.test_client()
    client.get(center_path)  # templates compiled, statement caches warm
    with statements(app) as sent:
        page = client.get(center_path)
    assert page.status_code == 200
    # The token's list, subscriber and subscription; the list's topics and frequencies;
    # the topic opt-outs; the list's brand logo (issue 11). The old view sent 9 (8 with the
    # one-SELECT token loader).
    assert len(sent) <= 5, sent
    assert verbs(sent) == {"SELECT": len(sent)}
    # One form, no CSRF token (the signed URI is the credential), no id twice.
    assert 'name="csrf_token"' not in page.text
    ids = re.findall(r' id="([^"]+)"', page.text)
    assert len(ids) == len(set(ids))


def test_unsubscribed_page_reads_the_answer_with_the_event(app: Flask, center_path: str) -> None:
    client = app.test_client()
    done = client.post(f"{center_path}/unsubscribe", data={"scope": "list"})
    assert done.status_code == 303
    with statements(app) as sent:
        again = client.get(center_path)
    assert "You are unsubscribed" in again.get_data(as_text=True)
    # Token loader, topics, frequencies, opt-outs, then the newest unsubscribe and its
    # survey answer in one SELECT (it was two, after the state was read twice); the brand logo.
    assert len(sent) <= 6, sent


@pytest.mark.parametrize("size", [300, 2_000], ids=["300", "2000"])
def test_batch_headers_are_bounded_by_chunks(app: Flask, api: ApiClient, size: int) -> None:
    make_list(app)
    body = {"campaign": "c1", "recipients": [{"email": f"P{i}@Example.com"} for i in range(size)]}
    chunks = math.ceil(size / CHUNK)

    with statements(app) as new:
        assert api.post("/lists/news/headers", body).status_code == 200
    with statements(app) as known:
        assert api.post("/lists/news/headers", body).status_code == 200

    # Fixed costs: the API key (read, and its last-used time), the list with its
    # frequencies and topics, the campaign (read, insert, read back); a call that
    # wrote adds its audit event (web/api/audit_trail.py).
    fixed = 9
    # New addresses: per chunk one read of erased addresses (by keyed hash), one read,
    # one INSERT ... RETURNING of subscribers and one INSERT of their subscriptions;
    # nothing read back (the old code read every chunk twice more: 28 statements for 2,000).
    assert len(new) <= fixed + 4 * chunks, verbs(new)
    assert verbs(new).get("INSERT", 0) <= 2 * chunks + 2
    # Known addresses: two reads per chunk (erased, known) and no write at all.
    assert len(known) <= fixed + 2 * chunks, verbs(known)
    assert set(verbs(known)) == {"SELECT"}
