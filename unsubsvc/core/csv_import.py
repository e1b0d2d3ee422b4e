"""Reading subscriber and suppression exports: layouts, rows, and what is wrong with them.

Pure: text lines in, typed rows or per-line errors out. The layouts are the
CSV exports of the common ESPs, recognised from the header row:

- Mailchimp audience export: one file per status (``subscribed_*.csv``,
  ``unsubscribed_*.csv``, ``cleaned_*.csv``), header ``Email Address``, ...; an
  ``UNSUB_TIME`` column marks the unsubscribed file, ``CLEAN_TIME`` the
  cleaned (bounced) one.
- SendGrid: suppression downloads (``email,created``, plus ``reason,status``
  for bounces, blocks and invalid addresses) and the contacts export
  (``EMAIL,FIRST_NAME,...,CONTACT_ID``).
- listmonk subscribers export: ``uuid,email,name,attributes,status,created_at,
  updated_at``, status ``enabled``, ``disabled`` or ``blocklisted``.
- Plain (and what ``unsubsvc export-list`` writes): ``email,status,
  unsubscribed_at,topics`` (``topics_opted_out`` is the same column).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from unsubsvc.core.addresses import MAX_ADDRESS_LENGTH, normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.tables import FORMULA_START

#: The largest file an import reads: 100,000 Mailchimp rows with many merge fields fit 20 times.
MAX_BYTES = 512 * 1024 * 1024
#: The most data rows one import takes: it holds them all in memory before writing anything.
MAX_ROWS = 2_000_000
#: Topic separators in a plain file's ``topics`` cell.
TOPIC_SEPARATORS = (";", "|")
#: The most characters of a bad cell an error message repeats.
SHOWN = 60


class Layout(StrEnum):
    """Whose export a file is."""

    MAILCHIMP = "mailchimp"
    SENDGRID = "sendgrid"
    LISTMONK = "listmonk"
    PLAIN = "plain"


class Status(IntEnum):
    """What a row says about an address; a higher value suppresses more."""

    SUBSCRIBED = 0
    UNSUBSCRIBED = 1
    #: Undeliverable (a hard bounce, Mailchimp's "cleaned"): suppressed as well.
    CLEANED = 2

    @property
    def label(self) -> str:
        """Return the status as files write it."""
        return self.name.lower()


class FileRefused(InvalidInput):
    """The file as a whole cannot be imported (binary, too big, no e-mail column)."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One address's row, checked: what the import would record."""

    line: int
    email: str
    key: str
    status: Status
    unsubscribed_at: datetime | None = None
    topics: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class RowError:
    """Why the row starting on ``line`` (the header is line 1) cannot be imported."""

    line: int
    message: str


@dataclass(frozen=True)
class Detected:
    """A file's layout, and where the cells each row needs are."""

    layout: Layout
    #: In words, for the report: ``mailchimp (unsubscribed export)``.
    description: str
    width: int
    email: int
    status: int | None = None
    #: A status that the whole file carries (Mailchimp and SendGrid: one file per status).
    fixed_status: Status | None = None
    unsubscribed_at: int | None = None
    topics: int | None = None


#: Addresses of the everyday shape: ASCII letters, digits and ``._%+'-`` before the ``@``,
#: dotted labels after it. Each one passes ``normalize_address`` unchanged, so a row that
#: matches skips its character-by-character check (five times faster on 100,000 rows).
_EVERYDAY_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

#: Plain-layout status words (and listmonk's), case-insensitive.
STATUS_WORDS: dict[str, Status] = {
    "": Status.SUBSCRIBED,
    "subscribed": Status.SUBSCRIBED,
    "active": Status.SUBSCRIBED,
    "enabled": Status.SUBSCRIBED,
    "unsubscribed": Status.UNSUBSCRIBED,
    "opted_out": Status.UNSUBSCRIBED,
    "disabled": Status.UNSUBSCRIBED,
    "blocklisted": Status.UNSUBSCRIBED,
    "blacklisted": Status.UNSUBSCRIBED,
    "cleaned": Status.CLEANED,
    "bounced": Status.CLEANED,
}


def check_sample(sample: bytes, size: int) -> None:
    """Refuse a file that is too big or not text, from its size and first bytes."""
    if size > MAX_BYTES:
        raise FileRefused(f"the file is {size} bytes; an import takes at most {MAX_BYTES}")
    if b"\x00" in sample:
        raise FileRefused("the file holds NUL bytes: it is not a CSV text file")
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            raise FileRefused(
                "the file is not UTF-8 text (export it as CSV, UTF-8); "
                f"first bad byte at offset {exc.start}"
            ) from None


def _name(cell: str) -> str:
    return cell.strip().lstrip("\ufeff").strip().casefold()


def detect(header: Sequence[str], layout: Layout | None = None) -> Detected:
    """Return the layout of a file from its header row (``layout`` forces one)."""
    names = [_name(cell) for cell in header]
    index = {name: i for i, name in reversed(list(enumerate(names)))}
    width = len(names)
    if layout is None:
        layout = _guess(index)
        if layout is None:
            shown = ", ".join(header[:8])
            raise FileRefused(f"no e-mail column in the header row ({shown}); see --format")

    def need(*candidates: str) -> int:
        for name in candidates:
            if name in index:
                return index[name]
        raise FileRefused(f"a {layout} file needs a {candidates[0]!r} column")

    if layout is Layout.MAILCHIMP:
        email = need("email address", "email")
        if "clean_time" in index:
            return Detected(
                layout,
                "mailchimp (cleaned export)",
                width,
                email,
                fixed_status=Status.CLEANED,
                unsubscribed_at=index["clean_time"],
            )
        if "unsub_time" in index:
            return Detected(
                layout,
                "mailchimp (unsubscribed export)",
                width,
                email,
                fixed_status=Status.UNSUBSCRIBED,
                unsubscribed_at=index["unsub_time"],
            )
        return Detected(
            layout, "mailchimp (subscribed export)", width, email, fixed_status=Status.SUBSCRIBED
        )
    if layout is Layout.SENDGRID:
        email = need("email")
        if "created" not in index:
            return Detected(
                layout, "sendgrid (contacts export)", width, email, fixed_status=Status.SUBSCRIBED
            )
        if "reason" in index:
            # Bounces, blocks and invalid addresses: all say the address is undeliverable.
            return Detected(
                layout,
                "sendgrid (bounces export)",
                width,
                email,
                fixed_status=Status.CLEANED,
                unsubscribed_at=index["created"],
            )
        return Detected(
            layout,
            "sendgrid (suppressions export)",
            width,
            email,
            fixed_status=Status.UNSUBSCRIBED,
            unsubscribed_at=index["created"],
        )
    if layout is Layout.LISTMONK:
        return Detected(
            layout,
            "listmonk (subscribers export)",
            width,
            need("email"),
            status=need("status"),
            unsubscribed_at=index.get("updated_at"),
        )
    return Detected(
        layout,
        "plain",
        width,
        need("email", "email address"),
        status=index.get("status"),
        unsubscribed_at=index.get("unsubscribed_at"),
        topics=index.get("topics_opted_out", index.get("topics")),
    )


def _guess(index: dict[str, int]) -> Layout | None:
    if "email address" in index:
        return Layout.MAILCHIMP
    if "email" not in index:
        return None
    if {"uuid", "status", "attributes"} <= index.keys():
        return Layout.LISTMONK
    if "created" in index or "contact_id" in index:
        return Layout.SENDGRID
    return Layout.PLAIN


def parse_time(text: str) -> datetime:
    """Return a time as the exports write it (ISO-8601, ``2019-03-21 14:05:12``, epoch s or ms).

    A time without a zone is UTC: Mailchimp's and SendGrid's exports are.
    """
    value = text.strip()
    if value.isascii() and value.isdigit():
        seconds = int(value)
        if seconds > 10**11:  # milliseconds
            seconds //= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(f"not a time: {_shown(text)}") from None
    moment = _from_text(value)
    if moment is None:
        raise InvalidInput(f"not a time: {_shown(text)}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _from_text(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y"):
        try:
            return datetime.strptime(value, pattern)  # noqa: DTZ007 - the caller makes it UTC
        except ValueError:
            continue
    return None


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def _cell(text: str) -> str:
    """Return a cell as written, less the quote a formula-safe CSV writer puts before ``=+-@``."""
    if text.startswith("'") and text[1:2] and text[1:].lstrip().startswith(FORMULA_START):
        return text[1:]
    return text


def split_topics(text: str) -> frozenset[str]:
    """Return the topic slugs of a ``topics`` cell (``a;b`` or ``a|b``), case-folded."""
    for separator in TOPIC_SEPARATORS[1:]:
        text = text.replace(separator, TOPIC_SEPARATORS[0])
    return frozenset(p.strip().casefold() for p in text.split(TOPIC_SEPARATORS[0]) if p.strip())


def read_row(detected: Detected, line: int, cells: Sequence[str]) -> ImportRow | RowError:
    """Return one data row checked, or why it cannot be imported."""
    if len(cells) != detected.width and any(c.strip() for c in cells[detected.width :]):
        return RowError(line, f"{len(cells)} fields where the header has {detected.width}")
    if len(cells) < detected.width:
        return RowError(line, f"{len(cells)} fields where the header has {detected.width}")
    raw = _cell(cells[detected.email])
    if len(raw) <= MAX_ADDRESS_LENGTH and _EVERYDAY_ADDRESS.fullmatch(raw):
        email = raw
    else:
        try:
            email = normalize_address(raw)
        except InvalidInput:
            return RowError(line, f"not an e-mail address: {_shown(raw)}")
    status = detected.fixed_status
    if status is None:
        word = cells[detected.status].strip().casefold() if detected.status is not None else ""
        status = STATUS_WORDS.get(word)
        if status is None:
            return RowError(line, f"unknown status {_shown(word)}")
    when: datetime | None = None
    if detected.unsubscribed_at is not None and cells[detected.unsubscribed_at].strip():
        try:
            when = parse_time(cells[detected.unsubscribed_at])
        except InvalidInput as exc:
            return RowError(line, str(exc))
        if detected.layout is Layout.PLAIN and word_is_blank(detected, cells):
            status = Status.UNSUBSCRIBED  # a time of leaving, and no status: it left
    if status is Status.SUBSCRIBED:
        when = None  # listmonk's updated_at, say: not a time of leaving
    topics = frozenset[str]()
    if detected.topics is not None:
        topics = split_topics(_cell(cells[detected.topics]))
    # ``email`` is normalized already: its key is ``address_key``'s without checking it twice.
    return ImportRow(line, email, email.casefold(), status, when, topics)


def word_is_blank(detected: Detected, cells: Sequence[str]) -> bool:
    """Return whether a plain row leaves its status empty."""
    return detected.status is None or not cells[detected.status].strip()


class Reader:
    """A CSV file's rows, read lazily from its text lines; ``detected`` says whose layout."""

    def __init__(self, lines: Iterable[str], layout: Layout | None = None) -> None:
        self._rows = csv.reader(lines, strict=True)
        self._last_line = 0
        header: list[str] | None = None
        for line, cells in self._records():
            if any(c.strip() for c in cells):
                header, self.header_line = cells, line
                break
        if header is None:
            raise FileRefused("the file is empty: no header row")
        self.detected = detect(header, layout)

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """Yield each record with the line it starts on (a quoted cell may span lines)."""
        while True:
            try:
                cells = next(self._rows)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRefused(f"line {self._rows.line_num}: not CSV ({exc})") from None
            line, self._last_line = self._last_line + 1, self._rows.line_num
            yield line, cells

    def __iter__(self) -> Iterator[ImportRow | RowError]:
        """Yield each data row checked, skipping empty lines; refuse past MAX_ROWS."""
        count = 0
        for line, cells in self._records():
            if not any(c.strip() for c in cells):
                continue
            count += 1
            if count > MAX_ROWS:
                raise FileRefused(f"more than {MAX_ROWS} rows; split the file")
            yield read_row(self.detected, line, cells)


@dataclass
class Collected:
    """A file's rows after reading: one per address, and the errors."""

    rows: list[ImportRow]
    errors: list[RowError]
    #: Data rows read (duplicates and bad rows included).
    read: int = 0
    #: Rows that named an address again; they were merged into its first row.
    duplicates: int = 0


def collect(items: Iterable[ImportRow | RowError]) -> Collected:
    """Return one row per address; a repeated address keeps the most suppressing of its rows.

    An address on two rows is merged, not refused: the higher status wins
    (cleaned over unsubscribed over subscribed), topic opt-outs add up and the
    earliest time of leaving is kept. An import never turns a suppression into a
    subscription, so merging towards suppression loses nothing the file said.
    """
    by_key: dict[str, ImportRow] = {}
    errors: list[RowError] = []
    read = duplicates = 0
    for item in items:
        read += 1
        if isinstance(item, RowError):
            errors.append(item)
            continue
        first = by_key.get(item.key)
        if first is None:
            by_key[item.key] = item
            continue
        duplicates += 1
        times = [t for t in (first.unsubscribed_at, item.unsubscribed_at) if t is not None]
        status = max(first.status, item.status)
        by_key[item.key] = ImportRow(
            first.line,
            first.email,
            first.key,
            status,
            min(times) if times and status is not Status.SUBSCRIBED else None,
            first.topics | item.topics,
        )
    return Collected(list(by_key.values()), errors, read, duplicates)
