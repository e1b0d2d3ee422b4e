"""Outgoing webhooks: endpoints, and delivering the outbox once, in order per recipient.

``services.events.queue_webhooks`` writes each event into every active
endpoint's outbox (``WebhookDelivery``) in the change's own transaction; this
module sends those rows.

Leases, not row locks: a deliverer claims a few rows of one endpoint in a short
transaction (``leased_until``/``lease_owner``, set by a conditional UPDATE that
works alike on SQLite and PostgreSQL), commits, POSTs outside any transaction,
then records the answer in a second short transaction only if the lease is
still its own. Several deliverers can share the outbox; a row whose deliverer
died is taken over once its lease runs out. A POST starts only while the lease
has longer to run than the HTTP timeout, so a live owner has recorded before
anyone else may claim the row: each row is sent once. Only an owner stalled
beyond its lease, or one that crashed between the answer and the record, gets
a row sent twice, so receivers still deduplicate on ``webhook-id`` (the same on
every attempt at a row, ``core.webhooks.message_id``).

Order: a row is not claimed while an earlier row for the same endpoint and
subscriber is undelivered, so a receiver that was down cannot see a
resubscribe before the unsubscribe it undoes. One recipient's failing row
holds back only that recipient's later rows at that endpoint.

Endpoints apart: a ``Deliverer`` sends to each endpoint from a thread of its
own, so a receiver that accepts and never answers ties up one thread until the
timeout and delays no other endpoint. An endpoint that has accepted nothing
for ``core.webhooks.FAILING_LIMIT`` while failing is disabled, and delivered
rows are purged after the retention period (``purge_delivered``), as are all
rows of an endpoint disabled for that long.

Where to: an endpoint must be a public address (``core.network``), checked
when it is registered and again before every POST, which connects to the very
address it checked (a name that resolved to a public address at registration
may resolve to 127.0.0.1 later: DNS rebinding). Secrets are stored encrypted
(``core.secret_box``) and decrypted only to sign. ``rotate_secret`` replaces an
endpoint's secret and keeps the old one signing too (a second signature) for an
overlap, so a receiver can switch over without dropping a delivery.
"""

from __future__ import annotations

import enum
import functools
import http.client
import socket
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, cast
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import ColumnElement, CursorResult, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from unsubsvc.core.errors import Conflict, InvalidInput, NotFound
from unsubsvc.core.keys import Keyring
from unsubsvc.core.network import (
    UrlPolicy,
    check_addresses,
    check_host,
    check_scheme,
)
from unsubsvc.core.secret_box import SecretBox, UnreadableSecret
from unsubsvc.core.webhooks import (
    backoff,
    check_overlap,
    disabled_reason,
    failing_too_long,
    message_id,
    new_secret,
    previous_signs,
    retention_cutoff,
    sign,
)
from unsubsvc.db.models import Webhook, WebhookAttempt, WebhookDelivery
from unsubsvc.services.leases import Claim, LeasedTable, new_owner
from unsubsvc.settings import Settings

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
#: How long a claim keeps other deliverers off a row: several timeouts, so a batch
#: gets through, and short enough that a dead deliverer's rows move on within a minute.
DEFAULT_LEASE = timedelta(seconds=60)
#: Rows of one endpoint claimed at a time.
DEFAULT_BATCH = 10
#: Delivered rows purged per statement: each stays well within the statement timeout.
PURGE_CHUNK = 1000
#: Endpoints sent to at once by one deliverer (and hanging ones waited on before others queue).
DEFAULT_WORKERS = 8
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
    #: When deliveries started failing with no success since; None while it works.
    failing_since: datetime | None = None
    #: Why it is disabled (an operator, or failing too long); None while active.
    disabled_reason: str | None = None
    #: After a rotation, until when the replaced secret still signs too; None otherwise.
    previous_secret_until: datetime | None = None


@dataclass
class DeliveryStats:
    """What a delivery run did: rows attempted, and how many were accepted or failed.

    ``lost`` counts answers not recorded because the row's lease had been
    taken over by another deliverer by then (that one's answer counts).
    """

    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    lost: int = 0

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(
            self.attempted + other.attempted,
            self.delivered + other.delivered,
            self.failed + other.failed,
            self.lost + other.lost,
        )

    def __str__(self) -> str:
        text = f"{self.attempted} attempted, {self.delivered} delivered, {self.failed} failed"
        return text + (f", {self.lost} lost to another deliverer" if self.lost else "")


@dataclass(frozen=True)
class PurgeStats:
    """What a purge removed: delivered outbox rows and their attempts."""

    deliveries: int
    attempts: int

    def __add__(self, other: PurgeStats) -> PurgeStats:
        return PurgeStats(self.deliveries + other.deliveries, self.attempts + other.attempts)

    def __str__(self) -> str:
        return f"purged {self.deliveries} delivered rows and {self.attempts} attempts"


@dataclass(frozen=True)
class Lease:
    """An outbox row claimed by ``owner`` until ``until``, with what sending it needs."""

    delivery_id: int
    webhook_id: int
    event_id: int
    payload: str
    #: Failed attempts so far (the backoff after this one's failure follows from it).
    attempts: int
    url: str
    secret: str
    owner: str
    until: datetime
    #: When the row was queued: with its id, it makes the ``webhook-id``.
    created_at: datetime
    #: The endpoint's replaced secret (sealed) and until when it signs too, after a rotation.
    previous_secret: str | None = None
    previous_until: datetime | None = None

    @property
    def claim(self) -> Claim:
        return Claim(self.owner, self.until)


@dataclass(frozen=True)
class ResealStats:
    """What ``encrypt_stored_secrets`` did: secrets (re-)encrypted, and ones no key opens."""

    resealed: int
    unreadable: int

    def __str__(self) -> str:
        text = f"{self.resealed} webhook secrets encrypted under the newest key"
        if self.unreadable:
            text += f"; {self.unreadable} cannot be decrypted with any configured key"
        return text


class RefusedDestination(OSError):
    """A webhook that is not sent: its URL or the addresses its host resolves to are refused."""


class Outcome(enum.Enum):
    """What recording an answer did."""

    DELIVERED = "delivered"
    FAILED = "failed"
    #: The lease was no longer ours: nothing recorded.
    LOST = "lost"


def url_policy(settings: Settings) -> UrlPolicy:
    """Return where webhooks may go under ``settings``: https only in production."""
    return UrlPolicy(https_only=settings.production, allow_private=settings.webhook_allow_private)


def resolve(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to for TCP (raises OSError if it does not)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def check_url(url: str, policy: UrlPolicy | None = None) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise InvalidInput.

    With a ``policy``, its scheme and an IP-literal or local host are checked
    too (no DNS lookup: ``check_destination`` does that).
    """
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
    if policy is not None:
        check_scheme(parts.scheme, policy)
        check_host(parts.hostname, policy)
    return url


def check_destination(url: str, policy: UrlPolicy) -> str:
    """Return ``url`` if it may be registered under ``policy``, else raise InvalidInput.

    The host is resolved, and every address it has must be public. A name that
    does not resolve (yet) is accepted: a receiver may be registered before its
    DNS record exists, DNS may be briefly down, and what protects the network
    is the same check before every POST, which refuses to send to it then.
    """
    check_url(url, policy)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if policy.allow_private or check_host(host, policy) is not None:
        return url  # nothing to resolve: everything allowed, or an address checked above
    try:
        addresses = resolve(host, _port(parts))
    except (OSError, UnicodeError):
        return url
    check_addresses(host, addresses, policy)
    return url


def add_endpoint(
    session: Session,
    url: str,
    *,
    now: datetime,
    keyring: Keyring,
    policy: UrlPolicy,
    max_endpoints: int,
) -> tuple[Webhook, str]:
    """Register an endpoint for every future change; return it and its secret (in clear).

    Events committed before this call are not sent to it: the outbox gets
    rows only for endpoints that are active when a change is made. At most
    ``max_endpoints`` may be active at once (Conflict beyond): each one gets a
    copy of every change, so the count bounds the work one change makes.
    """
    check_url(url, policy)
    active = session.scalar(
        select(func.count()).select_from(Webhook).where(Webhook.disabled_at.is_(None))
    )
    if (active or 0) >= max_endpoints:
        raise Conflict(
            f"there are already {active} active webhook endpoints, the most allowed "
            f"(UNSUBSVC_WEBHOOK_MAX_ENDPOINTS={max_endpoints}); disable one first"
        )
    check_destination(url, policy)
    secret = new_secret()
    sealed = SecretBox.from_keyring(keyring).seal(secret)
    webhook = Webhook(url=url, secret=sealed, created_at=now, disabled_at=None)
    session.add(webhook)
    session.flush()
    return webhook, secret


def encrypt_stored_secrets(session: Session, keyring: Keyring) -> ResealStats:
    """Encrypt under the newest key every secret that is plaintext or under an older key.

    Plaintext ``whsec_`` secrets were written before secrets were encrypted;
    ciphertexts under an older key remain after a key rotation, and once all
    are resealed the old secret key can be removed from the configuration.
    """
    box = SecretBox.from_keyring(keyring)
    resealed = unreadable = 0
    for webhook in session.scalars(select(Webhook).order_by(Webhook.id)):
        if not box.is_current(webhook.secret):
            try:
                webhook.secret = box.reseal(webhook.secret)
            except UnreadableSecret:
                unreadable += 1
            else:
                resealed += 1
        # The secret a rotation replaced signs too while its overlap lasts.
        previous = webhook.previous_secret
        if previous is not None and not box.is_current(previous):
            try:
                webhook.previous_secret = box.reseal(previous)
            except UnreadableSecret:
                unreadable += 1
            else:
                resealed += 1
    session.flush()
    return ResealStats(resealed=resealed, unreadable=unreadable)


def rotate_secret(
    session: Session,
    webhook_id: int,
    *,
    now: datetime,
    keyring: Keyring,
    overlap: timedelta,
) -> tuple[Webhook, str]:
    """Give an endpoint a new secret; return it and the secret (in clear, shown once).

    For ``overlap`` after ``now`` every delivery is signed with the new and the
    replaced secret (two ``v1`` values), so the receiver can switch to the new
    one at any time in between; an overlap of zero drops the old secret at once.
    A secret that an earlier rotation replaced stops signing now. A current
    secret no configured key decrypts is dropped, not kept (it cannot sign).
    """
    try:
        check_overlap(overlap)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook with id {webhook_id}")
    box = SecretBox.from_keyring(keyring)
    previous: str | None = None
    if overlap > timedelta(0):
        try:
            previous = box.reseal(webhook.secret)
        except UnreadableSecret:
            previous = None
    secret = new_secret()
    webhook.secret = box.seal(secret)
    webhook.previous_secret = previous
    webhook.previous_secret_until = None if previous is None else now + overlap
    session.flush()
    return webhook, secret


def list_endpoints(session: Session, *, now: datetime) -> list[Endpoint]:
    """Return every endpoint, oldest first, with its count of undelivered rows.

    ``previous_secret_until`` is given only while the replaced secret still
    signs at ``now``: a past overlap says nothing a receiver can act on.
    """
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
            failing_since=hook.failing_since,
            disabled_reason=disabled_reason(hook.disabled_at, hook.failing_since),
            previous_secret_until=(
                hook.previous_secret_until
                if previous_signs(hook.previous_secret_until, now)
                else None
            ),
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


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``host`` made to the vetted ``address``, not to a fresh lookup."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Return the client TLS context: system CAs, CERT_REQUIRED, check_hostname.

    Made once: loading the CA store takes a tenth of a second or more, and an
    SSLContext may be shared by threads (Python ``ssl`` docs).
    """
    return ssl.create_default_context()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the vetted ``address``; SNI and the certificate check use ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self.tls = tls_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        try:
            # The Host header comes from ``host`` as well (http.client.putrequest).
            self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def pinned_address(url: str, policy: UrlPolicy) -> str:
    """Return the address to connect to for ``url``; raise RefusedDestination if refused.

    The name is resolved now, every address it has must pass ``policy``, and
    the caller connects to the one returned: the check and the connection see
    the same answer, so a second lookup cannot swap in 127.0.0.1.
    """
    try:
        check_url(url, policy)
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = check_host(host, policy)
        if literal is not None:
            return str(literal)
        addresses = resolve(host, _port(parts))
        check_addresses(host, addresses, policy)
    except InvalidInput as exc:
        raise RefusedDestination(str(exc)) from None
    if not addresses:
        raise RefusedDestination(f"{host!r} has no address")
    return addresses[0]


def http_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    policy: UrlPolicy | None = None,
) -> int:
    """POST ``body`` to ``url`` and return the status code (3xx included, never followed).

    ``policy`` (default: public https only) decides where it may go; a refused
    destination raises RefusedDestination before any connection is made.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"refusing to POST to a non-HTTP URL: {url!r}")
    address = pinned_address(url, policy or UrlPolicy())
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    conn = kind(parts.hostname or "", _port(parts), address=address, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        return int(conn.getresponse().status)
    finally:
        conn.close()


def _port(parts: SplitResult) -> int:
    """Return the URL's port, or its scheme's default."""
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def due_endpoints(session: Session, *, cutoff: datetime, now: datetime) -> list[int]:
    """Return the active endpoints with a row to claim: due by ``cutoff``, unleased at ``now``."""
    return list(
        session.scalars(
            select(WebhookDelivery.webhook_id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(*_claimable(cutoff, now))
            .distinct()
            .order_by(WebhookDelivery.webhook_id)
        )
    )


def claim(
    session: Session,
    webhook_id: int,
    *,
    owner: str,
    cutoff: datetime,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[Lease]:
    """Lease up to ``limit`` rows of one endpoint that may be sent now, oldest first."""
    ids = list(
        session.scalars(
            select(WebhookDelivery.id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.webhook_id == webhook_id, *_claimable(cutoff, now))
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
    )
    if not ids:
        return []
    claim = Claim(owner, now + lease)
    LEASES.take(
        session,
        ids,
        claim,
        WebhookDelivery.delivered_at.is_(None),
        WebhookDelivery.next_attempt_at <= cutoff,
        LEASES.free(now),
    )
    rows = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.payload,
            WebhookDelivery.attempts,
            WebhookDelivery.created_at,
            Webhook.url,
            Webhook.secret,
            Webhook.previous_secret,
            Webhook.previous_secret_until,
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids), *LEASES.held(claim))
        .order_by(WebhookDelivery.id)
    )
    return [
        Lease(
            delivery_id=row.id,
            webhook_id=webhook_id,
            event_id=row.event_id,
            payload=row.payload,
            attempts=row.attempts,
            url=row.url,
            secret=row.secret,
            owner=owner,
            until=claim.until,
            created_at=row.created_at,
            previous_secret=row.previous_secret,
            previous_until=row.previous_secret_until,
        )
        for row in rows
    ]


def release(session: Session, leases: Sequence[Lease]) -> None:
    """Give back claimed rows that were not sent, so that any deliverer may send them now."""
    for lease in leases:
        LEASES.release(session, [lease.delivery_id], lease.claim)
    session.flush()


def record(
    session: Session,
    lease: Lease,
    *,
    status: int | None,
    error: str | None,
    started: datetime,
    finished: datetime,
    cutoff: datetime,
) -> Outcome:
    """Record the answer to one POST, if the row's lease is still ``lease``; say what was done.

    A lease taken over by another deliverer (ours ran out, someone claimed the
    row) makes this a no-op: that deliverer sends and records the row, and a
    row once delivered is never claimed again.
    """
    delivered = status is not None and 200 <= status < 300
    if delivered:
        values: dict[str, Any] = {"delivered_at": finished}
    else:
        if error is None:
            error = f"HTTP {status}"
            if status is not None and 300 <= status < 400:
                error += " (redirects are not followed)"
        # ``attempts`` counts failures, so the wait after the n-th is backoff(n).
        values = {
            "attempts": WebhookDelivery.attempts + 1,
            "last_error": error,
            "next_attempt_at": max(finished, cutoff) + backoff(lease.attempts + 1),
        }
    if not LEASES.settle(session, lease.delivery_id, lease.claim, values):
        return Outcome.LOST
    session.add(
        WebhookAttempt(
            delivery_id=lease.delivery_id,
            attempted_at=started,
            status_code=status,
            error=None if status is not None else error,
        )
    )
    if delivered:
        # Conditional, so a working endpoint's row is not written on every delivery.
        session.execute(
            update(Webhook)
            .where(Webhook.id == lease.webhook_id, Webhook.failing_since.is_not(None))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
    else:
        _note_failure(session, lease.webhook_id, started=started, now=finished)
    session.flush()
    return Outcome.DELIVERED if delivered else Outcome.FAILED


def _note_failure(session: Session, webhook_id: int, *, started: datetime, now: datetime) -> None:
    """Mark the endpoint failing since this attempt if it was not; disable it if too long."""
    session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.failing_since.is_(None))
        .values(failing_since=started)
        .execution_options(synchronize_session=False)
    )
    since = session.scalar(select(Webhook.failing_since).where(Webhook.id == webhook_id))
    if since is not None and failing_too_long(since, now):
        session.execute(
            update(Webhook)
            .where(
                Webhook.id == webhook_id,
                Webhook.disabled_at.is_(None),
                Webhook.failing_since == since,  # not if a success cleared it meanwhile
            )
            .values(disabled_at=now)
            .execution_options(synchronize_session=False)
        )


def purge_delivered(
    session: Session, *, now: datetime, retention_days: int, limit: int = PURGE_CHUNK
) -> PurgeStats:
    """Delete up to ``limit`` outbox rows past ``retention_days``, with their attempts.

    Past it are rows delivered before the cutoff, and every row of an endpoint
    disabled before it: each payload holds a recipient's address, and nothing
    sends a disabled endpoint's rows (re-registering makes a new endpoint).
    Other undelivered rows stay whatever their age: they are still owed. A call
    removing ``limit`` rows may have left more: callers repeat it, so no
    statement runs long.
    """
    cutoff = retention_cutoff(now, retention_days)
    long_disabled = select(Webhook.id).where(Webhook.disabled_at < cutoff)
    ids = list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(
                or_(
                    WebhookDelivery.delivered_at < cutoff,
                    WebhookDelivery.webhook_id.in_(long_disabled),
                )
            )
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
    )
    if not ids:
        return PurgeStats(deliveries=0, attempts=0)
    attempts = session.execute(
        delete(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    deliveries = session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return PurgeStats(
        deliveries=cast(CursorResult[Any], deliveries).rowcount,
        attempts=cast(CursorResult[Any], attempts).rowcount,
    )


@dataclass(frozen=True)
class _Turn:
    """One thread's turn at an endpoint: what it did, and whether it left nothing to claim."""

    stats: DeliveryStats
    exhausted: bool


class Deliverer:
    """Send the outbox from a pool of threads, each endpoint from one thread at a time.

    Threads because ``http.client`` blocks: a receiver that accepts and never answers
    holds one thread until the timeout, and the other endpoints go on in the
    others. ``workers`` bounds the endpoints sent to at once; past that many
    hanging endpoints, the rest queue for at most a timeout. Within an endpoint
    rows go one after the other, which keeps each recipient's order.

    ``poll`` (the long-running loop) starts a turn for every endpoint with rows
    due and returns without waiting for them; ``drain`` (one run) waits until
    nothing that was due at its start is left. ``stop`` is checked between rows.
    """

    def __init__(
        self,
        transactions: Transactions,
        *,
        clock: Clock,
        keyring: Keyring,
        policy: UrlPolicy,
        post: Post | None = None,
        owner: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        timeout: float = DEFAULT_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        batch: int = DEFAULT_BATCH,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        if lease <= timedelta(seconds=timeout):
            raise ValueError("the lease must outlast the HTTP timeout, or rows could be sent twice")
        self.transactions = transactions
        self.clock = clock
        self.box = SecretBox.from_keyring(keyring)
        self.post = post if post is not None else _post_with_timeout(timeout, policy)
        self.owner = owner or new_owner()
        self.lease = lease
        self.timeout = timedelta(seconds=timeout)
        self.batch = batch
        self.stopped = stop or (lambda: False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks")
        self._running: dict[int, Future[_Turn]] = {}

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def poll(self) -> DeliveryStats:
        """Collect the turns that ended; start one for each endpoint with rows due now."""
        stats, _ = self._collect()
        if not self.stopped():
            now = self.clock()
            with self.transactions() as session:
                due = due_endpoints(session, cutoff=now, now=now)
            for webhook_id in due:
                self._start(webhook_id, None)
        return stats

    def drain(self) -> DeliveryStats:
        """Send what is due now, every endpoint at once, and return when it is all done."""
        cutoff = self.clock()
        finished: set[int] = set()
        stats = DeliveryStats()
        while True:
            collected, exhausted = self._collect()
            stats += collected
            finished |= exhausted
            if not self.stopped():
                with self.transactions() as session:
                    due = due_endpoints(session, cutoff=cutoff, now=self.clock())
                for webhook_id in due:
                    if webhook_id not in finished:
                        self._start(webhook_id, cutoff)
            if not self._running:
                return stats
            wait(list(self._running.values()), return_when=FIRST_COMPLETED)

    def close(self) -> DeliveryStats:
        """Wait for the turns under way (they end at the next row once stopped); free the pool."""
        try:
            wait(list(self._running.values()))
            stats, _ = self._collect()
        finally:
            self._pool.shutdown(wait=True)
        return stats

    def _start(self, webhook_id: int, cutoff: datetime | None) -> None:
        if webhook_id not in self._running:
            self._running[webhook_id] = self._pool.submit(self._turn, webhook_id, cutoff)

    def _collect(self) -> tuple[DeliveryStats, set[int]]:
        """Take the turns that ended; return their counts and the endpoints left with nothing."""
        stats = DeliveryStats()
        exhausted: set[int] = set()
        for webhook_id, future in list(self._running.items()):
            if future.done():
                del self._running[webhook_id]
                turn = future.result()  # a database error surfaces here, to the loop
                stats += turn.stats
                if turn.exhausted:
                    exhausted.add(webhook_id)
        return stats, exhausted

    def _turn(self, webhook_id: int, cutoff: datetime | None) -> _Turn:
        """Send one endpoint's claimable rows, a batch at a time, until none is left."""
        stats = DeliveryStats()
        while not self.stopped():
            now = self.clock()
            due_by = now if cutoff is None else cutoff
            with self.transactions() as session:
                leases = claim(
                    session,
                    webhook_id,
                    owner=self.owner,
                    cutoff=due_by,
                    now=now,
                    lease=self.lease,
                    limit=self.batch,
                )
            if not leases:
                return _Turn(stats, exhausted=True)
            for index, lease in enumerate(leases):
                # Start a POST only if it ends (timeout) before the lease does: then no
                # one else can claim the row before this deliverer has recorded it.
                if self.stopped() or lease.until - self.clock() <= self.timeout:
                    with self.transactions() as session:
                        release(session, leases[index:])
                    return _Turn(stats, exhausted=False)
                stats += self._send(lease, due_by)
        return _Turn(stats, exhausted=False)

    def _secrets(self, lease: Lease, at: datetime) -> list[str]:
        """Return the secrets to sign ``lease`` with at ``at``, in clear (new one first).

        After a rotation the replaced secret signs too while its overlap lasts,
        unless no configured key opens it: the new one still signs then.
        """
        keys = [self.box.open(lease.secret)]
        if lease.previous_secret is not None and previous_signs(lease.previous_until, at):
            try:
                keys.append(self.box.open(lease.previous_secret))
            except UnreadableSecret:
                pass
        return keys

    def _send(self, lease: Lease, cutoff: datetime) -> DeliveryStats:
        """POST one leased row outside any transaction, then record the answer in one."""
        body = lease.payload.encode("utf-8")
        started = self.clock()
        status: int | None = None
        error: str | None = None
        try:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **sign(
                    self._secrets(lease, started),
                    message_id(lease.delivery_id, lease.created_at),
                    int(started.timestamp()),
                    body,
                ),
                EVENT_ID_HEADER: str(lease.event_id),
                DELIVERY_ID_HEADER: str(lease.delivery_id),
            }
            status = self.post(lease.url, body, headers)
        except Exception as exc:  # any failure of one row is recorded and retried, not fatal
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        finished = self.clock()
        with self.transactions() as session:
            outcome = record(
                session,
                lease,
                status=status,
                error=error,
                started=started,
                finished=finished,
                cutoff=cutoff,
            )
        return DeliveryStats(
            attempted=1,
            delivered=int(outcome is Outcome.DELIVERED),
            failed=int(outcome is Outcome.FAILED),
            lost=int(outcome is Outcome.LOST),
        )


def deliver_due(
    transactions: Transactions,
    *,
    keyring: Keyring,
    policy: UrlPolicy,
    post: Post | None = None,
    now: datetime | Clock,
    batch: int = DEFAULT_BATCH,
    stop: Callable[[], bool] | None = None,
    owner: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
) -> DeliveryStats:
    """Send every outbox row due now, each endpoint from a thread of its own; return counts.

    ``transactions`` opens a unit of work (a session committed when the block
    ends, rolled back if it raises): claims and results are short transactions
    of their own, and no transaction is open during a POST. ``now`` is a time or
    a clock; the rows due are those due at the start, and a clock is read again
    for each row, so signatures carry the time of sending. ``batch`` rows of an
    endpoint are claimed at a time; ``stop`` (checked between rows) ends the run
    early. ``keyring`` decrypts the endpoints' secrets; ``post`` defaults to
    ``http_post`` with ``timeout`` and ``policy``.
    """
    clock = now if callable(now) else _fixed(now)
    with Deliverer(
        transactions,
        clock=clock,
        keyring=keyring,
        policy=policy,
        post=post,
        owner=owner,
        lease=lease,
        timeout=timeout,
        workers=workers,
        batch=batch,
        stop=stop,
    ) as deliverer:
        return deliverer.drain()


def _post_with_timeout(timeout: float, policy: UrlPolicy) -> Post:
    """Return ``http_post`` bound to ``timeout`` seconds and ``policy``."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return http_post(url, body, headers, timeout=timeout, policy=policy)

    return post


def _fixed(moment: datetime) -> Clock:
    """Return a clock that always says ``moment``."""

    def clock() -> datetime:
        return moment

    return clock


#: Deliveries are leased rows (``services.leases``); a delivered row is never claimed again.
LEASES = LeasedTable(
    WebhookDelivery,
    WebhookDelivery.id,
    WebhookDelivery.leased_until,
    WebhookDelivery.lease_owner,
    pending=WebhookDelivery.delivered_at.is_(None),
)


def _claimable(cutoff: datetime, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Return the conditions for an outbox row that may be claimed (Webhook joined)."""
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
        LEASES.free(now),
        Webhook.disabled_at.is_(None),
        ~waiting_behind,
    )
