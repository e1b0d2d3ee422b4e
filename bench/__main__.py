"""Run the benchmark suite and print one markdown table: ``python -m bench [--quick]``.

Every row is a ratio against a baseline measured in the same run: the HTTP
rows against a bare Flask app under the same gunicorn settings (A B A B A B,
medians of the pairs), header minting against a raw HMAC loop, the report at
1,000 campaigns against 10. See bench/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import apirow, httprows, inprocess
from bench.instance import DEFAULT_POSTGRES, instance
from bench.load import Load, wrk_binary
from bench.results import Result, render
from bench.servers import Server, gunicorn

HTTP_ROWS = ("post", "landing", "preferences")
SERVER_ROWS = (*HTTP_ROWS, "rss", "batch")
ROWS = (*SERVER_ROWS, "minting", "report")
RSS_LIMIT_MB = 80.0


def say(text: str) -> None:
    """Print progress to stderr, so stdout carries the table alone."""
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 s runs, one batch call, a 100,000-event report"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=ROWS,
        metavar="ROW",
        help=f"run only this row (repeatable): {', '.join(ROWS)}",
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL server to CREATE DATABASE on (dropped afterwards); "
        f"default $BENCH_POSTGRES_URL or {DEFAULT_POSTGRES}",
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per row (default 3)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("UNSUBSVC_WORKERS") or 2 * multiprocessing.cpu_count() + 1),
        help="gunicorn workers for both servers (default $UNSUBSVC_WORKERS or the config's "
        "2 x cores + 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("UNSUBSVC_THREADS") or 4),
        help="gunicorn threads per worker for both servers (default $UNSUBSVC_THREADS or 4)",
    )
    parser.add_argument(
        "--report-scale",
        type=float,
        help="fraction of the report's 1,000,000 events (default 1, quick 0.1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after each HTTP row, one more subject run under py-spy (not counted); "
        "prints the hottest functions, keeps bench/profile-<db>-<row>.txt",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.report_scale = args.report_scale or (0.1 if args.quick else 1.0)
    if min(args.connections, args.wrk_threads, args.pairs, args.workers, args.threads) < 1:
        parser.error("counts must be at least 1")
    if args.connections < args.wrk_threads:
        parser.error("--connections must be at least --wrk-threads")
    return args


def rss_result(database: str, subject: Server, bare: Server) -> Result:
    """Return the largest worker's resident memory, subject against bare."""
    ours, theirs = subject.worker_rss_mb(), bare.worker_rss_mb()
    largest = max(ours, default=0.0)
    return Result(
        row="RSS per worker (largest, after the load)",
        database=database,
        baseline=f"{max(theirs, default=0.0):.1f} MB",
        subject=f"{largest:.1f} MB",
        target=f"≤ {RSS_LIMIT_MB:.0f} MB",
        met=largest <= RSS_LIMIT_MB,
        notes=[f"VmRSS of {len(ours)} workers: " + ", ".join(f"{mb:.1f}" for mb in ours) + " MB"],
    )


def server_rows(
    args: argparse.Namespace, rows: Sequence[str], workdir: Path, load: Load
) -> list[Result]:
    """Run the rows that need servers: bare once, the subject once per database."""
    results: list[Result] = []
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    say(f"starting the bare baseline (bench.bare_app:app), {args.workers}x{args.threads}")
    with gunicorn(
        "bare", "bench.bare_app:app", workdir, env={}, workers=args.workers, threads=args.threads
    ) as bare:
        for database in databases:
            say(f"{database}: setting up a fresh instance")
            with (
                instance(database, workdir, args.postgres_url) as inst,
                gunicorn(
                    f"subject-{database}",
                    "wsgi:app",
                    workdir,
                    env=inst.env,
                    workers=args.workers,
                    threads=args.threads,
                ) as subject,
            ):
                supply = httprows.Supply(inst)
                for key in HTTP_ROWS:
                    if key not in rows:
                        continue
                    say(f"  {database}: {httprows.ROWS[key].title}")
                    started = time.monotonic()
                    results.append(
                        httprows.measure(
                            httprows.ROWS[key],
                            inst,
                            subject,
                            bare,
                            supply,
                            load,
                            pairs=args.pairs,
                            workdir=workdir,
                            profile=args.profile,
                            say=say,
                        )
                    )
                    say(f"    ({time.monotonic() - started:.0f} s with minting)")
                if "rss" in rows:
                    if not any(key in rows for key in HTTP_ROWS):
                        httprows.exercise(subject, bare, supply, load, workdir)
                    results.append(rss_result(database, subject, bare))
                if "batch" in rows:
                    say(f"  {database}: batch headers API")
                    results.extend(apirow.measure(inst, subject, 1 if args.quick else 3, say))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = args.only or list(ROWS)
    load = Load(threads=args.wrk_threads, connections=args.connections, seconds=args.duration)
    if any(key in rows for key in SERVER_ROWS):
        wrk_binary()
    say(
        f"unsubsvc benchmark: {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; gunicorn "
        f"{args.workers} workers x {args.threads} threads (deploy/gunicorn.conf.py); "
        f"wrk -t{load.threads} -c{load.connections} -d{load.seconds:g}s; {args.pairs} pairs"
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="unsubsvc-bench-") as tmp:
        workdir = Path(tmp)
        if any(key in rows for key in SERVER_ROWS):
            results += server_rows(args, rows, workdir, load)
        if "minting" in rows:
            say("header minting (in-process)")
            results.append(inprocess.minting(args.pairs, 0.2 if args.quick else 0.5))
        if "report" in rows:
            say("campaign report")
            results.append(inprocess.report(workdir, args.report_scale, 5, say))
    print()
    print(render(results))
    failed = [r for r in results if r.failures]
    if failed:
        print(f"\n{len(failed)} row(s) failed a correctness check", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
