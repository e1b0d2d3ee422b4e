"""Rate limits: refuse floods of bad tokens, passwords and API keys, never a valid click.

Counts live in the ``limits`` library's storage named by
UNSUBSVC_RATELIMIT_STORAGE_URL (``memory://`` per process; ``redis://`` shared
by several app servers), in a moving window: at most N in *any* span of the
window's length, with no burst at a window's edge (the storage keeps at most N
timestamps per client, and only clients that fail get any). Each app owns its
``Throttle`` (``app.extensions``), so apps built in one process do not share
counts unless they share a Redis.

Only failures are counted, and only failures are checked, after the cheap
check that failed (an HMAC for tokens, a key lookup for the API): a mail
provider's proxy posting thousands of valid one-clicks from one address never
meets a limit, and a valid one-click never waits on the storage. Admin sign-in
is the exception: every POST is counted and checked *before* the password's
scrypt work, since that work is what a flood is after.

If the storage fails (Redis down), the limits fall back to this process's
memory for a while and say so in the log: nothing is refused because the
storage died, least of all an unsubscribe.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.exceptions import TooManyRequests

from unsubsvc.core.errors import InvalidToken, NotFound
from unsubsvc.web.context import runtime_of

log = logging.getLogger(__name__)

_EXTENSION = "unsubsvc.throttle"


@dataclass(frozen=True)
class Limit:
    """What is counted (its name, a key prefix) and how many per window are allowed."""

    name: str
    items: tuple[RateLimitItem, ...]
    message: str


#: Invalid or unknown tokens on /u/ and /p/ per client address. A person mistyping or
#: pasting a cut link makes a handful; 60 a minute still lets a shared NAT (an office, a
#: mobile carrier) through, and turns a 600-in-10-seconds sweep into 60 useful guesses.
#: Guessing a 256-bit HMAC is hopeless anyway: the limit is about load and log noise.
BAD_TOKENS = Limit(
    "bad-token",
    tuple(parse_many("60/minute")),
    "Too many links from your address could not be read. Please wait a minute and try again.",
)
#: Admin sign-in POSTs per client address, counted before any password hashing. Each
#: attempt costs a scrypt (32 MiB and a fraction of a second of a core), so one address
#: gets one at a time (1 per 2 seconds: nobody retypes a password faster, and a burst
#: or parallel flood costs one scrypt, not twenty), 5 a minute (an admin who mistypes
#: is in within 5 tries) and 20 an hour (a slow guesser gets 480 a day per address; the
#: per-account lockout in ``services.admin_users`` covers many addresses).
ADMIN_SIGN_IN = Limit(
    "admin-sign-in",
    tuple(parse_many("1 per 2 seconds;5 per minute;20 per hour")),
    "Too many sign-in attempts from your address. Please wait before trying again.",
)
#: Bearer keys that fail, per client address. Guessing a 256-bit key is hopeless; the limit
#: caps the lookups a sweep costs. 30 a minute leaves a sender whose key was revoked
#: enough 401s to notice, and a monitoring probe room to check that keys are required.
API_KEY_FAILURES = Limit(
    "api-key-failure",
    tuple(parse_many("30/minute")),
    "too many requests with an invalid API key from this address; wait and retry",
)

#: Sign-in links asked for on /manage, per client address. Every POST counts (a valid
#: one too: each may send mail). 20 an hour lets a household or an office behind one NAT
#: ask for its links and stops one client from mailing addresses in bulk.
MANAGE_PER_CLIENT = Limit(
    "manage-client",
    tuple(parse_many("20/hour")),
    "Too many links were asked for from your address. Please wait before trying again.",
)
#: ... and per target address (by keyed hash), from anywhere: a person who lost the first
#: mail asks again a few times; nobody can flood one inbox from many clients.
MANAGE_PER_ADDRESS = Limit(
    "manage-address",
    tuple(parse_many("5/hour")),
    "Too many links were asked for this address. Please wait before trying again.",
)

#: Seconds the limits use this process's memory after the shared storage failed, before
#: trying it again (so a dead Redis costs one failed connection per interval, not per hit).
STORAGE_RETRY_INTERVAL = 30.0
#: Seconds to wait for Redis: it answers in well under a millisecond when it is up.
REDIS_TIMEOUT = 0.5

#: Peers whose X-Forwarded-For names the client: the local nginx of deploy/nginx.conf,
#: the same proxies gunicorn's forwarded_allow_ips trusts by default. Behind it every
#: request comes from 127.0.0.1, and one shared count would throttle everyone together.
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})


def client_key(peer: str | None, forwarded_for: str | None) -> str:
    """Return the address a request is counted under.

    The rightmost X-Forwarded-For hop is the one the trusted proxy appended (the
    client may forge the others). IPv6 clients are counted per /64, the block
    one subscriber line gets (RFC 6177), or a client could walk its own /64.
    """
    address = peer or "unknown"
    if forwarded_for and address in TRUSTED_PROXIES:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            address = hops[-1]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return peer or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def client_address() -> str:
    """Return the current request's client, as the limits count it."""
    return client_key(request.remote_addr, request.headers.get("X-Forwarded-For"))


def storage_options(url: str) -> dict[str, float | str | bool]:
    """Return the options the ``limits`` storage for ``url`` gets (timeouts, a key prefix)."""
    scheme = urlsplit(url).scheme
    if scheme.startswith(("redis", "rediss", "valkey")):
        return {
            "key_prefix": "unsubsvc",
            "socket_connect_timeout": REDIS_TIMEOUT,
            "socket_timeout": REDIS_TIMEOUT,
        }
    return {}


class Throttle:
    """One app's rate limiter: the configured storage, and memory when that fails."""

    def __init__(self, storage_url: str) -> None:
        storage = storage_from_string(
            storage_url, wrap_exceptions=True, **storage_options(storage_url)
        )
        if not isinstance(storage, Storage):  # an async+... URL: WSGI views cannot await it
            raise ValueError(f"UNSUBSVC_RATELIMIT_STORAGE_URL must not be async: {storage_url!r}")
        self.storage_url = storage_url
        self._shared: RateLimiter = MovingWindowRateLimiter(storage)
        self._local: RateLimiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._shared_failed_at: float | None = None

    def hit(self, limit: Limit, client: str) -> int | None:
        """Count one event for ``client``; return seconds to wait if it is over ``limit``.

        A refused event is not counted: a client that keeps trying at the limit's
        rate gets through at that rate.
        """
        limiter = self._limiter()
        try:
            return self._hit(limiter, limit, client)
        except Exception as exc:  # any storage failure: fail open to memory, never refuse
            if limiter is self._local:
                raise
            self._shared_broke(exc)
            return self._hit(self._local, limit, client)

    def _limiter(self) -> RateLimiter:
        with self._lock:
            failed_at = self._shared_failed_at
            if failed_at is None:
                return self._shared
            if time.monotonic() - failed_at < STORAGE_RETRY_INTERVAL:
                return self._local
            self._shared_failed_at = None
            log.info("rate-limit storage: trying %s again", _safe(self.storage_url))
            return self._shared

    def _shared_broke(self, exc: Exception) -> None:
        with self._lock:
            self._shared_failed_at = time.monotonic()
        log.warning(
            "rate-limit storage %s failed (%s); counting in this process's memory for %ds",
            _safe(self.storage_url),
            exc,
            STORAGE_RETRY_INTERVAL,
        )

    @staticmethod
    def _hit(limiter: RateLimiter, limit: Limit, client: str) -> int | None:
        if len(limit.items) > 1:
            # Check every window before counting in any, so a refusal counts nowhere.
            for item in limit.items:
                if not limiter.test(item, limit.name, client):
                    return _retry_after(limiter, item, limit, client)
        for item in limit.items:
            if not limiter.hit(item, limit.name, client):
                return _retry_after(limiter, item, limit, client)
        return None


def _retry_after(limiter: RateLimiter, item: RateLimitItem, limit: Limit, client: str) -> int:
    reset = limiter.get_window_stats(item, limit.name, client).reset_time
    return max(1, math.ceil(reset - time.time()))


def _safe(url: str) -> str:
    """Return ``url`` without a password, for the log."""
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@") if password else url


def throttle() -> Throttle:
    """Return the current app's throttle."""
    value: Throttle = current_app.extensions[_EXTENSION]
    return value


def enforce(limit: Limit) -> None:
    """Count one event of ``limit`` for this request's client; answer 429 if it is over.

    ``RATELIMIT_ENABLED = False`` in Flask's config (Flask-Limiter's name for the same
    switch) turns the limits off, for tests that flood on purpose (schemathesis).
    """
    _count(limit, client_address(), logged=True)


def enforce_key(limit: Limit, key: str) -> None:
    """Count one event of ``limit`` under ``key`` (not the client); answer 429 if it is over.

    The key is not logged: it may stand for an address (a keyed hash).
    """
    _count(limit, key, logged=False)


def _count(limit: Limit, key: str, *, logged: bool) -> None:
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    wait = throttle().hit(limit, key)
    if wait is not None:
        log.info("rate limit %s: refused %sfor %ds", limit.name, f"{key} " if logged else "", wait)
        raise TooManyRequests(description=limit.message, retry_after=wait)


@contextmanager
def counting_bad_tokens() -> Iterator[None]:
    """Count a token that fails to verify or names nothing, and answer 429 past the limit.

    Nothing is checked while the token is good: a valid click never waits on the
    storage and is never refused, whatever else its address sent.
    """
    try:
        yield
    except (InvalidToken, NotFound):
        enforce(BAD_TOKENS)
        raise


def init_app(app: Flask) -> None:
    """Give ``app`` its throttle and limit admin sign-in per client address."""
    app.extensions[_EXTENSION] = Throttle(runtime_of(app).settings.ratelimit_storage_url)

    @app.before_request
    def limit_admin_sign_in() -> None:
        # By endpoint name, before the view hashes a password (admin.py owns the view).
        if request.endpoint == "admin.login" and request.method == "POST":
            enforce(ADMIN_SIGN_IN)
