"""3,000 one-click unsubscribes through two gunicorn instances while things break.

One instance is SIGKILLed (master and workers) and started again mid-run; on
PostgreSQL the database server is also restarted mid-run (``-m immediate``:
every session is cut and the server runs crash recovery). The client retries
until each token gets a 200. Afterwards every token must have been counted
exactly once, and nothing but 200 and 503 may have been answered.

Why each outcome is right, for a token:

- Got a 200: the app commits before it answers (``web.context``), so the
  unsubscribe event is on disk: exactly one. Repeats of the POST (a retry after
  a reset, say) find the subscription already off and write nothing more.
- Never got a 200 (only errors; the test then fails on liveness as well): zero
  or one event, never two. Zero when every attempt failed before the commit or
  the commit failed. One when the commit reached the database but its answer
  did not reach the client: the server was SIGKILLed between the commit and the
  response (the client sees a reset), or the database was cut off right after
  writing the commit record and before acknowledging it (the app sees an error
  and answers 503; crash recovery keeps the commit). The app never answers 503
  for a commit it saw succeed.
- Two would mean a lost race or a replayed commit: always a bug.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.load.driver import EXPECTED_STATUSES, RETRIED_ERRORS, Fault, Run, run_load
from tests.load.processes import (
    LIST_NAME,
    Instance,
    Launcher,
    PostgresCluster,
    mint_tokens,
    run_cli,
    server_environment,
)

pytestmark = [pytest.mark.load, pytest.mark.slow]

TOKENS = 3000
#: New tokens a second: the run lasts about 20 s, so the faults land in its middle.
RATE = 150.0
#: Seconds the whole run may take, retries included, before the test fails.
DEADLINE = 150.0


@dataclass
class Backend:
    """A database for the servers, and how to restart it (None: not tested)."""

    url: str
    restart: Callable[[], None] | None
    logs: tuple[Path, ...] = ()


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Yield a private PostgreSQL cluster, or a SQLite file on a local temporary folder."""
    if request.param == "sqlite":
        yield Backend(f"sqlite:///{tmp_path / 'load.sqlite'}", None)
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    yield Backend(cluster.url, cluster.restart, (cluster.log_file,))


def unsubscribe_counts(database_url: str) -> dict[str, tuple[int, bool]]:
    """Return per subscriber public id: unsubscribe events, and whether still subscribed."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT s.public_id, "
                    "  (SELECT count(*) FROM event e "
                    "   WHERE e.subscriber_id = s.id AND e.kind = 'unsubscribe'), "
                    "  sub.subscribed "
                    "FROM subscriber s JOIN subscription sub ON sub.subscriber_id = s.id"
                )
            )
            return {public_id: (events, bool(on)) for public_id, events, on in rows}
    finally:
        engine.dispose()


@dataclass
class Verdict:
    """The run judged against the database: tokens by how they were counted."""

    run: Run
    #: Tokens with a 200 but not exactly one unsubscribe event, or still subscribed.
    lost: list[str]
    #: Tokens with more than one unsubscribe event.
    doubled: list[str]
    #: Tokens that never got a 200 (their events: 0 or 1, see the module docstring).
    unanswered: list[str]

    def report(self) -> str:
        """Say what happened, for the test's output and its failure messages."""
        run = self.run
        lines = [f"{len(run.attempts)} tokens in {run.seconds:.1f}s; outcomes of all attempts:"]
        lines += [f"  {outcome}: {n}" for outcome, n in sorted(run.statuses().items(), key=str)]
        lines += [
            f"  fault {f.name!r}: began at {f.began_at}, over at {f.ended_at}" for f in run.faults
        ]
        lines += [
            f"  lost {len(self.lost)}, doubled {len(self.doubled)}, "
            f"never answered 200 {len(self.unanswered)}"
        ]
        if run.aborted:
            lines.append(f"  client {run.aborted}")
        if run.fault_errors:
            lines.append(f"  faults failed: {run.fault_errors!r}")
        return "\n".join(lines)


def judge(run: Run, public_ids: dict[str, str], database_url: str) -> Verdict:
    """Compare every token's answers with its unsubscribe events in the database."""
    counts = unsubscribe_counts(database_url)
    succeeded = run.succeeded()
    return Verdict(
        run,
        lost=[
            t
            for t in succeeded
            if counts[public_ids[t]][0] != 1 or counts[public_ids[t]][1]  # 1 event, and off
        ],
        doubled=[t for t in public_ids if counts[public_ids[t]][0] > 1],
        unanswered=[t for t in public_ids if t not in succeeded],
    )


def assert_no_token_logged(tokens: list[str], logs: list[Path]) -> None:
    """Fail if any full token appears in any of the log files."""
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [token for token in tokens if token in text]
        assert not leaked, f"{len(leaked)} tokens in {path.name}, e.g. {leaked[0][:12]}…"


def restart_instance(instance: Instance) -> Callable[[], None]:
    def action() -> None:
        instance.kill()  # SIGKILL to the master and its workers at once
        instance.start()

    return action


def test_every_one_click_counts_once_through_kills_and_restarts(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    env = server_environment(backend.url, tmp_path / "instance")
    run_cli(env, "init")
    run_cli(env, "list", "create", LIST_NAME)
    began = time.monotonic()
    public_ids = mint_tokens(env, TOKENS)
    tokens = list(public_ids)
    assert len(set(public_ids.values())) == TOKENS
    minted = time.monotonic() - began

    a = launch("a", env)
    b = launch("b", env)
    faults = [Fault("SIGKILL instance b, start it again", 0.2, restart_instance(b))]
    if backend.restart is not None:
        faults.append(Fault("restart PostgreSQL -m immediate", 0.5, backend.restart))

    run = run_load([a.base_url, b.base_url], tokens, faults, rate=RATE, deadline=DEADLINE)
    verdict = judge(run, public_ids, backend.url)
    report = verdict.report()
    print(f"\nminted {TOKENS} tokens in {minted:.1f}s\n{report}")

    # None lost, none doubled.
    assert (len(verdict.lost), len(verdict.doubled)) == (0, 0), report
    # Only 200 and 503 were answered; the transport errors are the killed server's.
    statuses = run.statuses()
    assert {s for s in statuses if isinstance(s, int)} <= set(EXPECTED_STATUSES), report
    assert {s for s in statuses if isinstance(s, str)} <= set(RETRIED_ERRORS), report
    # Each fault ran, and was over while tokens were still being posted: it hit a live run.
    assert not run.fault_errors, report
    assert b.starts == 2, report
    assert all(f.ended_at is not None and f.ended_at < TOKENS for f in run.faults), report
    # Liveness: with retries spanning far longer than any outage, every token got through.
    assert not verdict.unanswered, report

    # No full token in what the deploy config logs (nor in the database's log).
    server_logs = [path for instance in (a, b) for path in instance.log_files]
    access_lines = sum(
        1
        for path in server_logs
        for line in path.read_text(errors="replace").splitlines()
        if "POST /u/" in line and " 200 " in line
    )
    # Every 200 was logged, but for the few in flight when b was killed.
    assert access_lines >= TOKENS - 32, f"the access log was not captured: {access_lines} lines"
    assert_no_token_logged(tokens, server_logs + list(backend.logs))
