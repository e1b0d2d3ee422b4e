"""The admin console at ``/admin``: unsubscribe-rate reports for people, behind a login.

Accounts come from ``unsubsvc admin create``. A signed-in browser holds only a
random session id in the (signed, HttpOnly, SameSite=Lax) session cookie; the
``admin_session`` row it names decides, on every request, whether it is still
live (``services.admin_sessions``): signing out, ``unsubsvc admin
revoke-sessions``, disabling the account, the idle timeout and the absolute
timeout end it for every copy of the cookie. Signing in starts a new id
(session fixation, OWASP ASVS V3.2.1), and ten wrong passwords in a row lock
the account for a while (``services.admin_users.sign_in``).
Pages are server-rendered with inline SVG charts (laid out by ``web.charts``,
written by ``templates/admin/_charts.html``) and no JavaScript; every table can be
downloaded as CSV or JSON by appending ``.csv`` or ``.json``, written by
``core.tables`` with the columns of the report's row type.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as web_session
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.exc import TimeoutError as PoolTimeout
from wtforms import EmailField, PasswordField, RadioField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from unsubsvc.core import tables
from unsubsvc.core.addresses import mask_address
from unsubsvc.core.errors import NotFound
from unsubsvc.core.preferences import SURVEY_REASONS
from unsubsvc.core.report_rows import (
    CampaignRow,
    CommentRow,
    ListOverviewRow,
    ReasonRow,
    TimingRow,
)
from unsubsvc.core.reporting import (
    BAND_READINGS,
    COMPLAINT_CRITICAL,
    COMPLAINT_WARNING,
    HONEYMOON_SENDS,
    NICHE_BENCHMARKS,
    ROLLING_WINDOW,
    SPIKE_FACTOR,
    SPIKE_MIN_POINTS,
    TIMING_MIN_EVENTS,
    Band,
    CohortRow,
    TrendPoint,
    band_alarm,
    band_range,
    percent,
)
from unsubsvc.db.models import AdminUser
from unsubsvc.services import admin_sessions, admin_users, reports
from unsubsvc.services.lists import all_lists, get_list
from unsubsvc.web import charts, context
from unsubsvc.web.context import session as db_session

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)

#: What the session cookie holds for a signed-in admin: the random id of its session row.
SESSION_KEY = "admin_session"
#: Methods that never change anything (RFC 9110 §9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Comments per page.
PER_PAGE = 50
#: Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.logout"})
DownloadView = Callable[..., Response]
#: Every table downloads as ``<page>.csv`` and ``<page>.json``.
FORMATS = ("csv", "json")
#: The timing histogram: twelve ten-minute buckets, then everything later.
BUCKET_MINUTES = 10
BUCKETS = 12

#: Reasons a spike is expected (industry guidance on when a spike is fine).
EXCUSES: tuple[tuple[str, str], ...] = (
    ("pivot", "Announced content pivot"),
    ("acquired", "First sends to an acquired or inherited list"),
    ("cleaning", "List cleaning (system-driven unsubscribes)"),
    ("sunset", "Sunset or re-permission campaign"),
    ("pause", "First send after a long pause"),
    ("other", "Other (describe below)"),
)
EXCUSE_MAX = 200
REASON_LABELS = dict(SURVEY_REASONS)
#: The rules the pages explain, in words, from ``core.reporting`` (never written twice).
RULES = {
    "band_readings": {band.value: text for band, text in BAND_READINGS.items()},
    "band_ranges": {band.value: band_range(band) for band in Band},
    "complaint_warning": percent(COMPLAINT_WARNING),
    "complaint_critical": percent(COMPLAINT_CRITICAL),
    "spike_factor": f"{SPIKE_FACTOR:g}",
    "spike_points": f"{SPIKE_MIN_POINTS:g}",
}


@dataclass(frozen=True)
class OverviewLine:
    """A list's row on the overview, with its latest delivered send and its niche's name."""

    row: ListOverviewRow
    latest: CampaignRow | None
    niche_label: str | None


class LoginForm(FlaskForm):  # type: ignore[misc]
    """Address and password; the CSRF token comes with Flask-WTF."""

    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=admin_users.MAX_PASSWORD_LENGTH)],
    )
    submit = SubmitField("Sign in")


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """A button: signing out is a POST with a CSRF token, never a link."""

    submit = SubmitField("Sign out")


class ExcuseForm(FlaskForm):  # type: ignore[misc]
    """Why a spike on this send is expected (industry guidance on when a spike is fine)."""

    reason = RadioField(
        "Why is a spike expected for this send?",
        choices=[SelectChoice(key, label) for key, label in EXCUSES],
        validators=[DataRequired(message="Choose a reason.")],
    )
    details = StringField(
        "Details (optional; required for “Other”)",
        validators=[Optional(), Length(max=EXCUSE_MAX)],
    )
    submit = SubmitField("Mark the spike as expected")


class ClearExcuseForm(FlaskForm):  # type: ignore[misc]
    """A button that removes the excuse, so the send raises alarms again."""

    submit = SubmitField("Clear the excuse")


# -- signing in ------------------------------------------------------------------------


def downloads(rule: str) -> Callable[[DownloadView], DownloadView]:
    """Serve a download view at ``rule.csv`` and ``rule.json`` (endpoints ``<view>_csv``…).

    One rule per format, not a ``<fmt>`` variable: the format is part of the
    address, and a URL map walk needs nothing but the usual values to build it.
    """

    def bind(view: DownloadView, fmt: str) -> DownloadView:
        @functools.wraps(view)
        def bound(**values: Any) -> Response:
            return view(fmt=fmt, **values)

        return bound

    def register(view: DownloadView) -> DownloadView:
        for fmt in FORMATS:
            bp.add_url_rule(
                f"{rule}.{fmt}",
                endpoint=f"{view.__name__}_{fmt}",
                view_func=bind(view, fmt),
                methods=["GET"],
            )
        return view

    return register


def session_policy() -> admin_sessions.Policy:
    """Return the idle and absolute timeouts the settings ask for."""
    settings = context.settings()
    return admin_sessions.Policy(
        idle_timeout=timedelta(seconds=settings.admin_idle_timeout),
        max_age=timedelta(seconds=settings.admin_session_max_age),
    )


def browser_session_id() -> str | None:
    """Return the admin session id this browser's cookie holds, if any."""
    value = web_session.get(SESSION_KEY)
    return value if isinstance(value, str) and value else None


def current_admin() -> AdminUser | None:
    """Return the signed-in admin, or None when nobody is or the session ended or timed out."""
    session_id = browser_session_id()
    if session_id is None:
        return None
    found = admin_sessions.look_up(
        db_session(), session_id, now=context.now(), policy=session_policy()
    )
    if found.change is not admin_sessions.Change.NONE:
        _settle(found)
    return found.admin


def _settle(found: admin_sessions.Lookup) -> None:
    """Write what the lookup asked for (touch or end), where the request may write.

    A page that only reads runs, on SQLite, in a deferred transaction that may
    not upgrade to a write (``web.context``, ``db.engine._sqlite_begin``: such an
    upgrade fails with SQLITE_BUSY rather than wait). There the write, at most
    once a minute per session, is a short unit of work of its own, taken in
    turn at the writer gate. Elsewhere it joins the request's unit of work.
    """
    built = context.runtime()
    now = context.now()
    if built.engine.dialect.name != "sqlite" or request.method not in SAFE_METHODS:
        admin_sessions.settle(db_session(), found, now=now)
        return
    if not built.sqlite_writers.acquire(timeout=built.settings.database_timeout):
        raise PoolTimeout("other writers held the SQLite database too long")
    try:
        with built.unit_of_work() as apart:
            admin_sessions.settle(apart, found, now=now)
    finally:
        built.sqlite_writers.release()


def forget_admin() -> None:
    """Drop a sign-in that no longer holds (ended, expired, disabled) from the cookie."""
    web_session.pop(SESSION_KEY, None)


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a relative path inside the console, else the overview.

    Refuses absolute and scheme-relative URLs (``//evil.example``), backslashes
    (browsers read ``/\\evil.example`` as another host) and control characters.
    """
    default = url_for("admin.overview")
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    path = parts.path
    inside = path == "/admin" or path.startswith(("/admin/", "/admin."))
    if not inside or path.startswith(("/admin/login", "/admin/logout")):
        return default
    # Browsers resolve dot segments and empty ones before following: allow neither.
    if "//" in path or any(part in {".", ".."} for part in path.split("/")):
        return default
    return value


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    """Send anyone not signed in to the sign-in page, remembering where they were going."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    admin = current_admin()
    if admin is None:
        forget_admin()
        wanted = request.path + (
            f"?{request.query_string.decode()}" if request.query_string else ""
        )
        return redirect(url_for("admin.login", next=wanted), 302)
    g.admin = admin
    return None


@bp.after_request
def no_store(response: Response) -> Response:
    """Keep report pages and downloads out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def pct(value: float | None) -> str:
    """Format a rate for a page; a no-break space keeps "0.35 %" on one line in table cells."""
    return charts.format_rate(value).replace(" ", "\u00a0")


def num(value: int | None) -> str:
    """Format a count with thousands separators."""
    return "–" if value is None else f"{value:,}"


def when(moment: datetime | None) -> str | None:
    """Format a time to the minute (UTC), or None when there is none."""
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@bp.context_processor
def page_helpers() -> dict[str, Any]:
    """Give the console's templates the signed-in admin, the sign-out form and formatters."""
    admin = g.get("admin")
    return {
        "admin": admin,
        "logout_form": LogoutForm() if admin is not None else None,
        "pct": pct,
        "num": num,
        "when": when,
        "band_alarm": band_alarm,
        "reason_labels": REASON_LABELS,
        **RULES,
        "bands": list(Band),
        "window": ROLLING_WINDOW,
    }


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the sign-in form; on the right address and password, start a fresh session."""
    target = safe_next(request.args.get("next"))
    if current_admin() is not None:
        if request.method == "GET":
            return redirect(target, 303)
    else:
        forget_admin()
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _page("admin/login.html", status, form=form, failed=None)
    now = context.now()
    client = request.remote_addr
    attempt = admin_users.sign_in(
        db_session(), form.email.data, form.password.data, now=now, client=client
    )
    if attempt.admin is None or attempt.outcome is not admin_users.Outcome.SIGNED_IN:
        _log_refusal(attempt, form.email.data, client)
        # 200, not 401 or 429, on purpose: the request's unit of work commits only
        # answers below 400 (web.context), and the failed-attempt count, the lock and
        # the audit events must be kept although the attempt failed. A unit of work of
        # its own would need a second SQLite write lock while this request holds one.
        return _page("admin/login.html", 200, form=form, failed=attempt.outcome.value)
    # A new session id for the signed-in admin, nothing of the old cookie carried over,
    # and the browser's previous session (if any) ended: no fixation (OWASP ASVS V3.2.1).
    previous = browser_session_id()
    if previous is not None:
        admin_sessions.end(db_session(), previous, now=now)
    web_session.clear()
    admin_sessions.purge(db_session(), now=now, policy=session_policy())
    web_session[SESSION_KEY] = admin_sessions.start(
        db_session(), attempt.admin, now=now, client=client
    )
    log.info("admin %s signed in from %s", mask_address(attempt.admin.email), client)
    return redirect(target, 303)


def _log_refusal(attempt: admin_users.Attempt, email: str, client: str | None) -> None:
    """Log a refused sign-in: who from where, the address masked, never the password."""
    masked = mask_address(admin_users.attempt_key(email))
    log.warning("admin sign-in refused (%s) for %s from %s", attempt.outcome.value, masked, client)
    if attempt.locked_now and attempt.admin is not None:
        log.warning(
            "admin account %s locked until %s after %d wrong passwords (last from %s)",
            masked,
            attempt.admin.locked_until,
            attempt.admin.failed_logins,
            client,
        )


@bp.post("/admin/logout")
def logout() -> ResponseReturnValue:
    """End the session server-side (CSRF-checked like every form), then the cookie's copy.

    The row is ended, so a copy of the cookie taken before this is refused too.
    """
    session_id = browser_session_id()
    if session_id is not None:
        admin_users.sign_out(
            db_session(), session_id, now=context.now(), client=request.remote_addr
        )
    web_session.clear()
    flash("You are signed out.")
    return redirect(url_for("admin.login"), 303)


# -- pages -----------------------------------------------------------------------------


@bp.get("/admin")
def overview() -> ResponseReturnValue:
    """Show every list: totals, rates and bands, the latest send, and how to read them."""
    report = reports.campaign_report(db_session())
    lists = _overview_lines(report)
    reasons = reports.survey_reasons(db_session())
    return _page(
        "admin/overview.html",
        lists=lists,
        names={line.row.list: line.row.display_name for line in lists},
        attention=reports.attention(report),
        reasons=reasons,
    )


@downloads("/admin")
def overview_download(fmt: str) -> Response:
    """Download the overview table."""
    return download(reports.list_overview(db_session()), ListOverviewRow, fmt, "lists", "lists")


@downloads("/admin/reasons")
def reasons_download(fmt: str) -> Response:
    """Download the exit-survey reasons over every list."""
    rows = reports.survey_reasons(db_session())
    return download(rows, ReasonRow, fmt, "reasons", "reasons")


@bp.get("/admin/lists/<name>")
def list_page(name: str) -> ResponseReturnValue:
    """Show a list's sends with bands, its trend chart, cohorts and exit-survey reasons."""
    mailing_list = get_list(db_session(), name)
    rows = reports.campaign_report(db_session(), list_name=name)
    points = reports.trend_of(rows)
    chart = charts.line_chart(
        points,
        title=f"Unsubscribe rate per send, {mailing_list.display_name}",
        chart_id="trend-chart",
        window=ROLLING_WINDOW,
    )
    return _page(
        "admin/list.html",
        mailing_list=mailing_list,
        niche=NICHE_BENCHMARKS.get(mailing_list.niche or ""),
        rows=rows,
        trend={p.campaign: p for p in points},
        flagged=[p for p in points if p.well_above_average],
        chart=chart,
        cohorts=reports.cohort_table(db_session(), name),
        honeymoon_sends=HONEYMOON_SENDS,
        reasons=reports.survey_reasons(db_session(), list_name=name),
    )


@downloads("/admin/lists/<name>/campaigns")
def campaigns_download(name: str, fmt: str) -> Response:
    """Download the list's campaign table (the same fields as ``unsubsvc report``)."""
    get_list(db_session(), name)
    rows = reports.campaign_report(db_session(), list_name=name)
    return download(rows, CampaignRow, fmt, "campaigns", f"{name}-campaigns")


@downloads("/admin/lists/<name>/trend")
def trend_download(name: str, fmt: str) -> Response:
    """Download the data behind the trend chart."""
    get_list(db_session(), name)
    rows = reports.list_trend(db_session(), name)
    return download(rows, TrendPoint, fmt, "trend", f"{name}-trend")


@downloads("/admin/lists/<name>/cohorts")
def cohorts_download(name: str, fmt: str) -> Response:
    """Download the list's cohort table."""
    rows = reports.cohort_table(db_session(), name)
    return download(rows, CohortRow, fmt, "cohorts", f"{name}-cohorts")


@downloads("/admin/lists/<name>/reasons")
def list_reasons_download(name: str, fmt: str) -> Response:
    """Download the list's exit-survey reasons."""
    get_list(db_session(), name)
    rows = reports.survey_reasons(db_session(), list_name=name)
    return download(rows, ReasonRow, fmt, "reasons", f"{name}-reasons")


@bp.get("/admin/lists/<name>/campaigns/<path:campaign>")
def campaign_page(name: str, campaign: str) -> ResponseReturnValue:
    """Show one send: its numbers, when its unsubscribes came, reasons, and its excuse."""
    return _campaign_page(name, campaign)


def _campaign_page(
    name: str,
    campaign: str,
    *,
    status: int = 200,
    excuse_form: ExcuseForm | None = None,
) -> Response:
    mailing_list = get_list(db_session(), name)
    rows = reports.campaign_report(db_session(), list_name=name)
    row = next((r for r in rows if r.campaign == campaign), None)
    if row is None:
        raise NotFound(f"list {name!r} has no campaign {campaign!r}")
    timing = reports.campaign_timing(
        db_session(), name, campaign, buckets=BUCKETS, bucket_minutes=BUCKET_MINUTES
    )
    histogram = None
    if timing.sent_at is not None:
        histogram = charts.bar_chart(
            timing.histogram,
            _bucket_labels(),
            title=f"Unsubscribes by minutes after the send, campaign {campaign}",
            chart_id="timing-chart",
            x_label="Minutes after the send",
            y_label="Unsubscribes",
            divider=(60 // BUCKET_MINUTES, "First hour"),
        )
    point = next((p for p in reports.trend_of(rows) if p.campaign == campaign), None)
    comments, comment_total = reports.survey_comments(
        db_session(), list_name=name, campaign=campaign, per_page=5
    )
    html = render_template(
        "admin/campaign.html",
        mailing_list=mailing_list,
        niche=NICHE_BENCHMARKS.get(mailing_list.niche or ""),
        row=row,
        point=point,
        timing=timing,
        timing_min=TIMING_MIN_EVENTS,
        histogram=histogram,
        reasons=reports.survey_reasons(db_session(), list_name=name, campaign=campaign),
        comments=comments,
        comment_total=comment_total,
        excuse_form=excuse_form or ExcuseForm(formdata=None),
        clear_form=ClearExcuseForm(formdata=None),
    )
    return Response(html, status=status, mimetype="text/html")


@downloads("/admin/lists/<name>/campaigns/<path:campaign>/timing")
def timing_download(name: str, campaign: str, fmt: str) -> Response:
    """Download a campaign's timing histogram."""
    timing = reports.campaign_timing(
        db_session(), name, campaign, buckets=BUCKETS, bucket_minutes=BUCKET_MINUTES
    )
    filename = f"{name}-{_file_part(campaign)}-timing"
    return download(timing.buckets(), TimingRow, fmt, "timing", filename)


@downloads("/admin/lists/<name>/campaigns/<path:campaign>/reasons")
def campaign_reasons_download(name: str, campaign: str, fmt: str) -> Response:
    """Download a campaign's exit-survey reasons."""
    reports.find_campaign(db_session(), name, campaign)
    rows = reports.survey_reasons(db_session(), list_name=name, campaign=campaign)
    return download(rows, ReasonRow, fmt, "reasons", f"{name}-{_file_part(campaign)}-reasons")


@bp.post("/admin/lists/<name>/campaigns/<path:campaign>/excuse")
def excuse(name: str, campaign: str) -> ResponseReturnValue:
    """Mark a send's spike as expected (no alarm), or clear that mark."""
    if request.form.get("action") == "clear":
        if not ClearExcuseForm().validate_on_submit():
            return _campaign_page(name, campaign, status=400)
        reports.set_excuse(db_session(), name, campaign, None)
        flash("Excuse cleared: this send raises alarms again.")
    else:
        form = ExcuseForm()
        text = _excuse_text(form) if form.validate_on_submit() else None
        if text is None:
            return _campaign_page(name, campaign, status=400, excuse_form=form)
        reports.set_excuse(db_session(), name, campaign, text)
        flash(f"Saved: a spike is expected for this send ({text}). It raises no alarm.")
    return redirect(url_for("admin.campaign_page", name=name, campaign=campaign), 303)


@bp.get("/admin/comments")
def comments() -> ResponseReturnValue:
    """Show the exit survey's free-text answers, newest first, filtered and paged."""
    filters = _comment_filters()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total = reports.survey_comments(db_session(), **filters, page=page, per_page=PER_PAGE)
    pages = max(1, math.ceil(total / PER_PAGE))
    return _page(
        "admin/comments.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        filters=filters,
        lists=all_lists(db_session()),
        first=(page - 1) * PER_PAGE + 1,
    )


@downloads("/admin/comments")
def comments_download(fmt: str) -> Response:
    """Download every comment matching the same filters as the page (all pages)."""
    filters = _comment_filters()
    rows: list[CommentRow] = []
    page = 1
    while True:
        chunk, total = reports.survey_comments(db_session(), **filters, page=page, per_page=500)
        rows.extend(chunk)
        if not chunk or len(rows) >= total:
            break
        page += 1
    return download(rows, CommentRow, fmt, "comments", "comments")


# -- helpers ---------------------------------------------------------------------------


def _page(template: str, status: int = 200, **values: Any) -> Response:
    return Response(render_template(template, **values), status=status, mimetype="text/html")


def _overview_lines(report: Sequence[CampaignRow]) -> list[OverviewLine]:
    """Return the overview's lines: each list's row, its latest send's row and niche name."""
    by_key = {(r.list, r.campaign): r for r in report}
    out = []
    for row in reports.list_overview(db_session(), report):
        niche = NICHE_BENCHMARKS.get(row.niche or "")
        out.append(
            OverviewLine(
                row=row,
                latest=by_key.get((row.list, row.latest_campaign or "")),
                niche_label=niche[0] if niche else row.niche,
            )
        )
    return out


def _bucket_labels() -> list[str]:
    labels = [f"{i * BUCKET_MINUTES}–{(i + 1) * BUCKET_MINUTES}" for i in range(BUCKETS)]
    return [*labels, f"{BUCKETS * BUCKET_MINUTES}+"]


def _excuse_text(form: ExcuseForm) -> str | None:
    """Return the excuse to store, or None after adding the reason to the form's errors."""
    details = (form.details.data or "").strip()
    if form.reason.data == "other":
        if not details:
            form.details.errors = [*form.details.errors, "Describe the reason for “Other”."]
            return None
        text = details
    else:
        label = dict(EXCUSES)[form.reason.data]
        text = f"{label}: {details}" if details else label
    if len(text) > EXCUSE_MAX:
        form.details.errors = [
            *form.details.errors,
            f"Reason and details together must fit in {EXCUSE_MAX} characters.",
        ]
        return None
    return text


def _comment_filters() -> dict[str, str | None]:
    def arg(key: str) -> str | None:
        value = request.args.get(key, "").strip()
        return value or None

    reason = arg("reason")
    return {
        "list_name": arg("list"),
        "campaign": arg("campaign"),
        "reason": reason if reason in REASON_LABELS else None,
    }


def _file_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("._")[:80] or "campaign"


def download(rows: Sequence[object], row_type: type, fmt: str, key: str, filename: str) -> Response:
    """Answer ``rows`` as a CSV or JSON attachment; ``row_type``'s fields are the columns."""
    if fmt == "csv":
        response = Response(tables.to_csv(rows, tables.columns(row_type)), mimetype="text/csv")
    else:
        body = tables.to_json(key, rows, ensure_ascii=False)
        response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="unsubsvc-{filename}.{fmt}"'
    return response
