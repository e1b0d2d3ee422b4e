"""A throwaway unsubsvc instance for the benchmark: database, list, API key, minted tokens.

Set up the way an operator would (``unsubsvc init``, ``unsubsvc list create``,
``unsubsvc apikey create`` through the CLI); tokens are minted in bulk in this
process through the project's own batch minter, as the headers API does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from unsubsvc.core.events import EventKind
from unsubsvc.db.models import Event, Subscriber
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.services.batch import MAX_BATCH, Recipient, batch_links
from unsubsvc.services.lists import get_list
from unsubsvc.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
#: Fixed, from `unsubsvc secret generate`: production mode refuses a weak key.
SECRET = "YKoaeY9pbwPQiSBczakzkAQ4FDJxa-oo7vbxQ-xx64pfXFyNjoR_fp78OrDhFLLy"
BASE_URL = "https://unsub.example.com"
LIST = "news"
CAMPAIGN = "bench-1"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Instance:
    """A database set up for unsubsvc, and what reaches it."""

    database: str  # "sqlite" or "postgresql"
    env: dict[str, str]  # UNSUBSVC_* for the server and the CLI
    runtime: Runtime  # in-process: minting and checking the database
    api_key: str


@dataclass(frozen=True)
class Tokens:
    """Recipients minted for one run: their addresses and their two paths, in order."""

    emails: list[str]
    unsubscribe_paths: list[str]
    preferences_paths: list[str]

    def write(self, path: Path, which: str) -> Path:
        """Write one path a line (``which``: "unsubscribe" or "preferences") and return the file."""
        lines = self.unsubscribe_paths if which == "unsubscribe" else self.preferences_paths
        path.write_text("\n".join(lines) + "\n")
        return path


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``unsubsvc ARGS`` in a child process with ``env``; return its standard output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UNSUBSVC_")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "unsubsvc.cli", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"unsubsvc {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """Yield the URL of a new, empty PostgreSQL database, dropped afterwards."""
    base = sa.make_url(admin_url)
    name = f"unsubsvc_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_url(kind: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """Yield a fresh database's URL: a SQLite file in ``workdir`` or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'unsubsvc.sqlite'}"
    else:
        with postgres_database(postgres_url) as url:
            yield url


@contextmanager
def instance(kind: str, workdir: Path, postgres_url: str = DEFAULT_POSTGRES) -> Iterator[Instance]:
    """Set up a fresh instance on ``kind`` ("sqlite" or "postgresql") and yield it."""
    folder = workdir / kind
    folder.mkdir(parents=True, exist_ok=True)
    with database_url(kind, folder, postgres_url) as url:
        env = {
            "UNSUBSVC_DATABASE_URL": url,
            "UNSUBSVC_SECRET_KEY": SECRET,
            "UNSUBSVC_BASE_URL": BASE_URL,
            "UNSUBSVC_INSTANCE_PATH": str(folder / "instance"),
            "UNSUBSVC_ENV": "production",
        }
        cli(env, "init")
        cli(env, "list", "create", LIST, "--topic", "events", "--frequency", "weekly",
            "--frequency", "monthly")  # fmt: skip
        key = cli(env, "apikey", "create", "bench").strip().splitlines()[-1]
        runtime = build_runtime(load_settings(environ=env))
        try:
            yield Instance(kind, env, runtime, key)
        finally:
            runtime.dispose()


def mint(inst: Instance, prefix: str, count: int) -> Tokens:
    """Mint ``count`` new recipients' links on the list, through the batch minter."""
    emails = [f"{prefix}-{i}@bench.example" for i in range(count)]
    unsubscribe: list[str] = []
    preferences: list[str] = []
    for start in range(0, count, MAX_BATCH):
        part = emails[start : start + MAX_BATCH]
        with inst.runtime.unit_of_work() as session:
            links = batch_links(
                session,
                inst.runtime.minter,
                get_list(session, LIST),
                [Recipient(email, campaign=CAMPAIGN) for email in part],
                now=inst.runtime.now(),
                keyring=inst.runtime.keyring,
            )
        minted = [link for link in links if link is not None]
        unsubscribe.extend(urlsplit(link.unsubscribe_url).path for link in minted)
        preferences.extend(urlsplit(link.preferences_url).path for link in minted)
    return Tokens(emails, unsubscribe, preferences)


def unsubscribe_events(inst: Instance, prefix: str) -> Counter[str]:
    """Return how many unsubscribe events each address starting with ``prefix`` has."""
    query: Any = (
        sa.select(Subscriber.email, sa.func.count())
        .join(Event, Event.subscriber_id == Subscriber.id)
        .where(Event.kind == EventKind.UNSUBSCRIBE.value, Subscriber.email.like(f"{prefix}%"))
        .group_by(Subscriber.email)
    )
    with inst.runtime.unit_of_work() as session:
        return Counter({email: n for email, n in session.execute(query)})


def count_subscribers(inst: Instance, emails: Sequence[str]) -> int:
    """Return how many of ``emails`` have a subscriber row."""
    found = 0
    with inst.runtime.unit_of_work() as session:
        for start in range(0, len(emails), 500):
            part = list(emails[start : start + 500])
            found += (
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Subscriber)
                    .where(Subscriber.email.in_(part))
                )
                or 0
            )
    return found
