"""Benchmark the one-click path: token signing and verifying, and the RFC 8058 POST.

Not a test: it asserts nothing about speed. Every number is printed beside a
baseline measured in the same run, on the same machine, as a ratio; ratios
carry across machines and commits far better than the raw ops/s, which mostly
measure the machine.

    python bench/bench_oneclick.py [--iterations N] [--rounds R] [--database-url URL]

See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.append(str(ROOT))

DEFAULT_ITERATIONS = 1000
DEFAULT_ROUNDS = 5
#: A token round shorter than this is mostly timer and scheduler noise.
MIN_ROUND_SECONDS = 0.05
#: Requests sent before timing starts (templates compile, pools fill, caches warm).
WARMUP = 20
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
SECRET = "bench-secret-key-0123456789abcdef"
OLD_SECRET = "bench-old-secret-key-fedcba9876543210"
FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Measurement:
    """``ops`` operations took ``seconds``; compared against a baseline measurement."""

    name: str
    ops: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else float("inf")

    def ratio(self, baseline: Measurement) -> float:
        """Time per operation relative to the baseline's (2.0 = twice as slow)."""
        return baseline.per_second / self.per_second


@dataclass(frozen=True)
class Section:
    title: str
    baseline: Measurement
    rows: Sequence[Measurement]


def time_loop(func: Callable[[], object], n: int) -> float:
    """Return the seconds ``n`` calls of ``func`` take."""
    start = time.perf_counter()
    for _ in range(n):
        func()
    return time.perf_counter() - start


def best_of(name: str, func: Callable[[], object], n: int, rounds: int) -> Measurement:
    """Time ``rounds`` rounds of at least ``n`` calls and keep the fastest (least disturbed).

    A round is lengthened (doubling the calls) until it lasts MIN_ROUND_SECONDS:
    a round of a few hundred microseconds measures the timer and the scheduler.
    """
    func()  # warm up
    calls = n
    while time_loop(func, calls) < MIN_ROUND_SECONDS:
        calls *= 2
    return Measurement(name, calls, min(time_loop(func, calls) for _ in range(rounds)))


# --- (a) tokens -------------------------------------------------------------------


def bench_tokens(n: int, rounds: int) -> Section:
    from itsdangerous import TimestampSigner

    from unsubsvc.core.keys import Keyring
    from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner

    signer = TokenSigner(Keyring((SECRET,)))
    rotated = TokenSigner(Keyring((SECRET, OLD_SECRET)))  # newest first, as in UNSUBSVC_SECRET_KEY
    payload = TokenPayload(list_id=1, subscriber="AbCdEfGhIjKlMnOpQrStUv", campaign_id=42)
    token = signer.sign(Purpose.UNSUBSCRIBE, payload, now=FIXED_NOW)
    old_signer = TokenSigner(Keyring((OLD_SECRET,)))
    old_token = old_signer.sign(Purpose.UNSUBSCRIBE, payload, now=FIXED_NOW)
    if rotated.verify(Purpose.UNSUBSCRIBE, old_token) != payload:
        raise SystemExit("a token signed with the older key did not verify")
    # A link mailed before keys were derived per purpose: itsdangerous over the raw secret,
    # tried after both derived keys.
    legacy_token = (
        TimestampSigner(
            SECRET,
            salt=Purpose.UNSUBSCRIBE.salt,
            key_derivation="django-concat",
            digest_method=hashlib.sha256,
        )
        .sign(payload.encode())
        .decode()
    )
    if rotated.verify(Purpose.UNSUBSCRIBE, legacy_token) != payload:
        raise SystemExit("a legacy token did not verify")

    key = SECRET.encode()
    message = token.rpartition(".")[0].encode()  # what the signature covers
    baseline = best_of(
        "hmac.new(key, msg, sha256).digest()",
        lambda: hmac.new(key, message, hashlib.sha256).digest(),
        n,
        rounds,
    )
    rows = [
        best_of(
            "TokenSigner.sign",
            lambda: signer.sign(Purpose.UNSUBSCRIBE, payload, now=FIXED_NOW),
            n,
            rounds,
        ),
        best_of(
            "TokenSigner.verify",
            lambda: signer.verify(Purpose.UNSUBSCRIBE, token),
            n,
            rounds,
        ),
        best_of(
            "TokenSigner.verify, older key",
            lambda: rotated.verify(Purpose.UNSUBSCRIBE, old_token),
            n,
            rounds,
        ),
        best_of(
            "TokenSigner.verify, legacy token (raw secret)",
            lambda: rotated.verify(Purpose.UNSUBSCRIBE, legacy_token),
            n,
            rounds,
        ),
    ]
    return Section("tokens (baseline: one bare HMAC-SHA256)", baseline, rows)


# --- (b) one-click POST -----------------------------------------------------------


@contextmanager
def app_environment(workdir: Path, database_url: str) -> Iterator[None]:
    """Point UNSUBSVC_* at the benchmark's database and instance folder, then restore."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("UNSUBSVC_")}
    for name in saved:  # the developer's own settings must not leak in
        del os.environ[name]
    os.environ.update(
        {
            "UNSUBSVC_INSTANCE_PATH": str(workdir / "instance"),
            "UNSUBSVC_DATABASE_URL": database_url,
            "UNSUBSVC_SECRET_KEY": SECRET,
            "UNSUBSVC_BASE_URL": "https://unsub.example.com",
            "UNSUBSVC_ENV": "testing",
        }
    )
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("UNSUBSVC_")]:
            del os.environ[name]
        os.environ.update(saved)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """Yield ``url`` confined to a new, empty schema, dropped afterwards.

    The benchmark creates tables and rows; a schema of its own keeps them out of
    whatever else lives in that database.
    """
    import sqlalchemy as sa

    from unsubsvc.settings import normalize_database_url

    base = sa.make_url(normalize_database_url(url))
    schema = f"unsubsvc_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def bench_oneclick(n: int, workdir: Path, database_url: str) -> Section:
    import sqlalchemy as sa

    from unsubsvc.core.events import EventKind
    from unsubsvc.db.base import Base
    from unsubsvc.db.models import Event
    from unsubsvc.runtime import build_runtime
    from unsubsvc.services.links import recipient_links
    from unsubsvc.services.lists import create_list
    from unsubsvc.web.app import create_app

    with app_environment(workdir, database_url):
        runtime = build_runtime()
    app = create_app(runtime)
    try:
        Base.metadata.create_all(runtime.engine)
        with runtime.unit_of_work() as session:
            create_list(
                session,
                "bench",
                now=runtime.now(),
                display_name="Benchmark News",
                topics=("product", "events"),
                frequencies=("weekly", "monthly"),
            )
            paths = [
                urlsplit(
                    recipient_links(
                        session,
                        runtime.minter,
                        "bench",
                        f"recipient{i}@example.com",
                        now=runtime.now(),
                        campaign="bench-1",
                        keyring=runtime.keyring,
                    ).unsubscribe_url
                ).path
                for i in range(WARMUP + n)
            ]
        warmup, measured = paths[:WARMUP], paths[WARMUP:]

        client = app.test_client()
        failures: list[str] = []

        def get_health() -> None:
            response = client.get("/healthz")
            if response.status_code != 200:
                failures.append(f"GET /healthz -> {response.status_code}")

        def post(path: str) -> None:
            response = client.post(path, data=ONE_CLICK_BODY, content_type=FORM)
            if response.status_code != 200:
                failures.append(f"POST {path[:12]}... -> {response.status_code}")

        def run(name: str, calls: Sequence[Callable[[], None]]) -> Measurement:
            start = time.perf_counter()
            for call in calls:
                call()
            seconds = time.perf_counter() - start
            if failures:
                raise SystemExit(f"{name}: {len(failures)} failed, first: {failures[0]}")
            return Measurement(name, len(calls), seconds)

        for path in warmup:
            get_health()
            post(path)
            post(path)
        if failures:
            raise SystemExit(f"warm-up: {len(failures)} failed, first: {failures[0]}")

        def post_to(path: str) -> Callable[[], None]:
            return lambda: post(path)

        baseline = run("GET /healthz", [get_health] * n)
        first = run("POST /u/<token>, first (unsubscribes)", [post_to(p) for p in measured])
        repeat = run("POST /u/<token>, repeat (no-op)", [post_to(p) for p in measured])

        with runtime.unit_of_work() as session:
            events = session.scalar(
                sa.select(sa.func.count())
                .select_from(Event)
                .where(Event.kind == EventKind.UNSUBSCRIBE)
            )
        if events != WARMUP + n:
            raise SystemExit(f"expected {WARMUP + n} unsubscribe events, found {events}")
        return Section(
            "HTTP via the Flask test client (baseline: GET /healthz)", baseline, [first, repeat]
        )
    finally:
        runtime.dispose()


# --- report -----------------------------------------------------------------------


def render(sections: Sequence[Section]) -> str:
    width = max(len(m.name) for s in sections for m in (s.baseline, *s.rows)) + 2
    lines = [f"{'operation':<{width}}{'ops/s':>12}{'ratio':>10}"]
    for section in sections:
        lines.append("")
        lines.append(section.title)
        for m in (section.baseline, *section.rows):
            note = "  (baseline)" if m is section.baseline else ""
            lines.append(
                f"  {m.name:<{width - 2}}{m.per_second:>12,.0f}"
                f"{m.ratio(section.baseline):>9.2f}x{note}"
            )
    lines.append("")
    lines.append("ratio = time per operation / time per baseline operation (higher is slower)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help="operations per measurement, and recipients for the POSTs "
        f"(default {DEFAULT_ITERATIONS})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"token measurements keep the fastest of this many rounds (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--database-url",
        help="run the POSTs against this PostgreSQL database, in a throwaway schema "
        "(default: a temporary SQLite file)",
    )
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.rounds < 1:
        parser.error("--iterations and --rounds must be at least 1")
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql")):
        parser.error("--database-url takes a PostgreSQL URL; SQLite is the default")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    n = args.iterations
    print(
        f"unsubsvc one-click benchmark: {n} iterations, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, "
        f"database {'postgresql' if args.database_url else 'sqlite'}",
        flush=True,
    )
    sections = [bench_tokens(n, args.rounds)]
    with tempfile.TemporaryDirectory(prefix="unsubsvc-bench-") as tmp:
        workdir = Path(tmp)
        if args.database_url:
            with postgres_schema(args.database_url) as url:
                sections.append(bench_oneclick(n, workdir, url))
        else:
            sections.append(bench_oneclick(n, workdir, f"sqlite:///{workdir / 'bench.sqlite'}"))
    print(render(sections))


if __name__ == "__main__":
    main()
