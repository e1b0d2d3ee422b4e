"""The API's audit trail: every change, every read of personal data, and refused keys.

A call is a change when its method may change something (POST, PUT, PATCH,
DELETE) and, after its key was checked, its transaction wrote (an INSERT,
UPDATE or DELETE ran: ``services.audit.watch_writes``). So a batch of headers
for known addresses, which writes nothing, stays free of writes, and the
key's own last-use note does not count. Safe calls that read a recipient's
state (``PERSONAL_READS``) are recorded whether or not they wrote.

An ``after_request`` hook of the API blueprint appends the event to the
request's own session. Flask runs a blueprint's ``after_request`` hooks before
the app's (``Flask.process_response``), and the app's unit of work
(``web.context``) commits after them: the record commits with the change, or
is rolled back with it. The action names the route's rule
(``/api/v1/lists/<name>/recipients/<email>``), never the filled path, which
may carry an address; addresses in the path are written as keyed hashes.

A refused key (401) is recorded in a transaction of its own, since the
request's is rolled back; at most one such event per client address a minute
(``REFUSED_EVERY``), remembered in this process only, so a flood of bad keys
is not a flood of writes (each process of a server records its own).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from flask import Flask, Response, current_app, g, request

from unsubsvc.services import audit
from unsubsvc.web import context, limits
from unsubsvc.web.api.blueprint import bp

#: Methods that change something (RFC 9110 §9.2.1: the others are safe).
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Calls that read personal data: a recipient's state, the suppression feed, which of a
#: send's addresses may be mailed (a POST that writes nothing).
PERSONAL_READS = frozenset({"api.recipient", "api.suppressions", "api.eligibility"})
#: A refused key is recorded at most this often per client address.
REFUSED_EVERY = timedelta(minutes=1)
#: How many client addresses the refusal memory holds (oldest forgotten first).
REFUSED_MEMORY = 10_000
REFUSED_ACTION = "api.auth_failed"

_EXTENSION = "unsubsvc.audit_refusals"
#: ``<address:email>`` routes an address with '/'; its action still says ``<email>``.
_CONVERTER_NAME = re.compile(r"<(?:path|address):")


class RefusalMemory:
    """When each client address last had a refused key recorded, in this process."""

    def __init__(self, size: int = REFUSED_MEMORY) -> None:
        self._size = size
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def due(self, client: str, now: datetime) -> bool:
        """Say whether a refusal from ``client`` is to be recorded now (and note it if so)."""
        with self._lock:
            last = self._seen.get(client)
            if last is not None and now - last < REFUSED_EVERY:
                return False
            self._seen[client] = now
            self._seen.move_to_end(client)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True


def refusals(app: Flask) -> RefusalMemory:
    """Return ``app``'s memory of recorded refusals (one per app, so tests start afresh)."""
    memory: RefusalMemory | None = app.extensions.get(_EXTENSION)
    if memory is None:
        memory = app.extensions.setdefault(_EXTENSION, RefusalMemory())
    return memory


def audited(endpoint: str | None, method: str, *, wrote: bool) -> bool:
    """Say whether a successful call goes into the audit log (see the module's docstring)."""
    return (method in CHANGING_METHODS and wrote) or endpoint in PERSONAL_READS


@bp.before_request
def watch_writes() -> None:
    """Watch whether the call writes from here on (after ``authenticate_request``, as
    before-request hooks run in the order they were registered)."""
    if g.get("api_key") is not None:
        audit.watch_writes(context.session())


@bp.after_request
def record_api_call(response: Response) -> Response:
    """Append this call to the audit log, in its own transaction (see the module's docstring)."""
    if response.status_code == 401:
        _record_refusal()
        return response
    key = g.get("api_key")
    if key is None or response.status_code >= 400:
        return response
    wrote = audit.wrote(context.session())
    if not audited(request.endpoint, request.method, wrote=wrote):
        return response
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    # Actions name the rule as callers know it: '<email>', whatever converter routes it.
    rule = _CONVERTER_NAME.sub("<", rule)
    audit.record(
        context.session(),
        now=context.now(),
        actor_kind=audit.API,
        actor=key.name,
        action=f"api.{request.method.lower()} {rule}",
        target=audit.describe_target(
            request.view_args or {}, context.runtime().keyring.address_hash
        ),
        client=limits.client_address(),
        detail={"status": response.status_code},
    )
    return response


def _record_refusal() -> None:
    """Record a refused key in a transaction of its own, once a minute per client address."""
    client = limits.client_address()
    now = context.now()
    if not refusals(current_app).due(client, now):
        return
    presented = request.headers.get("Authorization", "").strip() != ""
    # The request's own transaction is rolled back anyway (the answer is an error); ending
    # it first frees SQLite's write lock (taken by BEGIN IMMEDIATE) for the write below.
    context.session().rollback()
    with context.runtime().unit_of_work() as session:
        audit.record(
            session,
            now=now,
            actor_kind=audit.ANONYMOUS,
            actor=None,  # never what was presented: a mistyped key is still a secret
            action=REFUSED_ACTION,
            target=None,
            client=client,
            detail={"credentials": "invalid" if presented else "missing"},
        )
