"""Gunicorn settings for unsubsvc behind a local reverse proxy.

Run from the project directory (where ``wsgi.py`` is):

    gunicorn -c deploy/gunicorn.conf.py wsgi:app

Tune with the environment (``/etc/unsubsvc/env`` under systemd):

    UNSUBSVC_BIND      address to listen on          (default 127.0.0.1:8000)
    UNSUBSVC_WORKERS   worker processes              (default 2 x CPU cores + 1)
    UNSUBSVC_THREADS   threads per worker            (default 4)
    UNSUBSVC_TIMEOUT   seconds before a silent worker is replaced (default 30)
    FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers are trusted
                         (gunicorn's own variable; default 127.0.0.1,::1)

A one-click POST is a couple of indexed reads and at most one small write, so
requests are short; threads cover the time spent waiting on the database.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from unsubsvc.logs import RedactingLogger
from unsubsvc.serving import die_with_master


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    number = int(value)
    if number <= 0:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return number


# --- Server socket --------------------------------------------------------------

bind = [os.environ.get("UNSUBSVC_BIND", "").strip() or "127.0.0.1:8000"]

# --- Workers --------------------------------------------------------------------

workers = _int_env("UNSUBSVC_WORKERS", 2 * multiprocessing.cpu_count() + 1)
worker_class = "gthread"
threads = _int_env("UNSUBSVC_THREADS", 4)

# Each worker imports wsgi.py and builds its own app, so no database connection
# (SQLAlchemy pool, SQLite handle, psycopg socket) is ever created in the master
# and inherited across fork(). That is why preload_app stays False; the
# post_fork hook below only matters if someone turns it on (``--preload``).
preload_app = False

# Workers are not recycled after N requests. No leak is known (a worker's RSS
# stays flat under load), and recycling cost more than it could save: every
# worker counted to about the same N (the load is spread evenly), so all of an
# instance's workers restarted within a second of each other and the instance
# stalled for up to 3 s while they loaded the app again. A jitter does not
# prevent that; it only makes it rarer. Should a leak appear, prefer fixing it;
# if recycling is needed meanwhile, replace workers from outside, where no
# request waits: SIGHUP to the master (systemctl reload) starts new workers
# before the old ones stop.
max_requests = 0

# --- Timeouts -------------------------------------------------------------------

# A worker silent this long is killed and replaced. Requests take milliseconds;
# this only has to cover a database that is briefly slow (busy_timeout is 10 s).
timeout = _int_env("UNSUBSVC_TIMEOUT", 30)
# On SIGTERM (systemctl stop/restart), finish in-flight requests for this long.
graceful_timeout = 30
# Idle keep-alive connections from the proxy are held this long (seconds).
keepalive = 5

# The worker heartbeat is an fchmod() on a temporary file; on a disk-backed or
# overlay /tmp that can stall, so use the in-memory /dev/shm where it is usable.
# Gunicorn creates the file with mkstemp() and unlinks it at once: a shared,
# world-writable directory is safe for it.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.access(_SHM, os.W_OK) else None

# --- Proxy ------------------------------------------------------------------------

# Trust X-Forwarded-Proto (and the other secure_scheme_headers) only from the
# local proxy; anything else could claim https for a plain-http request.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1,::1"

# --- Logging ----------------------------------------------------------------------

# The path of /u/<token> and /p/<token> is a credential: whoever holds it can
# unsubscribe that recipient or change their preferences. This logger masks it
# in every line gunicorn writes (request line, Referer, its own errors); the
# app's logger gets the same filter in create_app. The rule is in unsubsvc/logs.py.
logger_class = RedactingLogger
accesslog = "-"  # stdout: journald or the container runtime collects it
errorlog = "-"  # stderr
loglevel = "info"
# Behind the proxy %(h)s is the proxy itself; the client is in X-Forwarded-For.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" xff=%({x-forwarded-for}i)s %(M)sms'
)
proc_name = "unsubsvc"

# Gunicorn 25.1+ also opens a management socket (for ``gunicornc``) under
# $XDG_RUNTIME_DIR or $HOME/.gunicorn; the service user has no home to put it
# in, and systemctl reload/restart plus TTIN/TTOU signals cover management.
# (Older gunicorn ignores this name.)
control_socket_disable = True


# --- Hooks ------------------------------------------------------------------------


def post_fork(server: Any, worker: Any) -> None:
    """Give a new worker its own database connections when the app was preloaded.

    With preload_app the app (and perhaps a pooled connection) lives in the
    master; a pooled connection shared across processes corrupts both. SQLAlchemy's
    advice for fork: dispose(close=False) in the child, which drops the inherited
    pool without closing the parent's sockets, so the worker opens fresh ones.
    """
    if not server.cfg.preload_app:
        return  # the worker will import the app itself: nothing was inherited
    from unsubsvc.web.context import runtime_of

    runtime_of(server.app.wsgi()).engine.dispose(close=False)


def post_worker_init(worker: Any) -> None:
    """Make the kernel kill this worker when the master dies (see die_with_master).

    Without it, workers orphaned by a SIGKILLed master keep the listening
    socket while they drain (up to graceful_timeout), and a restarted
    instance fails with "Connection in use".
    """
    die_with_master(worker)
