"""Small builders and readers shared by the functional tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask

from unsubsvc.db.models import Base, Event, MailingList
from unsubsvc.services.links import RecipientLinks, recipient_links
from unsubsvc.services.lists import create_list
from unsubsvc.services.status import status_document
from unsubsvc.web import context
from unsubsvc.web.extensions import db


def make_list(
    app: Flask,
    name: str = "news",
    *,
    topics: Sequence[str] = ("product", "events"),
    frequencies: Sequence[str] = ("weekly", "monthly"),
    display_name: str | None = "News from Example",
) -> int:
    """Create a list and return its id."""
    with app.app_context():
        created: MailingList = create_list(
            db.session,
            name,
            now=context.now(),
            display_name=display_name,
            topics=topics,
            frequencies=frequencies,
        )
        return created.id


def links_for(
    app: Flask,
    email: str = "Ann@Example.com",
    *,
    list_name: str = "news",
    campaign: str | None = "c1",
    topic: str | None = None,
) -> RecipientLinks:
    """Mint a recipient's links as a sender would get them."""
    with app.app_context():
        return recipient_links(
            db.session,
            context.minter(),
            list_name,
            email,
            now=context.now(),
            campaign=campaign,
            topic=topic,
        )


def path_of(url: str) -> str:
    """Return the path of an absolute URL, for the test client."""
    return urlsplit(url).path


def status(app: Flask, email: str = "ann@example.com", list_name: str = "news") -> dict[str, Any]:
    with app.app_context():
        return status_document(db.session, list_name, email, now=context.now())


def events(app: Flask) -> list[dict[str, Any]]:
    """Return every event, oldest first, with its campaign's key."""
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT e.kind, e.channel, e.topic_id, c.key AS campaign, e.subscriber_id "
                "FROM event e LEFT JOIN campaign c ON c.id = e.campaign_id ORDER BY e.id"
            )
        )
        return [dict(row._mapping) for row in rows]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table, to prove a request changed nothing."""
    with app.app_context():
        out = {}
        for table in Base.metadata.sorted_tables:
            rows = db.session.execute(sa.select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
        return out


def count_events(app: Flask, kind: str = "unsubscribe") -> int:
    with app.app_context():
        return (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(Event).where(Event.kind == kind)
            )
            or 0
        )


def csrf_token(page_html: str) -> str:
    """Return the CSRF token a rendered form carries."""
    import re

    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page_html)
    if found is None:
        raise AssertionError("no CSRF token in the page")
    return found.group(1)


def event_rows(app: Flask) -> list[Event]:
    """Return every event as a model, oldest first."""
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Event).order_by(Event.id)))
        db.session.expunge_all()
        return rows
