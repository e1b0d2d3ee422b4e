"""Outgoing webhooks: endpoints, and delivering the outbox at least once, in order per recipient.

``services.events.queue_webhooks`` writes each event into every active
endpoint's outbox (``WebhookDelivery``) in the change's own transaction; this
module sends those rows. A row is committed as delivered only after the
receiver answered 2xx, so a crash between the two sends it again: receivers
deduplicate on ``Unsubsvc-Delivery-Id``.

Order: a row is not attempted while an earlier row for the same endpoint and
subscriber is still undelivered, so a receiver that was down cannot see a
resubscribe before the unsubscribe it undoes. One recipient's failing row
holds back only that recipient's later rows at that endpoint.

Concurrency: on PostgreSQL each row is locked (``FOR UPDATE SKIP LOCKED``)
while it is being sent, so several deliverers can run side by side without
sending a row twice. SQLite has no row locks: run a single deliverer there.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import IO, Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session, aliased

from unsubsvc.core.errors import InvalidInput, NotFound
from unsubsvc.core.webhooks import SIGNATURE_HEADER, backoff, new_secret, sign
from unsubsvc.db.models import Webhook, WebhookAttempt, WebhookDelivery

#: ``post(url, body, headers) -> status code``; raises OSError (URLError, timeouts) when
#: no answer came.
Post = Callable[[str, bytes, dict[str, str]], int]
Clock = Callable[[], datetime]
#: Opens a unit of work: a session committed when the block ends, rolled back if it raises.
Transactions = Callable[[], AbstractContextManager[Session]]

USER_AGENT = "unsubsvc-webhooks"
EVENT_ID_HEADER = "Unsubsvc-Event-Id"
DELIVERY_ID_HEADER = "Unsubsvc-Delivery-Id"
#: Seconds to wait for a receiver to answer.
DEFAULT_TIMEOUT = 10.0
MAX_URL_LENGTH = 2000
#: Error texts are kept short: they are for people reading the attempt log.
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as listed: where it is, whether it is active, and how much it is owed."""

    id: int
    url: str
    active: bool
    pending: int
    created_at: datetime
    disabled_at: datetime | None


@dataclass
class DeliveryStats:
    """What one delivery run did: rows attempted, and how many were accepted or failed."""

    attempted: int = 0
    delivered: int = 0
    failed: int = 0

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(
            self.attempted + other.attempted,
            self.delivered + other.delivered,
            self.failed + other.failed,
        )

    def __str__(self) -> str:
        return f"{self.attempted} attempted, {self.delivered} delivered, {self.failed} failed"


def check_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise InvalidInput."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"a webhook URL must be 1-{MAX_URL_LENGTH} characters long")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("a webhook URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise InvalidInput(f"not a valid URL: {url!r} ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"a webhook URL must start with http:// or https://, not {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"a webhook URL needs a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("a webhook URL must not carry credentials; verify the signature instead")
    return url


def add_endpoint(session: Session, url: str, *, now: datetime) -> tuple[Webhook, str]:
    """Register an endpoint for every future change; return it and its secret.

    Events committed before this call are not sent to it: the outbox gets
    rows only for endpoints that are active when a change is made.
    """
    webhook = Webhook(url=check_url(url), secret=new_secret(), created_at=now, disabled_at=None)
    session.add(webhook)
    session.flush()
    return webhook, webhook.secret


def list_endpoints(session: Session) -> list[Endpoint]:
    """Return every endpoint, oldest first, with its count of undelivered rows."""
    pending = (
        select(WebhookDelivery.webhook_id, func.count().label("n"))
        .where(WebhookDelivery.delivered_at.is_(None))
        .group_by(WebhookDelivery.webhook_id)
        .subquery()
    )
    rows = session.execute(
        select(Webhook, func.coalesce(pending.c.n, 0))
        .outerjoin(pending, pending.c.webhook_id == Webhook.id)
        .order_by(Webhook.id)
    )
    return [
        Endpoint(
            id=hook.id,
            url=hook.url,
            active=hook.disabled_at is None,
            pending=int(count),
            created_at=hook.created_at,
            disabled_at=hook.disabled_at,
        )
        for hook, count in rows
    ]


def disable_endpoint(session: Session, webhook_id: int, *, now: datetime) -> Webhook:
    """Stop sending to an endpoint (its undelivered rows stay, unsent)."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook with id {webhook_id}")
    if webhook.disabled_at is None:  # disabling twice keeps the first date
        webhook.disabled_at = now
    session.flush()
    return webhook


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answer 3xx as an error: a signed POST is not replayed to wherever it points."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_post(
    url: str, body: bytes, headers: dict[str, str], timeout: float = DEFAULT_TIMEOUT
) -> int:
    """POST ``body`` to ``url`` and return the status code (3xx included, never followed)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ValueError(f"refusing to POST to a non-HTTP URL: {url!r}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        response: Any
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        # urllib raises for every status it does not handle; its body must be closed.
        exc.close()
        return int(exc.code)


def deliver_due(
    transactions: Transactions,
    *,
    post: Post = http_post,
    now: datetime | Clock,
    batch: int = 100,
    stop: Callable[[], bool] | None = None,
) -> DeliveryStats:
    """Send every outbox row that is due, oldest first, each in its own transaction; return counts.

    ``transactions`` opens a unit of work (a session committed when the block
    ends, rolled back if it raises): each row is claimed, sent and recorded in
    one, so a crash loses at most the row being sent, which is then sent again.
    ``now`` is a time or a clock. The rows due are those due at the start; a
    clock is read again for each row, so signatures carry the time of sending
    even when earlier receivers were slow. Rows are read ``batch`` at a time
    until none is left; ``stop`` (checked between rows) ends the run early.
    """
    clock = now if callable(now) else _fixed(now)
    cutoff = clock()
    stats = DeliveryStats()
    while True:
        with transactions() as session:
            candidates = list(
                session.scalars(
                    select(WebhookDelivery.id)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(*_due(cutoff))
                    .order_by(WebhookDelivery.id)
                    .limit(batch)
                )
            )
        progressed = False
        for delivery_id in candidates:
            if stop is not None and stop():
                return stats
            with transactions() as session:
                if _deliver_one(session, delivery_id, cutoff, post, clock, stats):
                    progressed = True
        # A run ends when a pass sends nothing: the rest is not due, waits behind an
        # earlier row, or is being sent by another deliverer.
        if not progressed:
            return stats


def _fixed(moment: datetime) -> Clock:
    """Return a clock that always says ``moment``."""

    def clock() -> datetime:
        return moment

    return clock


def _due(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    """Return the conditions for an outbox row that may be sent now (Webhook joined)."""
    earlier = aliased(WebhookDelivery)
    waiting_behind = exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.subscriber_id == WebhookDelivery.subscriber_id,
        earlier.delivered_at.is_(None),
        earlier.id < WebhookDelivery.id,
    )
    return (
        WebhookDelivery.delivered_at.is_(None),
        WebhookDelivery.next_attempt_at <= cutoff,
        Webhook.disabled_at.is_(None),
        ~waiting_behind,
    )


def _deliver_one(
    session: Session,
    delivery_id: int,
    cutoff: datetime,
    post: Post,
    clock: Clock,
    stats: DeliveryStats,
) -> bool:
    """Claim one row, send it and record the outcome; return whether it was attempted."""
    # Check the row again as it is claimed: another deliverer may have sent it,
    # or be sending it (locked, so skipped), since the candidates were read.
    claim = (
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id == delivery_id, *_due(cutoff))
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Lock only the outbox row: locking the webhook row too would make
        # other deliverers skip every row of that endpoint.
        claim = claim.with_for_update(skip_locked=True, of=WebhookDelivery)
    row = session.execute(claim).first()
    if row is None:
        return False
    delivery, url, secret = row
    body = delivery.payload.encode("utf-8")
    started = clock()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body, int(started.timestamp())),
        EVENT_ID_HEADER: str(delivery.event_id),
        DELIVERY_ID_HEADER: str(delivery.id),
    }
    status: int | None = None
    error: str | None = None
    try:
        status = post(url, body, headers)
    except Exception as exc:  # any failure of one row is recorded and retried, not fatal
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    finished = clock()
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id, attempted_at=started, status_code=status, error=error
        )
    )
    stats.attempted += 1
    if status is not None and 200 <= status < 300:
        delivery.delivered_at = finished
        stats.delivered += 1
    else:
        if error is None:
            error = f"HTTP {status}"
            if status is not None and 300 <= status < 400:
                error += " (redirects are not followed)"
        # ``attempts`` counts failures, so the wait after the n-th is backoff(n).
        delivery.attempts += 1
        delivery.last_error = error
        delivery.next_attempt_at = max(finished, cutoff) + backoff(delivery.attempts)
        stats.failed += 1
    return True
