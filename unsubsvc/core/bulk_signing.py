"""Sign many messages on every core, and read and write them as mboxrd.

Signing is CPU-bound and independent per message, so ``sign_all`` spreads it
over a process pool (threads would share one interpreter lock). Each worker
parses the keys once, in its initializer; messages travel as bytes and come
back in input order.

mbox files are read and written as mboxrd (the ``application/mbox`` variant
of RFC 4155 described at https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml):
a body line matching ``>*From `` gets one more ``>`` on writing and loses one
on reading, so any message survives the round trip. Each message is stored
with the CRLF line ends it was signed with (RFC 5322 §2.1, the bytes SMTP
sends); the mbox framing, the ``From `` separator line and the blank line
after each message, is LF, as Python's ``mailbox`` module writes and reads it.
A reader that splits on ``From `` lines and unescapes one ``>`` gets back
exactly the signed bytes.
"""

from __future__ import annotations

import csv
import io
import itertools
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from unsubsvc.core.dkim_fast import Signer
from unsubsvc.core.dkim_signing import Algorithm, sign_message, signer

#: Messages handed to a worker at a time: enough to hide the pickling round trip.
CHUNK = 32
#: Chunks out per worker at a time: enough that no worker waits for the next.
IN_FLIGHT = 4

_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


@dataclass(frozen=True)
class KeySpec:
    """One signing key as it crosses to a worker process: plain, picklable data."""

    selector: str
    private_key: bytes
    algorithm: Algorithm


@dataclass(frozen=True)
class SigningPlan:
    """The signing domain and its keys; the first key's signature goes on top."""

    domain: str
    keys: tuple[KeySpec, ...]

    def signers(self) -> list[Signer]:
        """Return the parsed keys (cached per process by ``dkim_signing.signer``)."""
        return [
            signer(self.domain, key.selector, key.private_key, key.algorithm) for key in self.keys
        ]


def sign_all(
    messages: Iterable[bytes],
    plan: SigningPlan,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield each message signed with every key of ``plan``, in input order.

    ``workers`` defaults to ``os.cpu_count()``; 1 signs in this process. A
    message that cannot be signed raises ValueError, naming its position
    (from 1). ``progress`` is called with 1 after each message.
    """
    count = workers if workers is not None else os.cpu_count() or 1
    if count <= 1:
        signers = plan.signers()
        numbered = enumerate(messages, start=1)
        yield from _unwrap((_sign_numbered(signers, item) for item in numbered), progress)
        return
    with SigningPool(plan, workers=count) as pool:
        yield from pool.sign(messages, progress=progress)


class SigningPool:
    """Worker processes holding ``plan``'s parsed keys, reused for every batch signed through it.

    For a caller that signs batch after batch (or a benchmark): the processes
    start and parse the keys once, on entry, not once per batch.
    """

    def __init__(self, plan: SigningPlan, *, workers: int | None = None) -> None:
        self._workers = workers or os.cpu_count() or 1
        # spawn: a worker starts clean, without the parent's database connections or threads.
        self._executor = ProcessPoolExecutor(
            self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(plan,),
        )

    def __enter__(self) -> SigningPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._executor.shutdown(cancel_futures=True)

    def sign(
        self, messages: Iterable[bytes], *, progress: Callable[[int], None] | None = None
    ) -> Iterator[bytes]:
        """Yield each message signed, in input order, as ``sign_all`` does.

        At most IN_FLIGHT chunks per worker are out at a time, so a million
        messages are read, signed and written as a stream, never all held at once
        (``Executor.map`` would submit the whole input first).
        """
        numbered = enumerate(messages, start=1)
        pending: deque[Future[list[tuple[bytes | None, str]]]] = deque()
        while chunk := list(itertools.islice(numbered, CHUNK)):
            pending.append(self._executor.submit(_sign_chunk, chunk))
            if len(pending) >= IN_FLIGHT * self._workers:
                yield from _unwrap(pending.popleft().result(), progress)
        while pending:
            yield from _unwrap(pending.popleft().result(), progress)


def _unwrap(
    results: Iterable[tuple[bytes | None, str]], progress: Callable[[int], None] | None
) -> Iterator[bytes]:
    for signed, error in results:
        if signed is None:
            raise ValueError(error)
        if progress is not None:
            progress(1)
        yield signed


def _sign_numbered(signers: list[Signer], item: tuple[int, bytes]) -> tuple[bytes | None, str]:
    number, message = item
    try:
        return sign_message(message, signers), ""
    except ValueError as exc:
        return None, f"message {number}: {exc}"


_worker_signers: list[Signer] = []


def _start_worker(plan: SigningPlan) -> None:
    """Parse the keys once per worker process."""
    _worker_signers[:] = plan.signers()


def _sign_chunk(chunk: list[tuple[int, bytes]]) -> list[tuple[bytes | None, str]]:
    return [_sign_numbered(_worker_signers, item) for item in chunk]


# -- mboxrd ----------------------------------------------------------------------------------


def mboxrd_unescape(message: bytes) -> bytes:
    """Return a message read from an mboxrd file with one ``>`` taken off ``>+From `` lines."""
    return _ESCAPED_FROM.sub(rb"\1", message)


def mboxrd_escape(message: bytes) -> bytes:
    """Return a message with one ``>`` added to every ``>*From `` line, for an mboxrd file."""
    return _FROM.sub(rb">\1", message)


def write_mboxrd(file: BinaryIO, envelope: bytes, message: bytes) -> None:
    """Append one message: its ``From `` line, the escaped bytes, and the blank separator."""
    if not envelope.startswith(b"From ") or b"\n" in envelope or b"\r" in envelope:
        raise ValueError(f"not an mbox 'From ' line: {envelope[:60]!r}")
    escaped = mboxrd_escape(message)
    file.write(envelope + b"\n" + escaped + (b"" if escaped.endswith(b"\n") else b"\n") + b"\n")


# -- recipients sidecar ----------------------------------------------------------------------

RECIPIENT_COLUMNS = ("key", "list", "email", "campaign")


@dataclass(frozen=True)
class RecipientRow:
    """What a sidecar row says about one message; None leaves the run's default."""

    list_name: str | None = None
    email: str | None = None
    campaign: str | None = None


def read_recipients(text: str) -> dict[str, RecipientRow]:
    """Return message key to RecipientRow from CSV with a ``key,list,email,campaign`` header.

    ``key`` is required; the other columns are optional and an empty cell
    means the run's default (--list, the To: address, --campaign).
    """
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip().lower() for name in reader.fieldnames or ()]
    unknown = [name for name in columns if name not in RECIPIENT_COLUMNS]
    if "key" not in columns or unknown:
        raise ValueError(
            f"the recipients file needs a header of {', '.join(RECIPIENT_COLUMNS)} "
            f"(key required){'; unknown: ' + ', '.join(unknown) if unknown else ''}"
        )
    reader.fieldnames = columns
    rows: dict[str, RecipientRow] = {}
    for line, record in enumerate(reader, start=2):
        key = (record.get("key") or "").strip()
        if not key:
            raise ValueError(f"recipients line {line} has no key")
        if key in rows:
            raise ValueError(f"recipients line {line} repeats the key {key!r}")
        rows[key] = RecipientRow(
            *((record.get(name) or "").strip() or None for name in ("list", "email", "campaign"))
        )
    return rows
