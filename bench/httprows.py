"""The HTTP rows: the subject and the bare baseline under the same gunicorn settings, A B A B A B.

Every subject request carries a token minted for it and never used before;
afterwards the database must hold exactly one unsubscribe event for each
token a one-click POST acknowledged, none for a token never sent and never
two for one token.
"""

from __future__ import annotations

import secrets
import statistics
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import profiling
from bench.instance import Instance, mint, unsubscribe_events
from bench.load import Load, WrkResult, run_wrk
from bench.results import Result, ms, rate
from bench.servers import Server

ONE_CLICK = "List-Unsubscribe=One-Click"
#: Tokens minted per subject run: this many times the fastest rate seen so far, times the seconds.
HEADROOM = 2.0
#: Seconds of load on each server before the measured pairs (caches, pools, templates).
WARMUP_SECONDS = 1.0
#: Seconds to wait after the last run before checking (in-flight requests finish).
SETTLE_SECONDS = 1.0
#: Times a run that ran out of tokens is repeated with a larger supply.
RETRIES = 2


@dataclass(frozen=True)
class HttpRow:
    """One HTTP row: what is sent, to which kind of path, and the target ratio per database."""

    key: str
    title: str
    method: str
    body: str
    pool: str  # "post", "landing" or "preferences"
    targets: dict[str, float]


ROWS = {
    "post": HttpRow(
        "post",
        "one-click POST /u/<token>",
        "POST",
        ONE_CLICK,
        "post",
        {"sqlite": 0.5, "postgresql": 0.35},
    ),
    "landing": HttpRow(
        "landing",
        "landing GET /u/<token>",
        "GET",
        "",
        "landing",
        {"sqlite": 0.6, "postgresql": 0.6},
    ),
    "preferences": HttpRow(
        "preferences",
        "preference center GET /p/<token>",
        "GET",
        "",
        "preferences",
        {"sqlite": 0.5, "postgresql": 0.5},
    ),
}


class Supply:
    """Fresh tokens, minted on demand, each handed out once.

    A POST unsubscribes its recipient, so the POST row gets recipients of its
    own. The two GET rows change nothing and can share recipients: one takes a
    recipient's unsubscribe token, the other its preferences token (two
    different tokens, each still unused).
    """

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.pools: dict[str, deque[tuple[str, str]]] = {
            "post": deque(),
            "landing": deque(),
            "preferences": deque(),
        }
        self.batches = 0
        self.minted = 0

    def take(self, pool: str, count: int) -> list[tuple[str, str]]:
        """Return ``count`` unused (path, email) pairs for ``pool``, minting more if needed."""
        queue = self.pools[pool]
        if len(queue) < count:
            self.batches += 1
            prefix = f"{'post' if pool == 'post' else 'get'}{self.batches}"
            tokens = mint(self.inst, prefix, max(count - len(queue), 500))
            self.minted += len(tokens.emails)
            if pool == "post":
                queue.extend(zip(tokens.unsubscribe_paths, tokens.emails, strict=True))
            else:
                self.pools["landing"].extend(
                    zip(tokens.unsubscribe_paths, tokens.emails, strict=True)
                )
                self.pools["preferences"].extend(
                    zip(tokens.preferences_paths, tokens.emails, strict=True)
                )
        return [queue.popleft() for _ in range(count)]


@dataclass
class Ledger:
    """Every subject run of a row: which tokens it was given and what wrk reported."""

    runs: list[tuple[list[tuple[str, str]], WrkResult]] = field(default_factory=list)

    def sent_emails(self) -> tuple[set[str], set[str]]:
        """Return the recipients whose tokens were sent, and those given out but not sent."""
        sent: set[str] = set()
        given: set[str] = set()
        for pairs, result in self.runs:
            emails = [email for _, email in pairs]
            given.update(emails)
            sent.update(result.sent_lines(emails))
        return sent, given - sent

    def totals(self) -> tuple[int, int, int, int, int]:
        """Return (tokens given, tokens sent, answered, answered not 4xx/5xx, socket errors)."""
        given = sum(len(pairs) for pairs, _ in self.runs)
        sent = sum(r.sent for _, r in self.runs)
        answered = sum(r.requests - r.exhausted for _, r in self.runs)
        ok = sum(r.ok for _, r in self.runs)
        errors = sum(r.socket_errors for _, r in self.runs)
        return given, sent, answered, ok, errors


def fake_paths(workdir: Path, prefix: str, count: int = 20_000) -> Path:
    """Write random paths shaped like real tokens, for the baseline (which checks nothing)."""
    path = workdir / f"bare-{prefix.strip('/')}.txt"
    if not path.exists():
        tokens = (
            f"{prefix}1.1.{secrets.token_urlsafe(16)}..1.{secrets.token_urlsafe(4)}."
            f"{secrets.token_urlsafe(32)}"
            for _ in range(count)
        )
        path.write_text("\n".join(tokens) + "\n")
    return path


def probe(row: HttpRow, server: Server, supply: Supply) -> tuple[list[tuple[str, str]], str | None]:
    """Send the row's request once with a fresh token; return it and what went wrong, if anything.

    A subject that answers 500 would otherwise be measured for the whole row.
    """
    given = supply.take(row.pool, 1)
    path = given[0][0]
    request = urllib.request.Request(
        server.url + path,
        data=row.body.encode() if row.body else None,
        method=row.method,
        headers={"Content-Type": "application/x-www-form-urlencoded"} if row.body else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            if answer.status == 200:
                return given, None
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return given, f"probe failed: {exc}"
    return (
        given,
        f"the subject answered {status} to a probe; not measured. Server log:\n{server.log_tail()}",
    )


def verify(
    row: HttpRow, inst: Instance, ledger: Ledger, logged: Counter[tuple[str, str, int]]
) -> tuple[list[str], list[str]]:
    """Check the database against what wrk and the server's access log reported.

    Return (notes, failures). ``logged`` counts the subject's answers during the row.
    """
    notes: list[str] = []
    failures: list[str] = []
    prefix = "/p/" if row.pool == "preferences" else "/u/"
    answers = Counter(
        {
            status: n
            for (method, path, status), n in logged.items()
            if (method, path) == (row.method, prefix)
        }
    )
    server_ok = answers.pop(200, 0)
    if answers:
        failures.append(
            "the server answered "
            + ", ".join(f"{n:,} x {status}" for status, n in sorted(answers.items()))
        )
    given, sent, answered, ok, socket_errors = ledger.totals()
    sent_set, unsent = ledger.sent_emails()
    exhausted = sum(r.exhausted for _, r in ledger.runs)
    if len(sent_set) != sent:
        failures.append(f"{sent:,} tokens sent but only {len(sent_set):,} distinct: one was reused")
    if sent > given:
        failures.append(f"{sent:,} tokens sent from {given:,} minted")
    real_errors = sum(r.status for _, r in ledger.runs) - exhausted
    if real_errors > 0 and not answers:
        failures.append(f"wrk saw {real_errors:,} answers 4xx/5xx to real tokens")
    if socket_errors:
        notes.append(f"{socket_errors:,} socket errors or timeouts reported by wrk")
    if row.method == "POST":
        events = unsubscribe_events(inst, "post")
        twice = [email for email, n in events.items() if n > 1]
        stray = [email for email in events if email not in sent_set]
        total = sum(events.values())
        if twice:
            failures.append(f"{len(twice):,} tokens have two or more unsubscribe events")
        if stray:
            failures.append(f"{len(stray):,} tokens never sent have an unsubscribe event")
        if total != server_ok:
            failures.append(
                f"the server answered {server_ok:,} POSTs with 200 but wrote {total:,} "
                "unsubscribe events"
            )
        if ok > server_ok:
            failures.append(f"wrk counted {ok:,} answers 200, the server log {server_ok:,}")
        in_flight = sent - answered
        notes.append(
            f"verified: {server_ok:,} POSTs answered 200 (server log; wrk saw {ok:,}, "
            f"{in_flight} were in flight when it stopped) = {total:,} unsubscribe events, "
            f"{len(events):,} recipients, none twice; {sent:,} of {given:,} minted tokens "
            "sent, each once"
        )
    else:
        events = unsubscribe_events(inst, "get")
        if events:
            failures.append(f"GETs left {sum(events.values()):,} unsubscribe events")
        notes.append(
            f"verified: {server_ok:,} answers 200 (server log; wrk saw {ok:,}) to {sent:,} "
            f"distinct tokens of {given:,} minted, no unsubscribe event written"
        )
    if exhausted:
        notes.append(f"{exhausted:,} requests after a run ran out of tokens (run repeated)")
    return notes, failures


def measure(
    row: HttpRow,
    inst: Instance,
    subject: Server,
    bare: Server,
    supply: Supply,
    load: Load,
    *,
    pairs: int,
    workdir: Path,
    profile: bool,
    say: Callable[[str], None],
) -> Result:
    """Run the row's A/B pairs and return its table row."""
    ledger = Ledger()
    log_start = subject.log_size()
    prefix = "/p/" if row.pool == "preferences" else "/u/"
    bare_file = fake_paths(workdir, prefix)
    counter = iter(range(1_000_000))
    estimate = 0.0

    def subject_run(seconds: float) -> WrkResult:
        nonlocal estimate
        need = int(estimate * seconds * HEADROOM) + 500 if estimate else 3000
        for _ in range(RETRIES + 1):
            given = supply.take(row.pool, need)
            file = workdir / f"{inst.database}-{row.key}-{next(counter)}.txt"
            file.write_text("\n".join(path for path, _ in given) + "\n")
            result = run_wrk(
                subject.url, file, load, method=row.method, body=row.body, seconds=seconds
            )
            ledger.runs.append((given, result))
            estimate = max(estimate, result.sent / seconds)
            if not result.exhausted:
                return result
            need = int(estimate * seconds * HEADROOM * 2) + 500
            say(f"    ran out of tokens; again with {need:,}")
        raise RuntimeError(f"{row.key}: ran out of tokens {RETRIES + 1} times")

    def bare_run(seconds: float) -> WrkResult:
        return run_wrk(
            bare.url, bare_file, load, method=row.method, body=row.body, cycle=True,
            seconds=seconds,
        )  # fmt: skip

    given, problem = probe(row, subject, supply)
    if problem:
        return Result(row.title, inst.database, "—", "—", failures=[problem])
    # The probe's token was sent and answered 200: it goes into the check like any other.
    ledger.runs.append((given, WrkResult(1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, (1,))))
    bare_run(WARMUP_SECONDS)
    subject_run(WARMUP_SECONDS)
    measured: list[tuple[WrkResult, WrkResult]] = []
    for n in range(pairs):
        a = bare_run(load.seconds)
        b = subject_run(load.seconds)
        measured.append((a, b))
        say(
            f"    pair {n + 1}: bare {a.per_second:,.0f}/s, subject {b.per_second:,.0f}/s "
            f"({b.per_second / a.per_second:.2f}x)"
        )
    notes: list[str] = []
    if profile:
        notes.append(profile_run(row, inst, subject, load, workdir, subject_run, say))
    time.sleep(SETTLE_SECONDS)  # requests in flight when wrk stopped finish and are logged
    more, failures = verify(row, inst, ledger, subject.statuses(log_start))
    a_rate = statistics.median(a.per_second for a, _ in measured)
    b_rate = statistics.median(b.per_second for _, b in measured)
    ratio = statistics.median(b.per_second / a.per_second for a, b in measured)
    target = row.targets[inst.database]
    return Result(
        row=row.title,
        database=inst.database,
        baseline=rate(a_rate, " req/s"),
        subject=rate(b_rate, " req/s"),
        ratio=ratio,
        target=f"≥ {target}×",
        met=ratio >= target,
        p99_baseline=ms(statistics.median(a.p99_us for a, _ in measured)),
        p99_subject=ms(statistics.median(b.p99_us for _, b in measured)),
        notes=[*more, *notes],
        failures=failures,
    )


def profile_run(
    row: HttpRow,
    inst: Instance,
    subject: Server,
    load: Load,
    workdir: Path,
    subject_run: Callable[[float], WrkResult],
    say: Callable[[str], None],
) -> str:
    """Run the subject once more under py-spy (not counted) and print the hottest functions."""
    output = profiling.BENCH / f"profile-{inst.database}-{row.key}.txt"
    spy = profiling.start(subject.pid, load.seconds, output)
    result = subject_run(load.seconds)
    problem = profiling.finish(spy)
    if problem or not output.exists():
        return f"profile failed: {problem}"
    say(f"\n  profile of {row.title} on {inst.database} ({result.per_second:,.0f}/s under py-spy)")
    say("  " + profiling.summarise(output).replace("\n", "\n  "))
    return f"profile (py-spy, collapsed stacks): {output.relative_to(profiling.BENCH.parent)}"


def exercise(subject: Server, bare: Server, supply: Supply, load: Load, workdir: Path) -> None:
    """Load both servers briefly with landing GETs (so --only rss measures warmed workers)."""
    given = supply.take("landing", 3000)
    file = workdir / "exercise.txt"
    file.write_text("\n".join(path for path, _ in given) + "\n")
    run_wrk(subject.url, file, load, seconds=WARMUP_SECONDS)
    run_wrk(bare.url, fake_paths(workdir, "/u/"), load, cycle=True, seconds=WARMUP_SECONDS)
