"""The admin console's audit log: its page and downloads, and the record of console actions.

Every state-changing POST of the console that succeeds (answered below 400)
by a signed-in admin is recorded here, generically, by an ``after_request``
hook of the console's blueprint: it runs before the app's unit of work
commits (``web.context``), so the record commits with the change or not at
all. Signing in and out are recorded by the sign-in code itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue

from unsubsvc.core.audit_rows import ACTOR_KINDS, AuditFilter, AuditRow
from unsubsvc.services import audit
from unsubsvc.web import context, limits
from unsubsvc.web.admin import bp, download, downloads
from unsubsvc.web.context import session as db_session

__all__ = ["bp"]

#: Events per page.
PER_PAGE = 50
#: Console POSTs whose audit record the sign-in code writes itself.
NOT_RECORDED_HERE = frozenset({"admin.login", "admin.logout"})


@dataclass(frozen=True)
class AuditQuery:
    """The page's filters as typed in (for the form and links) and as a filter (for queries)."""

    kind: str
    action: str
    start: str
    end: str
    filters: AuditFilter
    problems: tuple[str, ...]

    def args(self) -> dict[str, str]:
        """Return the query arguments that reproduce these filters (empty ones left out)."""
        values = {"kind": self.kind, "action": self.action, "from": self.start, "to": self.end}
        return {name: value for name, value in values.items() if value}


@bp.context_processor
def navigation() -> dict[str, object]:
    """Let the console's navigation link only to pages this app serves."""
    return {"console_has": lambda endpoint: endpoint in current_app.view_functions}


@bp.after_request
def record_console_action(response: Response) -> Response:
    """Append a signed-in admin's successful POST to the audit log, in the request's session."""
    admin = g.get("admin")
    if (
        request.method != "POST"
        or response.status_code >= 400
        or admin is None
        or request.endpoint is None
        or request.endpoint in NOT_RECORDED_HERE
    ):
        return response
    audit.record(
        db_session(),
        now=context.now(),
        actor_kind=audit.ADMIN,
        actor=admin.email,
        action=request.endpoint,
        target=audit.describe_target(
            request.view_args or {}, context.runtime().keyring.address_hash
        ),
        client=limits.client_address(),
        detail={"status": response.status_code},
    )
    return response


@bp.get("/admin/audit", endpoint="audit")  # named as the console's links name it
def audit_log() -> ResponseReturnValue:
    """Show the audit log, newest first, filtered and paged."""
    query = _query()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    total = audit.count(db_session(), query.filters)
    pages = max(1, math.ceil(total / PER_PAGE))
    rows = audit.events(db_session(), query.filters, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    html = render_template(
        "admin/audit.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        query=query,
        kinds=ACTOR_KINDS,
        first=(page - 1) * PER_PAGE + 1,
    )
    return Response(html, status=200, mimetype="text/html")


@downloads("/admin/audit")
def audit_download(fmt: str) -> Response:
    """Download every event matching the page's filters (all pages), newest first."""
    rows = list(audit.iter_events(db_session(), _query().filters))
    return download(rows, AuditRow, fmt, "events", "audit")


def _query() -> AuditQuery:
    """Read the filters from the query string; a date that is not one is ignored, and said."""
    kind = request.args.get("kind", "").strip()
    kind = kind if kind in ACTOR_KINDS else ""
    action = request.args.get("action", "").strip()[:64]
    problems: list[str] = []
    start_text, start = _day(request.args.get("from", ""), "From", problems)
    end_text, end = _day(request.args.get("to", ""), "To", problems)
    filters = AuditFilter(
        actor_kind=kind or None,
        action_prefix=action or None,
        since=None if start is None else datetime.combine(start, time(), UTC),
        # "To" is a whole day, inclusive: events before the next midnight (UTC).
        until=None if end is None else datetime.combine(end + timedelta(days=1), time(), UTC),
    )
    return AuditQuery(kind, action, start_text, end_text, filters, tuple(problems))


def _day(value: str, label: str, problems: list[str]) -> tuple[str, date | None]:
    text = value.strip()
    if not text:
        return "", None
    try:
        return text, date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label} is not a date (YYYY-MM-DD): ignored.")
        return "", None
