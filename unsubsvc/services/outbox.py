"""The outbox of mail unsubsvc sends itself: queued with the change that asks for it, sent later.

``enqueue`` composes the message and adds it in the caller's transaction, so
mail goes out only for a change that was committed. ``deliver_due`` sends it
under leases (``services.leases``, as webhook deliveries are): claimed in a
short transaction, the SMTP exchange outside any, the outcome recorded only
while the lease is still ours, so two deliverers never send one message twice
while both live. A lease outlasts the SMTP timeouts of a whole exchange.

Retries: a temporary failure (SMTP 4xx, a refused or dropped connection, a
timeout) tries again after 1, 2, 4 … minutes, at most an hour apart, for a day;
a permanent refusal (5xx) fails the row at once. A sent row keeps no body:
the message holds a sign-in or confirmation link, a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, CursorResult, delete, or_, select
from sqlalchemy.orm import Session

from unsubsvc.core.outgoing_mail import MailContent, compose, domain_of
from unsubsvc.db.models import OutgoingMail
from unsubsvc.services.leases import Claim, LeasedTable, new_owner
from unsubsvc.services.smtp_transport import DEFAULT_TIMEOUT, SendError, SmtpTransport
from unsubsvc.settings import Settings

log = logging.getLogger(__name__)

#: First retry after this; doubled after each failure, at most MAX_BACKOFF apart.
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
#: A message still not accepted this long after it was queued is given up.
GIVE_UP_AFTER = timedelta(hours=24)
#: Longer than an SMTP exchange can take: connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT.
LEASE = timedelta(seconds=DEFAULT_TIMEOUT * 12)
DEFAULT_BATCH = 50
_QUEUED = "unsubsvc.queued_mail"

#: Opens a session for one short transaction: a sessionmaker, or a context manager yielding one.
Transactions = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_due`` run did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    #: True when no SMTP server is configured: nothing was tried.
    not_configured: bool = False

    def __str__(self) -> str:
        if self.not_configured:
            return "mail not sent: UNSUBSVC_SMTP_URL is not set"
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"


@dataclass(frozen=True)
class OutboxRow:
    """One outgoing message as the CLI and admin show it (no body)."""

    id: int
    kind: str
    recipient: str
    created_at: datetime
    attempts: int
    status: str  # "queued", "sent", "failed"
    next_attempt_at: datetime | None
    sent_at: datetime | None
    failed_at: datetime | None
    last_error: str | None


def enqueue(
    session: Session,
    content: MailContent,
    *,
    settings: Settings,
    now: datetime,
    subscriber_id: int | None = None,
) -> OutgoingMail:
    """Compose ``content`` and add it to the outbox in the caller's transaction."""
    message = compose(
        content,
        mail_from=settings.mail_from,
        default_sender_name=settings.sender_name,
        now=now,
        message_id_domain=domain_of(settings.mail_from),
    )
    row = OutgoingMail(
        kind=content.kind,
        subscriber_id=subscriber_id,
        recipient=content.to,
        message=message,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    # The web layer sends what a request queued as soon as it has committed.
    session.info.setdefault(_QUEUED, []).append(row.id)
    return row


def take_queued(session: Session) -> list[int]:
    """Return and forget the ids of the mail queued in ``session`` (after its commit)."""
    queued: list[int] = session.info.pop(_QUEUED, [])
    return queued


_warned = False


def warn_not_configured() -> None:
    """Log once per process that mail waits in the outbox for want of an SMTP server."""
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "UNSUBSVC_SMTP_URL is not set: mail unsubsvc sends stays queued in the outbox "
            "('unsubsvc outbox list') until it is set and 'unsubsvc outbox deliver' runs"
        )


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try after ``attempts`` failed tries."""
    wait: timedelta = FIRST_BACKOFF * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, MAX_BACKOFF)


def deliver_due(
    session_factory: Transactions,
    settings: Settings,
    *,
    now: datetime,
    limit: int = DEFAULT_BATCH,
    ids: Sequence[int] | None = None,
    owner: str | None = None,
    transport: SmtpTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` messages due at ``now`` (only ``ids`` if given); return counts.

    ``session_factory`` makes sessions; each claim and each record is a short
    transaction of its own and none is open while talking SMTP. ``clock`` (default:
    ``now``) dates the outcomes.
    """
    if settings.smtp_url is None and transport is None:
        warn_not_configured()
        return DeliveryReport(not_configured=True)
    owner = owner or new_owner()
    clock = clock or (lambda: now)
    claim = Claim(owner, now + LEASE)
    with session_factory() as session, session.begin():
        claimed = _claim(session, now=now, claim=claim, limit=limit, ids=ids)
    if not claimed:
        return DeliveryReport()
    sent = retrying = failed = 0
    smtp = transport or SmtpTransport(settings.smtp_url or "")
    with smtp:
        for index, (row_id, recipient, message, attempts, created_at) in enumerate(claimed):
            if claim.until - clock() <= timedelta(seconds=smtp.timeout * 6):
                # Too little of the lease is left for a whole exchange: give the rest back.
                with session_factory() as session, session.begin():
                    LEASES.release(session, [c[0] for c in claimed[index:]], claim)
                break
            error: SendError | None = None
            try:
                smtp.send(settings.mail_from, recipient, message)
            except SendError as exc:
                error = exc
            finished = clock()
            with session_factory() as session, session.begin():
                outcome = _record(
                    session,
                    row_id,
                    claim=claim,
                    error=error,
                    attempts=attempts + 1,
                    created_at=created_at,
                    now=finished,
                )
            if outcome == "sent":
                sent += 1
            elif outcome == "failed":
                failed += 1
                log.warning("mail %s to the outbox recipient failed for good: %s", row_id, error)
            elif outcome == "retrying":
                retrying += 1
                log.info("mail %s not sent, will retry: %s", row_id, error)
    return DeliveryReport(sent=sent, retrying=retrying, failed=failed)


#: Outgoing mail is leased like webhook deliveries; a sent row is never claimed again.
LEASES = LeasedTable(
    OutgoingMail,
    OutgoingMail.id,
    OutgoingMail.leased_until,
    OutgoingMail.lease_owner,
    pending=OutgoingMail.sent_at.is_(None),
)


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        OutgoingMail.sent_at.is_(None),
        OutgoingMail.failed_at.is_(None),
        OutgoingMail.next_attempt_at <= now,
        LEASES.free(now),
    )


def _claim(
    session: Session,
    *,
    now: datetime,
    claim: Claim,
    limit: int,
    ids: Sequence[int] | None,
) -> list[tuple[int, str, bytes, int, datetime]]:
    """Lease up to ``limit`` due rows for ``claim``, oldest first; return what to send."""
    query = select(OutgoingMail.id).where(*_due(now)).order_by(OutgoingMail.id).limit(limit)
    if ids is not None:
        query = query.where(OutgoingMail.id.in_(list(ids)))
    candidates = list(session.scalars(query))
    if not candidates:
        return []
    LEASES.take(session, candidates, claim, *_due(now))
    rows = session.execute(
        select(
            OutgoingMail.id,
            OutgoingMail.recipient,
            OutgoingMail.message,
            OutgoingMail.attempts,
            OutgoingMail.created_at,
        )
        .where(OutgoingMail.id.in_(candidates), *LEASES.held(claim))
        .order_by(OutgoingMail.id)
    )
    return [(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]


def _record(
    session: Session,
    row_id: int,
    *,
    claim: Claim,
    error: SendError | None,
    attempts: int,
    created_at: datetime,
    now: datetime,
) -> str:
    """Record one try if the lease is still ours; return "sent", "retrying", "failed" or "lost"."""
    values: dict[str, object] = {"attempts": attempts}
    if error is None:
        outcome = "sent"
        values.update(sent_at=now, message=b"", last_error=None)
    else:
        values["last_error"] = str(error)
        next_try = now + backoff(attempts)
        if error.permanent or next_try - _aware(created_at, now) > GIVE_UP_AFTER:
            outcome = "failed"
            values.update(failed_at=now, message=b"")
        else:
            outcome = "retrying"
            values["next_attempt_at"] = next_try
    return outcome if LEASES.settle(session, row_id, claim, values) else "lost"


def _aware(moment: datetime, like: datetime) -> datetime:
    """Return ``moment`` with ``like``'s zone if the database dropped it (SQLite)."""
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment


def purge(session: Session, *, now: datetime, retention_days: int) -> int:
    """Delete sent and failed rows older than ``retention_days``; return how many."""
    cutoff = now - timedelta(days=retention_days)
    result = session.execute(
        delete(OutgoingMail)
        .where(
            or_(OutgoingMail.sent_at < cutoff, OutgoingMail.failed_at < cutoff),
        )
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)  # noqa: S101 (a DELETE's result)
    session.flush()
    return result.rowcount


def list_mail(session: Session, *, limit: int = 100) -> list[OutboxRow]:
    """Return the newest ``limit`` outbox rows, without their bodies."""
    rows = session.scalars(select(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(limit)).all()
    return [
        OutboxRow(
            id=r.id,
            kind=r.kind,
            recipient=r.recipient,
            created_at=r.created_at,
            attempts=r.attempts,
            status="sent" if r.sent_at else "failed" if r.failed_at else "queued",
            next_attempt_at=None if (r.sent_at or r.failed_at) else r.next_attempt_at,
            sent_at=r.sent_at,
            failed_at=r.failed_at,
            last_error=r.last_error,
        )
        for r in rows
    ]
