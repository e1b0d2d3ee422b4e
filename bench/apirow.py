"""The batch headers API: POST /api/v1/lists/<name>/headers, 10,000 new then known."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.instance import LIST, Instance, count_subscribers
from bench.results import DASH, Result
from bench.servers import Server

BATCH = 10_000


def post_headers(server: Server, key: str, emails: list[str]) -> float:
    """Send one headers call for ``emails``; return its seconds, or raise if it failed."""
    body = json.dumps(
        {"recipients": [{"email": e} for e in emails], "campaign": "bench-batch"}
    ).encode()
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request(
            "POST",
            f"/api/v1/lists/{LIST}/headers",
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        answer = conn.getresponse()
        data = answer.read()
        took = time.perf_counter() - started
    finally:
        conn.close()
    if answer.status != 200:
        raise RuntimeError(f"headers API answered {answer.status}: {data[:300]!r}")
    got = json.loads(data)["recipients"]
    if len(got) != len(emails) or any(r["email"] != e for r, e in zip(got, emails, strict=True)):
        raise RuntimeError("headers API answered the wrong recipients")
    return took


def measure(
    inst: Instance, server: Server, repeats: int, say: Callable[[str], None]
) -> list[Result]:
    """Time ``repeats`` pairs of calls (new, then the same again: known); medians."""
    new: list[float] = []
    known: list[float] = []
    failures: list[str] = []
    for n in range(repeats):
        emails = [f"api{n}-{i}@bench.example" for i in range(BATCH)]
        new.append(post_headers(server, inst.api_key, emails))
        created = count_subscribers(inst, emails)
        known.append(post_headers(server, inst.api_key, emails))
        if created != BATCH or count_subscribers(inst, emails) != BATCH:
            failures.append(f"expected {BATCH:,} subscribers, found {created:,}")
        say(f"    call {n + 1}: new {new[-1]:.2f} s, known {known[-1]:.2f} s")
    results = []
    for label, times in (("new", new), ("known", known)):
        seconds = statistics.median(times)
        results.append(
            Result(
                row=f"batch headers API, {BATCH:,} {label} recipients",
                database=inst.database,
                baseline=DASH,
                subject=f"{seconds:.2f} s = {BATCH / seconds:,.0f} recipients/s",
                notes=[f"median of {repeats} calls" if repeats > 1 else "one call"]
                if label == "new"
                else [],
                failures=failures if label == "new" else [],
            )
        )
    return results
