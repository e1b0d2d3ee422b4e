"""Small builders and readers shared by the functional tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy.orm import Session

from unsubsvc.cli import cli
from unsubsvc.db.base import Base
from unsubsvc.db.models import Event, MailingList
from unsubsvc.runtime import Runtime
from unsubsvc.services.links import RecipientLinks, recipient_links
from unsubsvc.services.lists import create_list
from unsubsvc.services.status import status_document
from unsubsvc.web.context import runtime_of


class CommandRunner(CliRunner):
    """Click's runner for the ``unsubsvc`` group, on a given runtime (the app's, in tests)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__()
        self.runtime = runtime

    def invoke(  # type: ignore[override]
        self, cli_: click.Command | None = None, args: Any = None, **kwargs: Any
    ) -> Result:
        if self.runtime is not None:
            kwargs.setdefault("obj", self.runtime)
        return super().invoke(cli_ or cli, args, **kwargs)


def runner_for(app: Flask) -> CommandRunner:
    """Return a command runner that shares ``app``'s runtime (database, clock, keys)."""
    return CommandRunner(runtime_of(app))


@contextmanager
def transaction(app: Flask) -> Iterator[Session]:
    """Yield a session on ``app``'s database, committed at the end (as a request would)."""
    with runtime_of(app).unit_of_work() as session:
        yield session


def make_list(
    app: Flask,
    name: str = "news",
    *,
    topics: Sequence[str] = ("product", "events"),
    frequencies: Sequence[str] = ("weekly", "monthly"),
    display_name: str | None = "News from Example",
) -> int:
    """Create a list and return its id."""
    with transaction(app) as session:
        created: MailingList = create_list(
            session,
            name,
            now=runtime_of(app).now(),
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
    runtime = runtime_of(app)
    with transaction(app) as session:
        return recipient_links(
            session,
            runtime.minter,
            list_name,
            email,
            now=runtime.now(),
            keyring=runtime.keyring,
            campaign=campaign,
            topic=topic,
        )


def path_of(url: str) -> str:
    """Return the path of an absolute URL, for the test client."""
    return urlsplit(url).path


def status(app: Flask, email: str = "ann@example.com", list_name: str = "news") -> dict[str, Any]:
    with transaction(app) as session:
        runtime = runtime_of(app)
        return status_document(
            session, list_name, email, now=runtime.now(), keyring=runtime.keyring
        )


def events(app: Flask) -> list[dict[str, Any]]:
    """Return every event, oldest first, with its campaign's key."""
    with transaction(app) as session:
        rows = session.execute(
            sa.text(
                "SELECT e.kind, e.channel, e.topic_id, c.key AS campaign, e.subscriber_id "
                "FROM event e LEFT JOIN campaign c ON c.id = e.campaign_id ORDER BY e.id"
            )
        )
        return [dict(row._mapping) for row in rows]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table, to prove a request changed nothing."""
    with transaction(app) as session:
        out = {}
        for table in Base.metadata.sorted_tables:
            rows = session.execute(sa.select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in rows]
        return out


def count_events(app: Flask, kind: str = "unsubscribe") -> int:
    with transaction(app) as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.kind == kind))
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
    with transaction(app) as session:
        return list(session.scalars(sa.select(Event).order_by(Event.id)))


def sign_args(
    keyfile: Path,
    *extra: str,
    list_name: str | None = "news",
    campaign: str | None = None,
    algorithm: str | None = None,
    selector: str = "s1",
    domain: str = "example.com",
) -> list[str]:
    """``unsubsvc sign`` arguments: list, campaign, domain, selector, key, algorithm, ``extra``.

    ``list_name=None`` leaves --list to ``extra``; None for ``campaign`` or
    ``algorithm`` leaves the option out (the command's default).
    """
    args = ["sign"]
    if list_name is not None:
        args += ["--list", list_name]
    if campaign is not None:
        args += ["--campaign", campaign]
    args += ["--domain", domain, "--selector", selector, "--key", str(keyfile)]
    if algorithm is not None:
        args += ["--algorithm", algorithm]
    return [*args, *extra]
