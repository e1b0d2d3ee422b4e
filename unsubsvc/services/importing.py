"""Import subscribers and suppressions from a checked file: all rows or none, set-based.

Everything is checked before anything is written: a file with one bad row
changes nothing (unless the caller skips bad rows on purpose). Then the
import reads the stored state of the file's addresses in chunks, works out
what must change, and writes only that, a chunk per statement: 100,000 rows
cost a few hundred statements, not 100,000 round trips.

What an import records is what the service itself would: an unsubscribe
flips the subscription and writes an ``unsubscribe`` event (so the
suppression feed and reports see it), a topic opt-out adds the opt-out and its
event, a cleaned (bounced) address is unsubscribed and gets a hard ``bounce``
event too. Events carry channel ``import``, no campaign (campaign counters are
left alone) and, when the file says, the time the address left. An import
never resubscribes anyone and never removes an opt-out: an old export cannot
undo a newer choice. Erased addresses are left out entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from unsubsvc.core.csv_import import ImportRow, RowError, Status
from unsubsvc.core.events import EventKind
from unsubsvc.core.keys import Keyring
from unsubsvc.db.models import Event, MailingList, Subscriber, Subscription, TopicOptOut
from unsubsvc.services.batch import chunks, ensure_recipients, one_of
from unsubsvc.services.erasure import erased_keys
from unsubsvc.services.feed import next_feed_key

#: The channel of the events an import writes (a string: ``core.events.Channel`` has no member).
IMPORT_CHANNEL = "import"


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, on a dry run or with errors, would have done)."""

    layout: str
    rows: int
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Addresses this import unsubscribed (bounced ones included).
    unsubscribed: int = 0
    bounced: int = 0
    topic_opt_outs: int = 0
    #: Erased addresses: not stored, they stay suppressed.
    erased: int = 0
    duplicates: int = 0
    errors: tuple[RowError, ...] = field(default=())
    applied: bool = False

    def counts(self) -> dict[str, int]:
        """Return the numbers, for the summary and the audit log (no addresses)."""
        return {
            "rows": self.rows,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "unsubscribed": self.unsubscribed,
            "bounced": self.bounced,
            "topic_opt_outs": self.topic_opt_outs,
            "erased_skipped": self.erased,
            "duplicates": self.duplicates,
            "errors": len(self.errors),
        }


@dataclass(slots=True)
class _Stored:
    subscriber_id: int
    subscription_id: int | None
    subscribed: bool
    topic_ids: set[int]


@cache
def _state_statement(dialect: str) -> Executable:
    """Return the bound addresses' rows on the bound list: a row per opted-out topic."""
    on_list = (Subscription.subscriber_id == Subscriber.id) & (
        Subscription.list_id == bindparam("list_id")
    )
    return (
        select(
            Subscriber.email_key,
            Subscriber.id,
            Subscription.id,
            Subscription.subscribed,
            TopicOptOut.topic_id,
        )
        .select_from(Subscriber)
        .outerjoin(Subscription, on_list)
        .outerjoin(TopicOptOut, TopicOptOut.subscription_id == Subscription.id)
        .where(one_of(Subscriber.email_key, dialect))
    )


def _read_state(
    session: Session, mailing_list: MailingList, keys: Sequence[str]
) -> dict[str, _Stored]:
    statement = _state_statement(session.get_bind().dialect.name)
    stored: dict[str, _Stored] = {}
    for part in chunks(sorted(keys)):
        params = {"list_id": mailing_list.id, "values": list(part)}
        for key, subscriber_id, subscription_id, subscribed, topic_id in session.execute(
            statement, params
        ):
            row = stored.get(key)
            if row is None:
                row = stored[key] = _Stored(subscriber_id, subscription_id, bool(subscribed), set())
            if topic_id is not None:
                row.topic_ids.add(topic_id)
    return stored


def topic_errors(mailing_list: MailingList, rows: Sequence[ImportRow]) -> list[RowError]:
    """Return an error for each row naming a topic the list does not have."""
    known = {t.slug for t in mailing_list.topics}
    errors = []
    for row in rows:
        unknown = sorted(row.topics - known)
        if unknown:
            errors.append(
                RowError(
                    row.line,
                    f"list {mailing_list.name!r} has no topic {', '.join(unknown)} "
                    f"(topics: {', '.join(sorted(known)) or 'none'})",
                )
            )
    return errors


def import_rows(
    session: Session,
    keyring: Keyring,
    mailing_list: MailingList,
    rows: Sequence[ImportRow],
    *,
    now: datetime,
    layout: str,
    read: int,
    errors: Sequence[RowError] = (),
    duplicates: int = 0,
    dry_run: bool = False,
    skip_invalid: bool = False,
) -> ImportReport:
    """Import checked rows into the list in the caller's transaction, or say why not.

    With errors (the file's, or unknown topics) nothing is written unless
    ``skip_invalid``; on a dry run nothing is written at all.
    """
    all_errors = sorted([*errors, *topic_errors(mailing_list, rows)], key=lambda e: e.line)
    bad_lines = {e.line for e in all_errors}
    good = [row for row in rows if row.line not in bad_lines]
    report = ImportReport(layout, read, duplicates=duplicates, errors=tuple(all_errors))
    if all_errors and not skip_invalid:
        return report
    erased = erased_keys(session, keyring, [row.key for row in good])
    kept = [row for row in good if row.key not in erased]
    stored = _read_state(session, mailing_list, [row.key for row in kept])
    topic_ids = {t.slug: t.id for t in mailing_list.topics}

    new = [row for row in kept if _is_new(stored.get(row.key))]
    flips: list[ImportRow] = []
    opt_outs: list[tuple[ImportRow, int]] = []
    updated = unchanged = 0
    for row in kept:
        before = stored.get(row.key)
        subscribed = True if _is_new(before) else cast(_Stored, before).subscribed
        had = set() if before is None else before.topic_ids
        adds = sorted(topic_ids[slug] for slug in row.topics if topic_ids[slug] not in had)
        flip = subscribed and row.status is not Status.SUBSCRIBED
        if flip:
            flips.append(row)
        opt_outs.extend((row, topic_id) for topic_id in adds)
        if not _is_new(before):
            if flip or adds:
                updated += 1
            else:
                unchanged += 1
    result = replace(
        report,
        new=len(new),
        updated=updated,
        unchanged=unchanged,
        unsubscribed=len(flips),
        bounced=sum(1 for row in flips if row.status is Status.CLEANED),
        topic_opt_outs=len(opt_outs),
        erased=len(erased),
        applied=not dry_run,
    )
    if dry_run:
        return result
    _apply(session, mailing_list, new, stored, flips, opt_outs, now, layout)
    return result


def _is_new(before: _Stored | None) -> bool:
    return before is None or before.subscription_id is None


def _apply(
    session: Session,
    mailing_list: MailingList,
    new: Sequence[ImportRow],
    stored: dict[str, _Stored],
    flips: Sequence[ImportRow],
    opt_outs: Sequence[tuple[ImportRow, int]],
    now: datetime,
    layout: str,
) -> None:
    """Write the changes worked out by ``import_rows``: a chunk per statement."""
    if new:
        ensure_recipients(session, mailing_list, {row.key: row.email for row in new}, now=now)
        stored.update(_read_state(session, mailing_list, [row.key for row in new]))
    connection = session.connection()
    events = _event_statement(session.get_bind().dialect.name)
    for part in chunks(flips):
        ids = [stored[row.key].subscription_id for row in part]
        flipped = set(connection.scalars(_UNSUBSCRIBE, {"ids": ids, "now": now}))
        # Only what this statement flipped: a concurrent unsubscribe wrote its own event.
        done = [row for row in part if stored[row.key].subscription_id in flipped]
        rows = [
            _event(mailing_list, stored, row, EventKind.UNSUBSCRIBE, now, layout) for row in done
        ]
        rows.extend(
            _event(mailing_list, stored, row, EventKind.BOUNCE, now, layout)
            for row in done
            if row.status is Status.CLEANED
        )
        if rows:
            connection.execute(events, rows)
    opt_out = _opt_out_statement(session.get_bind().dialect.name)
    for pairs in chunks(opt_outs):
        connection.execute(
            opt_out,
            [
                {
                    "subscription_id": stored[row.key].subscription_id,
                    "topic_id": topic_id,
                    "created_at": now,
                }
                for row, topic_id in pairs
            ],
        )
        connection.execute(
            events,
            [
                _event(mailing_list, stored, row, EventKind.UNSUBSCRIBE, now, layout, topic_id)
                for row, topic_id in pairs
            ],
        )


def _event(
    mailing_list: MailingList,
    stored: dict[str, _Stored],
    row: ImportRow,
    kind: EventKind,
    now: datetime,
    layout: str,
    topic_id: int | None = None,
) -> dict[str, Any]:
    """Return one event's values; it happened when the file says the address left, else now."""
    detail: dict[str, Any] = {"source": "import", "layout": layout, "imported_at": now.isoformat()}
    if kind is EventKind.BOUNCE:
        detail["type"] = "hard"
    elif row.status is Status.CLEANED and topic_id is None:
        detail["cause"] = "bounce"
    left = row.unsubscribed_at
    return {
        "occurred_at": left if left is not None and left <= now else now,
        "kind": kind.value,
        "channel": IMPORT_CHANNEL,
        "subscriber_id": stored[row.key].subscriber_id,
        "list_id": mailing_list.id,
        "topic_id": topic_id,
        "campaign_id": None,
        "detail": detail,
    }


_SUBSCRIPTION = cast(Table, Subscription.__table__)
#: Unsubscribe a chunk of subscriptions (only those still subscribed: reading and writing
#: happen in one transaction, and a concurrent unsubscribe must not be written twice).
_UNSUBSCRIBE = (
    update(_SUBSCRIPTION)
    .where(
        _SUBSCRIPTION.c.id.in_(bindparam("ids", expanding=True)),
        _SUBSCRIPTION.c.subscribed.is_(True),
    )
    .values(subscribed=False, updated_at=bindparam("now"))
    .returning(_SUBSCRIPTION.c.id)
)

_EVENT_COLUMNS = (
    "occurred_at",
    "kind",
    "channel",
    "subscriber_id",
    "list_id",
    "topic_id",
    "campaign_id",
    "detail",
)


@cache
def _opt_out_statement(dialect: str) -> Executable:
    """Return the INSERT ... ON CONFLICT DO NOTHING of topic opt-outs, built once.

    Executed with many rows, so SQLAlchemy compiles it once and batches the rows
    ("insertmanyvalues"), where a multi-row VALUES would be compiled anew per chunk.
    """
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_for(cast(Table, TopicOptOut.__table__)).on_conflict_do_nothing(
        index_elements=["subscription_id", "topic_id"]
    )


@cache
def _event_statement(dialect: str) -> Executable:
    """Return the INSERT of events, executed with many rows (no RETURNING: ids are not needed).

    On PostgreSQL each event's feed_key comes from ``services.feed.next_feed_key``,
    as for the events the service writes one at a time.
    """
    statement = insert(Event).values({c: bindparam(c) for c in _EVENT_COLUMNS})
    if dialect == "postgresql":
        statement = statement.values(feed_key=next_feed_key(bindparam("subscriber_id")))
    return statement
