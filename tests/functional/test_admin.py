"""The admin console through HTTP: sign-in, sessions, pages against the reports, downloads, XSS."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.conftest import ApiClient, FakeClock
from tests.helpers import (
    CommandRunner,
    csrf_token,
    links_for,
    make_list,
    path_of,
    snapshot,
    transaction,
)
from unsubsvc.core import tables
from unsubsvc.core.report_rows import CampaignRow
from unsubsvc.core.tokens import Purpose
from unsubsvc.db.models import AdminUser, Campaign, Event, MailingList, SurveyResponse
from unsubsvc.services import admin_users, reports
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.web import admin as console
from unsubsvc.web.charts import format_rate
from unsubsvc.web.context import runtime_of

EMAIL = "Root@Example.com"
PASSWORD = "correct horse battery"
DISPLAY = 'News <b onmouseover="alert(3)">Weekly</b> & Co'
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FORMULA = '=HYPERLINK("http://evil.example","click me")'
#: (campaign, unsubscribes) per weekly send of 2,000; c5 is the spike.
SENDS = (("c1", 3), ("c2", 4), ("c3", 3), ("c4", 5), ("c5", 30), ("c6", 4), ("c7", 12))
DELIVERED = 2_000
ANSWERS = (
    ("not_relevant", XSS),
    ("not_relevant", FORMULA),
    ("too_many", "Three a week is a lot.\nMonthly would be fine."),
    ("never_signed_up", None),
    (None, "+1 to the person who said it is too much"),
    ("found_alternative", "@someone sends the same news earlier"),
)


# -- discovering the console's routes ----------------------------------------------------


def console_rules() -> list[Rule]:
    """Return every rule of the admin blueprint (read from a bare app, so no settings needed)."""
    probe = Flask("probe")
    probe.register_blueprint(console.bp)
    return sorted(
        (r for r in probe.url_map.iter_rules() if r.endpoint.startswith("admin.")),
        key=lambda r: (r.rule, sorted(r.methods or ())),
    )


SAMPLE = {"name": "news", "campaign": "c1"}


def build(rule: Rule, **values: str) -> str:
    probe = Flask("probe")
    probe.register_blueprint(console.bp)
    args = {k: v for k, v in {**SAMPLE, **values}.items() if k in rule.arguments}
    return probe.url_map.bind("localhost").build(rule.endpoint, args, method=_methods(rule)[0])


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def protected_requests() -> list[Any]:
    out = []
    for rule in console_rules():
        if rule.endpoint == "admin.login":
            continue
        for method in _methods(rule):
            path = build(rule)
            out.append(pytest.param(method, path, id=f"{method} {path}"))
    return out


def download_pairs() -> list[tuple[Rule, Rule]]:
    """Return each download's CSV rule with its JSON twin."""
    by_endpoint = {r.endpoint: r for r in console_rules()}
    return [
        (rule, by_endpoint[rule.endpoint.removesuffix("_csv") + "_json"])
        for rule in console_rules()
        if rule.rule.endswith(".csv")
    ]


# -- data --------------------------------------------------------------------------------


def deliver(runner: CommandRunner, campaign: str, count: int, sent_at: str) -> None:
    result = runner.invoke(
        args=["delivered", "--list", "news", "--campaign", campaign, "--count", str(count),
              "--sent-at", sent_at]
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def one_click(app: Flask, email: str, campaign: str) -> None:
    uri = path_of(links_for(app, email, campaign=campaign).unsubscribe_url)
    with app.test_client().post(uri, data="List-Unsubscribe=One-Click") as response:
        assert response.status_code == 200


def target_of(app: Flask, session: Any, email: str, campaign: str | None) -> Any:
    token = path_of(links_for(app, email, campaign=campaign).preferences_url).rsplit("/", 1)[1]
    payload = runtime_of(app).minter.signer.verify(Purpose.PREFERENCES, token)
    return svc.resolve(session, payload)


def answer(app: Flask, email: str, campaign: str, reason: str | None, comment: str | None) -> None:
    with transaction(app) as session:
        target = target_of(app, session, email, campaign)
        prefs.record_survey(session, target, reason, comment, now=runtime_of(app).now())


def set_niche(app: Flask, name: str, niche: str) -> None:
    with transaction(app) as session:
        session.execute(sa.update(MailingList).where(MailingList.name == name).values(niche=niche))


def seed(app: Flask, runner: CommandRunner, api: ApiClient, clock: FakeClock) -> None:
    """Build a list with a niche, three signup cohorts, seven weekly sends and one spike."""
    make_list(app, display_name=DISPLAY)
    set_niche(app, "news", "ecommerce")
    clock.advance(days=-95)
    pool = []
    for month in range(3):
        pool += [f"m{month}-{j}@example.com" for j in range(25)]
        for email in pool[-25:]:
            links_for(app, email, campaign=None)
        clock.advance(days=30)
    pool = sorted(pool, key=lambda e: (int(e.split("-")[1].split("@")[0]), e))  # mix cohorts
    answers = list(ANSWERS)
    for key, count in SENDS:
        sent = clock.now
        deliver(runner, key, DELIVERED, sent.isoformat())
        for i in range(count):
            # The spike comes in the first hour; the other sends trickle in over hours.
            clock.advance(minutes=2 if key == "c5" and i < 22 else 25)
            email = pool.pop(0)
            one_click(app, email, key)
            if key == "c5" and answers:
                answer(app, email, key, *answers.pop(0))
        clock.advance(seconds=(sent + timedelta(days=7) - clock.now).total_seconds())
    for i in range(4):
        result = api.post("/lists/news/complaints", {"email": f"angry{i}@example.com",
                                                     "campaign": "c5"})  # fmt: skip
        assert result.status_code == 200, result.get_json()
    with transaction(app) as session:
        prefs.set_frequency(
            session, target_of(app, session, pool[0], "c6"), "monthly", now=clock.now
        )


def make_admin(app: Flask, clock: FakeClock, email: str = EMAIL) -> None:
    with transaction(app) as session:
        admin_users.create_admin(session, email, PASSWORD, now=clock.now)


#: Each sign-in comes from an address of its own, clear of the per-address limit (web.limits).
CLIENTS = (f"198.51.100.{i}" for i in itertools.cycle(range(1, 255)))


def sign_in(
    client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, *, next_: str | None = None
) -> Any:
    page = client.get("/admin/login").get_data(as_text=True)
    url = "/admin/login" + (f"?next={quote(next_, safe='')}" if next_ is not None else "")
    return client.post(
        url,
        data={"email": email, "password": password, "csrf_token": csrf_token(page)},
        environ_base={"REMOTE_ADDR": next(CLIENTS)},
    )


def signed_in_id(client: FlaskClient) -> Any:
    """Return the admin session id the browser's cookie holds (None when signed out)."""
    with client.session_transaction() as session:
        return session.get(console.SESSION_KEY)


@pytest.fixture
def admin_client(app: Flask, client: FlaskClient, clock: FakeClock) -> FlaskClient:
    make_admin(app, clock)
    assert sign_in(client).status_code == 303
    return client


@pytest.fixture
def seeded(app: Flask, runner: CommandRunner, api: ApiClient, clock: FakeClock) -> Flask:
    seed(app, runner, api, clock)
    return app


def text_of(html: str) -> str:
    """Return a page's text with tags dropped and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def row_html(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value!r}"
    return text_of(found.group(1))


# -- access control ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), protected_requests())
def test_every_console_address_needs_a_sign_in(
    app: Flask, client: FlaskClient, method: str, path: str
) -> None:
    make_list(app)
    before = snapshot(app)
    # A valid CSRF token of this browser, so the POSTs are refused for the sign-in, not CSRF.
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    data = {"csrf_token": token, "action": "set", "reason": "pivot"} if method == "POST" else None
    with client.open(path, method=method, data=data) as response:
        assert response.status_code in ((303,) if path == "/admin/logout" else (302,))
        location = urlsplit(response.headers["Location"])
    assert location.path == "/admin/login" and not location.netloc
    if path != "/admin/logout":
        assert parse_qs(location.query)["next"] == [path]
    assert snapshot(app) == before


def test_the_blueprint_holds_every_admin_address(app: Flask) -> None:
    """Nothing under /admin is served by another blueprint, out of the sign-in check's reach."""
    served = {(r.rule, r.endpoint) for r in app.url_map.iter_rules() if r.rule.startswith("/admin")}
    assert served == {(r.rule, r.endpoint) for r in console_rules()}
    assert len(protected_requests()) >= 20


def test_login_page(client: FlaskClient) -> None:
    response = client.get("/admin/login")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'autocomplete="current-password"' in page and csrf_token(page)
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password here"), ("nobody@example.com", PASSWORD), ("not an address", "x")],
    ids=["wrong-password", "unknown-address", "junk-address"],
)
def test_wrong_credentials_get_one_generic_answer(
    app: Flask, client: FlaskClient, clock: FakeClock, email: str, password: str
) -> None:
    make_admin(app, clock)
    response = sign_in(client, email, password)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wrong address or password." in page
    assert "no such" not in page.lower() and "unknown" not in page.lower()
    assert signed_in_id(client) is None
    with client.get("/admin") as overview:
        assert overview.status_code == 302


def test_right_password_signs_in_with_a_fresh_session(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    response = sign_in(client, "root@EXAMPLE.com")  # the address in any case
    assert response.status_code == 303 and response.headers["Location"] == "/admin"
    with client.session_transaction() as session:
        assert "planted" not in session
        assert isinstance(session[console.SESSION_KEY], str)
    assert "Set-Cookie" in response.headers and "HttpOnly" in response.headers["Set-Cookie"]
    assert "SameSite=Lax" in response.headers["Set-Cookie"]
    overview = client.get("/admin")
    assert overview.status_code == 200
    assert "Signed in as Root@Example.com" in overview.get_data(as_text=True)
    with transaction(app) as session:
        admin = session.scalars(sa.select(AdminUser)).one()
        assert admin.last_login_at == clock.now
        assert admin.password_hash.startswith("scrypt:")
    # Signed in already: the sign-in page sends the admin on.
    assert client.get("/admin/login").status_code == 303


def test_sign_out_needs_a_post_with_csrf_and_ends_the_session(
    admin_client: FlaskClient,
) -> None:
    page = admin_client.get("/admin").get_data(as_text=True)
    assert admin_client.get("/admin/logout").status_code == 405
    assert admin_client.post("/admin/logout").status_code == 400  # no CSRF token
    assert admin_client.get("/admin").status_code == 200
    response = admin_client.post("/admin/logout", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/login"
    assert signed_in_id(admin_client) is None
    assert admin_client.get("/admin").status_code == 302
    assert "You are signed out." in admin_client.get("/admin/login").get_data(as_text=True)


def test_sign_in_without_csrf_is_refused(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    make_admin(app, clock)
    response = client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert signed_in_id(client) is None


def test_empty_sign_in_form_is_400_with_field_errors(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    response = client.post("/admin/login", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "next_",
    [
        "https://evil.example/admin",
        "//evil.example/admin",
        "/\\evil.example/admin",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/admin/../..//evil.example",
        "/admin//evil.example",
        "/somewhere-else",
        "/admin\r\nLocation: https://evil.example",
        "admin",
        "",
    ],
    ids=lambda v: repr(v)[:30],
)
def test_next_never_leaves_the_console(
    app: Flask, client: FlaskClient, clock: FakeClock, next_: str
) -> None:
    make_admin(app, clock)
    response = sign_in(client, next_=next_)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"


def test_next_returns_to_the_page_asked_for(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_admin(app, clock)
    make_list(app)
    asked = "/admin/comments?list=news&reason=too_many"
    redirected = client.get(asked)
    login_url = redirected.headers["Location"]
    page = client.get(login_url).get_data(as_text=True)
    response = client.post(
        login_url, data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_token(page)}
    )
    assert response.headers["Location"] == asked


def test_disabled_admin_cannot_sign_in_and_is_signed_out(
    app: Flask, admin_client: FlaskClient, runner: CommandRunner
) -> None:
    assert admin_client.get("/admin").status_code == 200
    result = runner.invoke(args=["admin", "disable", "ROOT@example.com"])
    assert result.exit_code == 0, result.output
    assert admin_client.get("/admin").status_code == 302  # the open session ends
    response = sign_in(admin_client)
    assert "Wrong address or password." in response.get_data(as_text=True)
    assert signed_in_id(admin_client) is None


def test_a_sign_in_expires_after_a_working_day(admin_client: FlaskClient, clock: FakeClock) -> None:
    for _ in range(35):  # busy all day: a page every 20 minutes, under the idle timeout
        clock.advance(minutes=20)
        assert admin_client.get("/admin").status_code == 200
    clock.advance(minutes=25)  # 12 h 05 min after sign-in, idle for 25 minutes only
    assert admin_client.get("/admin").status_code == 302


# -- the CLI -------------------------------------------------------------------------------


def test_admin_cli(app: Flask, runner: CommandRunner, client: FlaskClient) -> None:
    created = runner.invoke(
        args=["admin", "create", "Ops@Example.com", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert created.exit_code == 0, created.output
    assert PASSWORD not in created.output
    short = runner.invoke(
        args=["admin", "create", "b@example.com", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    duplicate = runner.invoke(
        args=["admin", "create", "ops@EXAMPLE.com", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    prompted = runner.invoke(
        args=["admin", "create", "c@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.output  # the prompt is hidden
    listed = [
        json.loads(line) for line in runner.invoke(args=["admin", "list"]).stdout.splitlines()
    ]
    assert [a["email"] for a in listed] == ["Ops@Example.com", "c@example.com"]
    assert all("hash" not in key for a in listed for key in a)
    assert runner.invoke(args=["admin", "disable", "nobody@example.com"]).exit_code == 1
    assert sign_in(client, "ops@example.com").status_code == 303


# -- what the pages show -----------------------------------------------------------------


def test_pages_show_the_numbers_of_the_report(seeded: Flask, admin_client: FlaskClient) -> None:
    with transaction(seeded) as session:
        rows = reports.campaign_report(session, list_name="news")
        overview = reports.list_overview(session)[0]
        flagged = [p.campaign for p in reports.list_trend(session, "news") if p.well_above_average]
    assert flagged == ["c5"]
    assert {r.campaign: r.rates.band for r in rows} == {
        "c1": "good", "c2": "acceptable", "c3": "good", "c4": "acceptable",
        "c5": "critical", "c6": "acceptable", "c7": "investigate",
    }  # fmt: skip

    page = admin_client.get("/admin").get_data(as_text=True)
    cells = row_html(page, "data-list", "news")
    assert overview.rates.band is not None
    for value in (f"{overview.rates.delivered:,}", f"{overview.rates.unsubscribes:,}",
                  format_rate(overview.rates.unsubscribe_rate), overview.rates.band,
                  format_rate(overview.rates.complaint_rate), "below 0.1 %", "c7", "investigate",
                  "Ecommerce and DTC"):  # fmt: skip
        assert value in cells, value
    assert "unsubscribes ÷ delivered × 100, per send" in text_of(page)
    assert "Needs a look" in page

    page = admin_client.get("/admin/lists/news").get_data(as_text=True)
    for row in rows:
        cells = row_html(page, "data-campaign", row.campaign)
        assert row.rates.band is not None
        for value in (f"{row.rates.delivered:,}", f"{row.rates.unsubscribes:,}",
                      format_rate(row.rates.unsubscribe_rate), row.rates.band):  # fmt: skip
            assert value in cells, (row.campaign, value)
        assert ("well above average" in cells) == (row.campaign == "c5")
    assert page.count('role="img"') == 1 and "<svg" in page
    assert "members of the cohort" in page
    with transaction(seeded) as session:
        for cohort in reports.cohort_table(session, "news"):
            cells = row_html(page, "data-cohort", cohort.cohort)
            assert format_rate(cohort.honeymoon_rate) in cells
            assert format_rate(cohort.later_rate) in cells

    spike = next(r.rates for r in rows if r.campaign == "c5")
    page = admin_client.get("/admin/lists/news/campaigns/c5").get_data(as_text=True)
    text = text_of(page)
    assert f"Delivered {spike.delivered:,}" in text
    assert f"Unsubscribes {spike.unsubscribes:,}" in text
    assert f"Unsubscribe rate {format_rate(spike.unsubscribe_rate)} critical" in text
    assert f"Complaints {spike.complaints:,}" in text
    # The four complaints unsubscribe too, but are not unsubscribes in the accounting.
    assert "First hour after the send: 22 ; later: 8" in text
    assert "Sharp spike in the first hour" in text
    assert "Worth a look" in text
    assert page.count('role="img"') == 1


def test_csv_and_json_downloads_agree(seeded: Flask, admin_client: FlaskClient) -> None:
    seen = 0
    for csv_rule, json_rule in download_pairs():
        csv_path, json_path = build(csv_rule), build(json_rule)
        with admin_client.get(csv_path) as as_csv, admin_client.get(json_path) as as_json:
            assert as_csv.status_code == as_json.status_code == 200, csv_path
            assert as_csv.mimetype == "text/csv" and as_json.mimetype == "application/json"
            for response, fmt in ((as_csv, "csv"), (as_json, "json")):
                disposition = response.headers["Content-Disposition"]
                assert disposition.startswith("attachment;") and disposition.endswith(f'.{fmt}"')
                assert response.headers["Cache-Control"] == "no-store"
            table = list(csv.reader(io.StringIO(as_csv.get_data(as_text=True))))
            (key,) = as_json.get_json()
            records = as_json.get_json()[key]
        header, body = table[0], table[1:]
        assert len(body) == len(records), csv_path
        for cells, record in zip(body, records, strict=True):
            assert header == list(record)
            assert cells == [expected_cell(record[field]) for field in header], csv_path
        seen += len(records) > 0
    assert seen == len(download_pairs()) >= 9  # every table had rows to compare


def expected_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and value[:1] in "=+-@\t\r":
        return "'" + value
    return str(value)


def test_campaign_download_matches_the_report(seeded: Flask, admin_client: FlaskClient) -> None:
    with transaction(seeded) as session:
        expected = reports.campaign_report(session, list_name="news")
    with admin_client.get("/admin/lists/news/campaigns.json") as response:
        assert response.get_json() == {"campaigns": [tables.record(r) for r in expected]}
    with admin_client.get("/admin/lists/news/campaigns.csv") as response:
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["campaign"] for r in rows] == [r.campaign for r in expected]
    assert [float(r["unsubscribe_rate"]) for r in rows] == [
        r.rates.unsubscribe_rate for r in expected
    ]
    with admin_client.get("/admin/lists/news/campaigns/c5/timing.json") as response:
        # 30 one-click unsubscribes; the 4 complaints do not count as unsubscribes.
        assert sum(r["unsubscribes"] for r in response.get_json()["timing"]) == 30


def test_user_text_is_shown_escaped_and_csv_is_formula_safe(
    seeded: Flask, admin_client: FlaskClient
) -> None:
    page = admin_client.get("/admin/comments").get_data(as_text=True)
    assert XSS not in page and "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;click me&#34;)" in page
    for path in ("/admin", "/admin/lists/news", "/admin/lists/news/campaigns/c5"):
        page = admin_client.get(path).get_data(as_text=True)
        assert "<b onmouseover" not in page and "<script>" not in page
    assert "News &lt;b onmouseover=&#34;alert(3)&#34;&gt;Weekly&lt;/b&gt; &amp; Co" in page

    with admin_client.get("/admin/comments.csv") as response:
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    comments = {r["comment"] for r in rows}
    assert "'" + FORMULA in comments and FORMULA not in comments
    assert "'+1 to the person who said it is too much" in comments
    assert "'@someone sends the same news earlier" in comments
    assert XSS in comments  # not a formula: left as written
    with admin_client.get("/admin.csv") as response:
        (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["display_name"] == DISPLAY


def test_comments_filter_and_page(app: Flask, admin_client: FlaskClient, clock: FakeClock) -> None:
    make_list(app)
    links_for(app, "x@example.com", campaign="c1")
    links_for(app, "x@example.com", campaign="c2")
    with transaction(app) as session:
        list_id = session.scalar(sa.select(MailingList.id))
        campaigns = dict(session.execute(sa.select(Campaign.key, Campaign.id)).all())
        for i in range(63):
            campaign_id = campaigns["c1" if i % 3 else "c2"]
            event = Event(
                occurred_at=clock.now,
                kind="unsubscribe",
                channel="one_click",
                list_id=list_id,
                campaign_id=campaign_id,
            )
            session.add(event)
            session.flush()
            reason = "too_many" if i % 2 else "other"
            session.add(SurveyResponse(event_id=event.id, reason=reason,
                                          comment=f"comment number {i:02d}",
                                          created_at=clock.now + timedelta(minutes=i)))  # fmt: skip
    first = admin_client.get("/admin/comments").get_data(as_text=True)
    assert "63 comments; showing 1–50" in text_of(first)
    assert first.index("comment number 62") < first.index("comment number 61")  # newest first
    assert "comment number 12" not in first and "Page 1 of 2" in first
    second = admin_client.get("/admin/comments?page=2").get_data(as_text=True)
    assert "comment number 12" in second and "comment number 13" not in second
    assert "showing 51–63" in text_of(second)
    assert admin_client.get("/admin/comments?page=junk").status_code == 200

    filtered = admin_client.get("/admin/comments?campaign=c2&reason=other&list=news")
    text = text_of(filtered.get_data(as_text=True))
    expected = [i for i in range(63) if i % 3 == 0 and i % 2 == 0]
    assert f"{len(expected)} comments" in text
    assert all(f"comment number {i:02d}" in text for i in expected)
    with admin_client.get("/admin/comments.json?campaign=c2&reason=other&list=news") as response:
        downloaded = response.get_json()["comments"]
    assert sorted(c["comment"] for c in downloaded) == [f"comment number {i:02d}" for i in expected]
    with admin_client.get("/admin/comments.csv") as response:
        assert len(list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))) == 63


def test_excuse_is_set_and_cleared_with_csrf(seeded: Flask, admin_client: FlaskClient) -> None:
    url = "/admin/lists/news/campaigns/c5"
    page = admin_client.get(url).get_data(as_text=True)
    token = csrf_token(page)
    before = snapshot(seeded)
    refused = admin_client.post(url + "/excuse", data={"action": "set", "reason": "pivot"})
    assert refused.status_code == 400 and snapshot(seeded) == before
    missing = admin_client.post(
        url + "/excuse", data={"action": "set", "reason": "other", "csrf_token": token}
    )
    assert missing.status_code == 400
    assert "Describe the reason" in missing.get_data(as_text=True)
    too_long = admin_client.post(
        url + "/excuse",
        data={"action": "set", "reason": "acquired", "details": "x" * 190, "csrf_token": token},
    )
    assert too_long.status_code == 400 and snapshot(seeded) == before

    saved = admin_client.post(
        url + "/excuse",
        data={"action": "set", "reason": "acquired", "details": "Acme list", "csrf_token": token},
    )
    assert saved.status_code == 303 and saved.headers["Location"] == url
    with transaction(seeded) as session:
        row = reports.find_campaign(session, "news", "c5")
        assert row.excuse == "First sends to an acquired or inherited list: Acme list"
        assert not any(p.well_above_average for p in reports.list_trend(session, "news"))
    page = admin_client.get(url).get_data(as_text=True)
    assert "Worth a look" not in page and "critical · excused" in page
    assert 'id="excuse-status"' in page
    list_page = admin_client.get("/admin/lists/news").get_data(as_text=True)
    assert "well above average" not in row_html(list_page, "data-campaign", "c5")

    cleared = admin_client.post(url + "/excuse", data={"action": "clear", "csrf_token": token})
    assert cleared.status_code == 303
    with transaction(seeded) as session:
        assert session.scalar(sa.select(Campaign.excuse).where(Campaign.key == "c5")) is None
    assert "Worth a look" in admin_client.get(url).get_data(as_text=True)


def test_unknown_list_or_campaign_is_404(app: Flask, admin_client: FlaskClient) -> None:
    make_list(app)
    for path in ("/admin/lists/nope", "/admin/lists/news/campaigns/nope",
                 "/admin/lists/nope/campaigns.csv", "/admin/lists/news/campaigns/nope/timing.csv",
                 "/admin/lists/nope/cohorts.json"):  # fmt: skip
        with admin_client.get(path) as response:
            assert response.status_code == 404, path


def test_cli_and_console_write_csv_through_one_inert_writer(
    app: Flask,
    admin_client: FlaskClient,
    runner: CommandRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``report --format csv`` and the console's download share the one formula-safe writer."""
    make_list(app)
    key = '=HYPERLINK("x")'
    deliver(runner, key, 100, "2026-03-01T09:00:00+00:00")
    written: list[tuple[str, ...]] = []
    writer = tables.to_csv

    def spy(rows: Any, names: Any, **options: Any) -> str:
        written.append(tuple(names))
        return writer(rows, names, **options)

    monkeypatch.setattr(tables, "to_csv", spy)
    result = runner.invoke(args=["report", "--format", "csv"])
    assert result.exit_code == 0, result.output
    with admin_client.get("/admin/lists/news/campaigns.csv") as response:
        console = response.get_data(as_text=True)
    assert written == [tables.columns(CampaignRow)] * 2
    (from_cli,) = csv.DictReader(io.StringIO(result.stdout))
    (from_console,) = csv.DictReader(io.StringIO(console))
    assert from_cli["campaign"] == "'" + key
    assert from_cli == from_console  # the same cells; only the line ends differ
    assert console.endswith("\r\n") and "\r" not in result.stdout


def test_campaign_keys_with_slashes_and_markup(
    app: Flask, admin_client: FlaskClient, runner: CommandRunner
) -> None:
    make_list(app)
    key = "2026/spring <i>sale</i>"
    deliver(runner, key, 100, "2026-03-01T09:00:00+00:00")
    page = admin_client.get("/admin/lists/news").get_data(as_text=True)
    href = re.search(r'href="(/admin/lists/news/campaigns/2026/spring[^"]*)"', page)
    assert href, "no link to the campaign"
    assert "<i>sale" not in page
    response = admin_client.get(href.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert "Campaign 2026/spring &lt;i&gt;sale&lt;/i&gt;" in response.get_data(as_text=True)
    with admin_client.get(href.group(1) + "/timing.csv") as download:
        assert download.status_code == 200
        assert (
            'filename="unsubsvc-news-2026_spring_i_sale_i-timing.csv"'
            in (download.headers["Content-Disposition"])
        )


def test_empty_console(admin_client: FlaskClient, app: Flask) -> None:
    page = admin_client.get("/admin").get_data(as_text=True)
    assert "No lists yet" in page
    make_list(app)
    page = admin_client.get("/admin/lists/news").get_data(as_text=True)
    assert "No sends with deliveries yet." in page and "No sends yet" in page
