"""The rows measured in this process: header minting against a raw HMAC loop, and the report."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import bench_report
from bench.instance import BASE_URL, SECRET
from bench.results import Result, rate

FIXED_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MINT_TARGET = 0.3


def rate_of(func: Callable[[int], None], seconds: float) -> float:
    """Return calls per second of ``func(n)`` (which makes n calls), over about ``seconds``."""
    n = 64
    while True:
        started = time.perf_counter()
        func(n)
        took = time.perf_counter() - started
        if took >= seconds:
            return n / took
        n = max(n * 2, int(n * seconds / max(took, 1e-6) * 1.1))


def minting(pairs: int, seconds: float) -> Result:
    """Headers for one recipient (LinkMinter.links) against one raw HMAC-SHA256, A B A B A B."""
    from unsubsvc.core.keys import Keyring
    from unsubsvc.core.tokens import TokenPayload, TokenSigner
    from unsubsvc.services.links import LinkMinter

    minter = LinkMinter(TokenSigner(Keyring((SECRET,))), BASE_URL, mailto="unsub@example.com")
    payloads = [
        TokenPayload(list_id=1, subscriber=secrets.token_urlsafe(16), campaign_id=42)
        for _ in range(1024)
    ]
    sample = minter.links(payloads[0], now=FIXED_NOW).token
    key = SECRET.encode()
    message = sample.rpartition(".")[0].encode()  # as long as what a token's signature covers
    digest = hashlib.sha256

    def raw(n: int) -> None:
        for _ in range(n):
            hmac.new(key, message, digest).digest()

    def mint(n: int) -> None:
        links = minter.links
        for i in range(n):
            links(payloads[i & 1023], now=FIXED_NOW)

    raw(1000)
    mint(1000)
    measured = [(rate_of(raw, seconds), rate_of(mint, seconds)) for _ in range(pairs)]
    ratio = statistics.median(b / a for a, b in measured)
    return Result(
        row="header minting per recipient (in-process)",
        database="—",
        baseline=rate(statistics.median(a for a, _ in measured), " HMAC/s"),
        subject=rate(statistics.median(b for _, b in measured), " recipients/s"),
        ratio=ratio,
        target=f"≥ {MINT_TARGET}×",
        met=ratio >= MINT_TARGET,
        notes=[
            "subject: LinkMinter.links (both tokens, both URLs, both headers, with a mailto); "
            "baseline: hmac.new(key, msg, sha256).digest() over a token-sized message"
        ],
    )


def report(workdir: Path, scale: float, rounds: int, say: Callable[[str], None]) -> Result:
    """A campaign report at 1,000 campaigns and about 1,000,000 events against 10 campaigns."""
    per_campaign = max(1, round(1000 * scale))
    say(f"  building report databases ({1000 * per_campaign:,} events; not timed)")
    with contextlib.redirect_stdout(sys.stderr):  # its progress lines, not the table
        small = bench_report.build(workdir, "report-A", 10, per_campaign, 20_000)
        large = bench_report.build(workdir, "report-B", 1000, per_campaign, 20_000)
    try:
        t_small, n_small = bench_report.report_time(small, rounds)
        t_large, n_large = bench_report.report_time(large, rounds)
    finally:
        small.runtime.dispose()
        large.runtime.dispose()
    return Result(
        row=f"campaign report, {n_large:,} campaigns / {large.events:,} events vs {n_small}",
        database="sqlite",
        baseline=f"{t_small * 1000:.1f} ms",
        subject=f"{t_large * 1000:.1f} ms",
        ratio=t_small / t_large,
        notes=[
            f"best of {rounds}; ratio = report time at 10 campaigns / at 1,000 "
            "(0.01× means it grows with campaigns only: 100× the campaigns)"
        ],
    )
