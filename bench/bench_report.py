"""Benchmark: a full campaign report must cost O(campaigns), not O(events).

Builds three SQLite databases with the demo-history generator:

  A  10 campaigns    x 1,000 events  =     10,000 events   (the baseline)
  B  1,000 campaigns x 1,000 events  =  1,000,000 events
  C  1,000 campaigns x    10 events  =     10,000 events

and times ``services.reports.campaign_report`` on each (best of --rounds).
B/A shows the cost growing with campaigns (~100x campaigns); B/C shows it does
not grow with events (the same campaigns, 100x the events: ~1x). For contrast
it also times a recount from the event log over B, which is what a report
without counters would have to do. Never asserts on time; prints ratios.

    .venv/bin/python bench/bench_report.py            # about a minute or two
    .venv/bin/python bench/bench_report.py --scale 0.1  # 100k events in B, quicker
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Database:
    """A built database: the runtime to reach it, and how many events it holds."""

    runtime: Any
    events: int


def build(workdir: Path, name: str, campaigns: int, events: int, recipients: int) -> Database:
    """Return a database holding the given history."""
    from unsubsvc.db.base import Base
    from unsubsvc.runtime import build_runtime
    from unsubsvc.services.demo_data import generate_history
    from unsubsvc.services.lists import create_list
    from unsubsvc.settings import load_settings

    # Settings from this mapping alone: neither the caller's UNSUBSVC_* nor a .env leaks in,
    # and nothing is left behind in os.environ for whatever runs next in this process.
    environ = {
        "UNSUBSVC_INSTANCE_PATH": str(workdir / name),
        "UNSUBSVC_DATABASE_URL": f"sqlite:///{workdir / name}.sqlite",
        "UNSUBSVC_SECRET_KEY": "bench-key",
    }
    runtime = build_runtime(load_settings(environ=environ), clock=lambda: NOW)
    Base.metadata.create_all(runtime.engine)
    # One unit of work, as the demo command does: the services flush, this commits.
    with runtime.unit_of_work() as session:
        made = create_list(
            session, "news", now=NOW, topics=("product", "events"), frequencies=("weekly",)
        )
        started = time.perf_counter()
        size = generate_history(
            session,
            made,
            campaigns=campaigns,
            recipients=recipients,
            now=NOW,
            events_per_campaign=events,
        )
    print(
        f"  built {name}: {size.campaigns:,} campaigns, {size.events:,} events "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return Database(runtime, size.events)


def best_of(rounds: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def report_time(database: Database, rounds: int) -> tuple[float, int]:
    from unsubsvc.services.reports import campaign_report

    with database.runtime.unit_of_work() as session:
        rows = campaign_report(session)
        return best_of(rounds, lambda: campaign_report(session)), len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of B's events")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    per_campaign = max(1, round(1000 * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("building databases (not timed in the results)")
        a = build(work, "A", 10, per_campaign, 20_000)
        b = build(work, "B", 1000, per_campaign, 20_000)
        c = build(work, "C", 1000, 10, 20_000)
        print()
        t_a, n_a = report_time(a, args.rounds)
        t_b, n_b = report_time(b, args.rounds)
        t_c, n_c = report_time(c, args.rounds)
        events_b = b.events
        from unsubsvc.services.counters import recount

        with b.runtime.unit_of_work() as session:
            t_recount = best_of(max(1, args.rounds // 2), lambda: recount(session))
        rows = [
            ("A report: 10 campaigns, small log (baseline)", t_a, t_a),
            (f"B report: {n_b:,} campaigns, {events_b:,} events", t_b, t_a),
            (f"C report: {n_c:,} campaigns, {c.events:,} events", t_c, t_a),
            ("B recount from the event log (no counters)", t_recount, t_a),
        ]
        print(f"{'measurement':58} {'seconds':>9} {'ratio to A':>11}")
        for label, seconds, base in rows:
            print(f"{label:58} {seconds:9.4f} {seconds / base:10.1f}x")
        print()
        print(f"B / C, same campaigns, 100x the events: {t_b / t_c:.2f}x (~1: events cost nothing)")
        print(f"B / A, 100x the campaigns:             {t_b / t_a:.1f}x (grows with campaigns)")
        print(f"recount / report over B:               {t_recount / t_b:.1f}x (what counters save)")
        del n_a


if __name__ == "__main__":
    main()
