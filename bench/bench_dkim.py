"""DKIM signing throughput: ``python -m bench.bench_dkim [--quick]``.

For rsa-sha256 (2048 bits) and ed25519-sha256, messages per second through
the fast path (dkimpy canonicalises and hashes, OpenSSL signs:
``unsubsvc.core.dkim_fast``) and through plain ``dkim.sign`` (pure-Python
RSA), each divided by a raw OpenSSL loop (``cryptography`` signing the same
messages' SHA-256 digests, nothing else) measured in the same run. One
process, then every core: the all-core rows go through pools started before
the clock runs (``bulk_signing.SigningPool``, what ``unsubsvc sign --mbox``
uses, against a pool of raw loops), so they measure signing, not start-up; the
pool's start-up is printed apart. "gain" is a row's rate over the one-process
rate of the same kind: with two cores, 2× is linear. Rates are medians over
three A B pairs (raw, then fast), as in bench/README.md; every message has its
own headers and body, and a sample of each run's output is verified.
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
from unsubsvc.core.dkim_fast import Signer

DOMAIN = "example.com"
SELECTOR = "s1"
PAIRS = 3
#: Single-process rsa-sha256 target for the fast path, against the raw loop.
RSA_TARGET = 0.5
#: All-core target: the fast path's gain over one process, per process ("near-linear").
GAIN_PER_PROCESS = 0.8
#: Digests or messages per task sent to a pool worker (as bulk_signing.CHUNK).
CHUNK = bulk_signing.CHUNK


def messages(count: int) -> list[bytes]:
    """Return ``count`` distinct messages with the headers ``sign`` adds (about 2.5 KB each).

    Bodies differ too (the reader's number on each line), so nothing is shared
    between messages; the text has single spaces, as generated mail does.
    """
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
            + "".join(
                f"Line {line} of this week's news for reader {n}, as long as a newsletter's.\r\n"
                for line in range(30)
            )
        ).encode()
        for n in range(count)
    ]


@dataclass(frozen=True)
class Row:
    algorithm: str
    processes: int
    raw: float
    fast: float
    plain: float
    #: The one-process row's rates, for the gain columns (None on that row itself).
    single: Row | None = None
    #: Seconds to start the fast path's pool and parse the keys in every worker.
    startup: float | None = None

    def cells(self) -> list[str]:
        targets: list[str] = []
        if self.single is None and self.algorithm == "rsa-sha256":
            met = self.fast / self.raw >= RSA_TARGET
            targets.append(f"fast ÷ raw ≥ {RSA_TARGET}×: {'yes' if met else 'no'}")
        fast_gain = raw_gain = "—"
        if self.single is not None:
            fast_gain = f"{self.fast / self.single.fast:.2f}×"
            raw_gain = f"{self.raw / self.single.raw:.2f}×"
            wanted = GAIN_PER_PROCESS * self.processes
            met = self.fast / self.single.fast >= wanted
            targets.append(f"fast gain ≥ {wanted:.1f}×: {'yes' if met else 'no'}")
        return [
            self.algorithm,
            str(self.processes),
            f"{self.raw:,.0f}",
            f"{self.fast:,.0f}",
            f"{self.fast / self.raw:.2f}×",
            fast_gain,
            raw_gain,
            f"{self.plain:,.0f}",
            f"{self.plain / self.raw:.3f}×",
            "—" if self.startup is None else f"{self.startup:.2f} s",
            "; ".join(targets),
        ]


HEADER = [
    "algorithm",
    "processes",
    "raw OpenSSL sign/s",
    "fast path msg/s",
    "fast ÷ raw",
    "fast gain",
    "raw gain",
    "plain dkim.sign msg/s",
    "plain ÷ raw",
    "pool start-up",
    "target",
]


def rate(func: Callable[[], int]) -> float:
    """Return items per second of ``func()``, which returns how many items it did."""
    started = time.perf_counter()
    done = func()
    return done / (time.perf_counter() - started)


def pairs(raw: Callable[[], int], fast: Callable[[], int]) -> tuple[float, float]:
    """Run raw and fast in turn PAIRS times; return the median raw rate and the fast rate
    that the median per-pair ratio gives (a busy moment slows both sides of a pair)."""
    runs = [(rate(raw), rate(fast)) for _ in range(PAIRS)]
    median_raw = statistics.median(r for r, _ in runs)
    return median_raw, median_raw * statistics.median(f / r for r, f in runs)


# -- what each process runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    """One process's key, parsed for the fast path and for dkimpy."""

    signer: Signer
    dkimpy_key: bytes


_worker: list[_Keys] = []


def _start(algorithm: str, pem: bytes) -> None:
    _worker[:] = [_Keys(ds.signer(DOMAIN, SELECTOR, pem, algorithm), ds.load_key(pem, algorithm))]


def _raw(digests: Sequence[bytes]) -> int:
    [keys] = _worker
    for digest in digests:
        keys.signer.sign_digest(digest)
    return len(digests)


def _plain(batch: Sequence[bytes]) -> int:
    [keys] = _worker
    for message in batch:
        dkim.sign(
            message,
            SELECTOR.encode(),
            DOMAIN.encode(),
            keys.dkimpy_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=keys.signer.algorithm,
            include_headers=[n.encode() for n in ds.signed_header_names(message)],
            linesep=b"\r\n",
        )
    return len(batch)


def chunks(items: Sequence[bytes]) -> list[Sequence[bytes]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def pool_of(processes: int, initializer: Callable[..., None], *args: object) -> ProcessPoolExecutor:
    """A started spawn pool (as bulk_signing's) with every worker initialised."""
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=args,
    )
    list(pool.map(time.sleep, [0.2] * processes))  # every worker up before the clock runs
    return pool


def check_sample(signed: Sequence[bytes], txt: str) -> None:
    """Exit if a sample of the output does not verify: a fast wrong answer is no answer."""
    dns = ds.dns_func_from_txt({ds.dns_record_name(SELECTOR, DOMAIN): txt})
    for message in (signed[0], signed[len(signed) // 2], signed[-1]):
        if not dkim.verify(message, dnsfunc=dns):
            sys.exit("a signed message did not verify")


def measure(algorithm: ds.Algorithm, processes: int, quick: bool, single: Row | None) -> Row:
    """One row: the raw loop, the fast path and plain dkim.sign, on ``processes`` processes."""
    pem, txt = ds.keygen(algorithm)
    rsa = algorithm == "rsa-sha256"
    scale = (1 if quick else 4) * processes
    batch = messages((1000 if rsa else 3000) * scale)
    slow_batch = batch[: (60 if rsa else 400) * scale]
    digests = [hashlib.sha256(m).digest() for m in batch]
    plan = SigningPlan(DOMAIN, (KeySpec(SELECTOR, pem, algorithm),))
    out: list[bytes] = []

    def fast_in(sign: Callable[[Sequence[bytes]], Sequence[bytes]]) -> Callable[[], int]:
        def run() -> int:
            out[:] = sign(batch)
            return len(out)

        return run

    if processes == 1:
        _start(algorithm, pem)
        signers = plan.signers()
        raw, fast = pairs(
            lambda: _raw(digests),
            fast_in(lambda items: [ds.sign_message(m, signers) for m in items]),
        )
        check_sample(out, txt)
        return Row(algorithm, 1, raw, fast, rate(lambda: _plain(slow_batch)))
    started = time.perf_counter()
    with bulk_signing.SigningPool(plan, workers=processes) as signing:
        list(signing.sign(batch[: processes * CHUNK]))  # every worker has parsed the key
        startup = time.perf_counter() - started
        with pool_of(processes, _start, algorithm, pem) as raw_pool:
            raw, fast = pairs(
                lambda: sum(raw_pool.map(_raw, chunks(digests))),
                fast_in(lambda items: list(signing.sign(items))),
            )
    check_sample(out, txt)
    with pool_of(processes, _start, algorithm, pem) as plain_pool:
        plain = rate(lambda: sum(plain_pool.map(_plain, chunks(slow_batch))))
    return Row(algorithm, processes, raw, fast, plain, single, startup)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_dkim", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="about a quarter of the messages")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the all-core rows (default: every core)",
    )
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for algorithm in ds.ALGORITHMS:
        print(f"measuring {algorithm} on 1 process", file=sys.stderr, flush=True)
        single = measure(algorithm, 1, args.quick, None)
        rows.append(single)
        if args.processes > 1:
            print(f"measuring {algorithm} on {args.processes}", file=sys.stderr, flush=True)
            rows.append(measure(algorithm, args.processes, args.quick, single))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
