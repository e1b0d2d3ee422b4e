"""DKIM signing throughput: ``python -m bench.bench_dkim [--quick]``.

For rsa-sha256 (2048 bits) and ed25519-sha256, messages per second through
the fast path (dkimpy canonicalises and hashes, OpenSSL signs:
``unsubsvc.core.dkim_fast``) and through plain ``dkim.sign`` (pure-Python
RSA), each divided by a raw OpenSSL loop (``cryptography`` signing the same
messages' SHA-256 digests, nothing else) measured in the same run. One
process, then every core: the all-core rows go through a process pool
started for the run, as ``unsubsvc sign --mbox`` does (``bulk_signing.sign_all``),
so they include the pool's start-up. Prints one markdown table on stdout; the
single-process fast-path ratio is the median over three A B pairs, as in
bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import dkim

from unsubsvc.core import bulk_signing
from unsubsvc.core import dkim_signing as ds
from unsubsvc.core.bulk_signing import KeySpec, SigningPlan

DOMAIN = "example.com"
SELECTOR = "s1"
PAIRS = 3
#: Single-process rsa-sha256 target for the fast path, against the raw loop.
RSA_TARGET = 0.5
_BODY = b"".join(
    f"Line {n} of this week's news, long enough to look like a newsletter.\r\n".encode()
    for n in range(30)
)


def messages(count: int) -> list[bytes]:
    """Return ``count`` distinct messages with the headers ``sign`` adds (about 2.5 KB each)."""
    return [
        (
            f"List-Id: News <news.{DOMAIN}>\r\n"
            f"List-Unsubscribe: <https://unsub.example.com/u/{n:032x}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "From: News <news@example.com>\r\n"
            f"To: Reader {n} <reader{n}@example.org>\r\n"
            f"Subject: Issue {n}\r\nDate: Mon, 02 Mar 2026 09:30:00 +0000\r\n"
            f"Message-ID: <{n}@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + _BODY
        for n in range(count)
    ]


@dataclass(frozen=True)
class Row:
    algorithm: str
    processes: int
    raw: float
    fast: float
    plain: float

    def cells(self) -> list[str]:
        target = (
            f"≥ {RSA_TARGET}×" if self.processes == 1 and self.algorithm == "rsa-sha256" else ""
        )
        met = ""
        if target:
            met = "yes" if self.fast / self.raw >= RSA_TARGET else "no"
        return [
            self.algorithm,
            str(self.processes),
            f"{self.raw:,.0f}",
            f"{self.fast:,.0f}",
            f"{self.fast / self.raw:.2f}×",
            f"{self.plain:,.0f}",
            f"{self.plain / self.raw:.3f}×",
            f"{target} {met}".strip(),
        ]


HEADER = [
    "algorithm",
    "processes",
    "raw OpenSSL sign/s",
    "fast path msg/s",
    "fast ÷ raw",
    "plain dkim.sign msg/s",
    "plain ÷ raw",
    "target",
]


def rate(func: Callable[[], int]) -> float:
    """Return items per second of ``func()``, which returns how many items it did."""
    started = time.perf_counter()
    done = func()
    return done / (time.perf_counter() - started)


# -- what each worker runs --------------------------------------------------------------------


def _raw(item: tuple[str, bytes, Sequence[bytes]]) -> int:
    algorithm, pem, digests = item
    signer = ds.signer(DOMAIN, SELECTOR, pem, algorithm)
    for digest in digests:
        signer.sign_digest(digest)
    return len(digests)


def _fast(item: tuple[str, bytes, Sequence[bytes]]) -> int:
    algorithm, pem, batch = item
    signer = ds.signer(DOMAIN, SELECTOR, pem, algorithm)
    for message in batch:
        ds.sign_message(message, [signer])
    return len(batch)


def _plain(item: tuple[str, bytes, Sequence[bytes]]) -> int:
    algorithm, pem, batch = item
    key = ds.load_key(pem, algorithm)
    for message in batch:
        dkim.sign(
            message,
            SELECTOR.encode(),
            DOMAIN.encode(),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=algorithm.encode(),
            include_headers=[n.encode() for n in ds.signed_header_names(message)],
            linesep=b"\r\n",
        )
    return len(batch)


def _pooled(
    work: Callable[[tuple[str, bytes, Sequence[bytes]]], int],
    algorithm: str,
    pem: bytes,
    items: Sequence[bytes],
    processes: int,
) -> int:
    """Split ``items`` over a fresh spawn pool, as ``sign_all`` does; return how many."""
    share = -(-len(items) // processes)
    parts = [(algorithm, pem, items[i : i + share]) for i in range(0, len(items), share)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(work, parts))


def measure(algorithm: ds.Algorithm, processes: int, quick: bool) -> Row:
    """One row: the raw loop, the fast path and plain dkim.sign, on ``processes`` processes."""
    pem, _ = ds.keygen(algorithm)
    rsa = algorithm == "rsa-sha256"
    scale = (1 if quick else 4) * processes
    batch = messages((1000 if rsa else 4000) * scale)
    slow_batch = batch[: (60 if rsa else 400) * scale]
    digests = [hashlib.sha256(m).digest() for m in batch]
    ds.sign_message(batch[0], [ds.signer(DOMAIN, SELECTOR, pem, algorithm)])  # warm the cache
    if processes == 1:
        # A B A B A B, median of the per-pair ratios (bench/README.md's method): a
        # busy machine slows both sides of a pair alike.
        pairs = [
            (
                rate(lambda: _raw((algorithm, pem, digests))),
                rate(lambda: _fast((algorithm, pem, batch))),
            )
            for _ in range(PAIRS)
        ]
        raw = statistics.median(r for r, _ in pairs)
        fast = raw * statistics.median(f / r for r, f in pairs)
        plain = rate(lambda: _plain((algorithm, pem, slow_batch)))
    else:
        raw = rate(lambda: _pooled(_raw, algorithm, pem, digests, processes))
        plan = SigningPlan(DOMAIN, (KeySpec(SELECTOR, pem, algorithm),))
        fast = rate(lambda: sum(1 for _ in bulk_signing.sign_all(batch, plan, workers=processes)))
        plain = rate(lambda: _pooled(_plain, algorithm, pem, slow_batch, processes))
    return Row(algorithm, processes, raw, fast, plain)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_dkim", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="about a quarter of the messages")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    rows: list[Row] = []
    for algorithm in ds.ALGORITHMS:
        for processes in sorted({1, cores}):
            print(f"measuring {algorithm} on {processes} process(es)", file=sys.stderr, flush=True)
            rows.append(measure(algorithm, processes, args.quick))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
