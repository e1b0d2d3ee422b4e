"""Reports: rates per campaign from the counters, CLI formats, and counters against a recount."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ApiClient, FakeClock
from tests.helpers import CommandRunner, links_for, make_list, path_of, runner_for, transaction
from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.reporting import is_lost_unsubscribe, is_save
from unsubsvc.db.models import Event, MailingList
from unsubsvc.services import counters
from unsubsvc.web.context import runtime_of

CONTRACT_FIELDS = {
    "campaign", "list", "delivered", "unsubscribes", "unsubscribe_rate", "band",
    "complaints", "complaint_rate",
}  # fmt: skip


def one_click(app: Flask, email: str, campaign: str) -> None:
    uri = path_of(links_for(app, email, campaign=campaign).unsubscribe_url)
    assert app.test_client().post(uri, data="List-Unsubscribe=One-Click").status_code == 200


def sent(response: Any, status: int) -> None:
    """Check that an action sent over HTTP was answered as it should be (else it did nothing)."""
    assert response.status_code == status, response.get_data(as_text=True)


def report_json(runner: CommandRunner, *args: str) -> dict[str, dict[str, Any]]:
    result = runner.invoke(args=["report", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return {row["campaign"]: row for row in json.loads(result.stdout)["campaigns"]}


def deliver(runner: CommandRunner, campaign: str, count: int, *extra: str) -> None:
    result = runner.invoke(
        args=["delivered", "--list", "news", "--campaign", campaign, "--count", str(count), *extra]
    )
    assert result.exit_code == 0, result.output


def test_rates_bands_and_parts_that_add_up(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    deliver(runner, "c50", 6_000, "--sent-at", "2026-03-01T09:00:00Z")
    deliver(runner, "c50", 4_000)  # delivered in several parts adds up
    deliver(runner, "c51", 10_000, "--sent-at", "2026-03-08T09:00:00Z")
    deliver(runner, "zero", 0)
    for i in range(50):
        one_click(app, f"a{i}@example.com", "c50")
    for i in range(51):
        one_click(app, f"b{i}@example.com", "c51")
    one_click(app, "a0@example.com", "c50")  # the same recipient again counts once
    one_click(app, "z@example.com", "zero")

    rows = report_json(runner)

    assert CONTRACT_FIELDS <= set(rows["c50"])
    assert (rows["c50"]["delivered"], rows["c50"]["unsubscribes"]) == (10_000, 50)
    assert (rows["c50"]["unsubscribe_rate"], rows["c50"]["band"]) == (0.5, "acceptable")
    assert (rows["c51"]["unsubscribe_rate"], rows["c51"]["band"]) == (0.51, "investigate")
    assert rows["zero"]["unsubscribe_rate"] is None and rows["zero"]["band"] is None
    assert rows["zero"]["unsubscribes"] == 1
    # Oldest send first; a campaign with no send time sorts by when it was first seen.
    assert list(rows) == ["c50", "zero", "c51"]


def test_complaint_counts_as_a_complaint(app: Flask, api: ApiClient, runner: CommandRunner) -> None:
    make_list(app)
    deliver(runner, "c1", 1_000)
    api.post("/lists/news/complaints", {"email": "x@example.com", "campaign": "c1"})
    row = report_json(runner)["c1"]
    assert (row["complaints"], row["complaint_rate"], row["complaint_level"]) == (1, 0.1, "warning")
    # Industry accounting: the complainant is unsubscribed, but a complaint is not an unsubscribe in
    # the accounting.
    assert row["unsubscribes"] == 0
    assert (
        json.loads(
            runner.invoke(args=["status", "--list", "news", "--email", "x@example.com"]).stdout
        )["subscribed"]
        is False
    )


def test_csv_has_the_same_numbers(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    deliver(runner, "c1", 2_000)
    for i in range(7):
        one_click(app, f"p{i}@example.com", "c1")
    as_json = report_json(runner)["c1"]
    result = runner.invoke(args=["report", "--format", "csv", "--list", "news"])
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert int(row["delivered"]) == as_json["delivered"] == 2_000
    assert int(row["unsubscribes"]) == as_json["unsubscribes"] == 7
    assert float(row["unsubscribe_rate"]) == as_json["unsubscribe_rate"] == 0.35
    assert row["band"] == as_json["band"] == "acceptable"
    table = runner.invoke(args=["report"]).stdout
    assert "0.35%" in table and "acceptable" in table
    assert runner.invoke(args=["report", "--list", "nope"]).exit_code == 1


def test_report_filters_by_time(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    deliver(runner, "march", 10, "--sent-at", "2026-03-01T00:00:00Z")
    deliver(runner, "april", 10, "--sent-at", "2026-04-01T00:00:00Z")
    rows = report_json(runner, "--since", "2026-03-15", "--until", "2026-05-01")
    assert list(rows) == ["april"]
    # A campaign without a send time counts from when it was first seen (the clock: 09:30).
    deliver(runner, "unsent", 10)
    before = report_json(runner, "--since", "2026-03-01T00:00Z", "--until", "2026-03-02T09:30Z")
    assert list(before) == ["march"]  # --since is inclusive, --until exclusive
    assert list(report_json(runner, "--since", "2026-03-02T09:30Z")) == ["unsent", "april"]
    assert list(report_json(runner, "--list", "news")) == ["march", "unsent", "april"]


FORMULA = '=HYPERLINK("x")'


def test_csv_cells_a_spreadsheet_would_run_are_inert(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    deliver(runner, FORMULA, 100)
    deliver(runner, "+plain", 100, "--segment", "@everyone")
    result = runner.invoke(args=["report", "--format", "csv"])
    assert result.exit_code == 0, result.output
    formula, plain = csv.DictReader(io.StringIO(result.stdout))
    assert formula["campaign"] == "'" + FORMULA
    assert (plain["campaign"], plain["segment"]) == ("'+plain", "'@everyone")
    assert result.stdout.endswith("\n") and "\r" not in result.stdout
    # JSON and the table are not spreadsheets: the names stay as they are.
    assert list(report_json(runner)) == [FORMULA, "+plain"]
    assert FORMULA in runner.invoke(args=["report"]).stdout


def test_timing_in_every_format(app: Flask, runner: CommandRunner, clock: FakeClock) -> None:
    make_list(app)
    deliver(runner, "c1", 1_000, "--sent-at", clock.now.isoformat())
    for minutes, email in ((5, "a@example.com"), (10, "b@example.com"), (170, "c@example.com")):
        clock.advance(minutes=minutes)
        one_click(app, email, "c1")
    deliver(runner, "unsent", 1_000)

    def timing(campaign: str, *fmt: str) -> str:
        args = ["report", "timing", "--list", "news", "--campaign", campaign, *fmt]
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        return result.stdout

    found = json.loads(timing("c1"))
    assert timing("c1", "--format", "json") == timing("c1")  # JSON stays the default
    assert list(found) == ["sent_at", "first_hour", "later", "first_hour_share", "hint",
                           "bucket_minutes", "histogram"]  # fmt: skip
    assert (found["first_hour"], found["later"], found["bucket_minutes"]) == (2, 1, 10)
    assert found["histogram"] == [1, 1] + [0] * 10 + [1]  # 5, 15 and 185 minutes after
    rows = list(csv.DictReader(io.StringIO(timing("c1", "--format", "csv"))))
    assert [int(r["unsubscribes"]) for r in rows] == found["histogram"]
    assert (rows[0]["minutes_from"], rows[0]["minutes_to"]) == ("0", "10")
    assert (rows[-1]["minutes_from"], rows[-1]["minutes_to"]) == ("120", "")
    table = timing("c1", "--format", "table")
    assert table.splitlines()[0].split() == ["minutes_from", "minutes_to", "unsubscribes"]
    assert "First hour after the send: 2 (66.7 %); later: 1." in table
    # Without a send time there is nothing to split: JSON says so with the keys it always had.
    assert json.loads(timing("unsent")) == {
        "sent_at": None, "first_hour": None, "later": None, "hint": None, "histogram": [],
    }  # fmt: skip
    assert timing("unsent", "--format", "csv") == "minutes_from,minutes_to,unsubscribes\n"
    assert "No send time was recorded" in timing("unsent", "--format", "table")


def test_sql_predicates_agree_with_the_core_rules(app: Flask, clock: FakeClock) -> None:
    """``counters``' SQL for a save and a lost unsubscribe selects what the core's rules say."""
    make_list(app)
    details = (None, {"cause": "complaint"}, {"downgrade": True}, {"downgrade": False})
    with transaction(app) as session:
        mailing_list = session.scalars(sa.select(MailingList)).one()
        for kind in EventKind:
            for channel in Channel:
                for topic_id in (None, mailing_list.topics[0].id):
                    for detail in details:
                        session.add(Event(occurred_at=clock.now, kind=kind.value,
                                          channel=channel.value, list_id=mailing_list.id,
                                          topic_id=topic_id, detail=detail))  # fmt: skip
        session.flush()
        every = session.scalars(sa.select(Event)).all()

        def chosen(clause: Any) -> set[int]:
            return set(session.scalars(sa.select(Event.id).where(clause)))

        def ruled(rule: Any) -> set[int]:
            return {
                e.id
                for e in every
                if rule(e.kind, e.channel, topic_scoped=e.topic_id is not None, detail=e.detail)
            }

        lost, saved = chosen(counters.lost_unsubscribe_clause()), chosen(counters.save_clause())
        assert lost == ruled(is_lost_unsubscribe) and saved == ruled(is_save)
        assert lost and saved and not lost & saved and len(lost | saved) < len(every)


def test_exit_reasons_report(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    for email, reason in (("a@example.com", "too_many"), ("b@example.com", "too_many"),
                          ("c@example.com", "not_relevant")):  # fmt: skip
        client = app.test_client()
        center = path_of(links_for(app, email, campaign="c1").preferences_url)
        assert client.post(center + "/unsubscribe", data={"scope": "list"}).status_code == 303
        assert client.post(center + "/survey", data={"reason": reason}).status_code == 303
    result = runner.invoke(args=["report", "reasons", "--format", "json", "--campaign", "c1"])
    counts = {r["reason"]: r["count"] for r in json.loads(result.stdout)["reasons"]}
    assert counts["too_many"] == 2 and counts["not_relevant"] == 1 and counts["other"] == 0


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["one_click", "topic_click", "complaint", "bounce", "resubscribe", "downgrade",
             "pause", "topic_save", "deliver"]
        ),
        st.integers(min_value=0, max_value=4),  # recipient
        st.sampled_from(["c1", "c2", None]),  # campaign
    ),
    max_size=25,
)  # fmt: skip


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_counters_agree_with_a_recount(app: Flask, api: ApiClient, actions: list) -> None:  # type: ignore[type-arg]
    from unsubsvc.core.tokens import Purpose
    from unsubsvc.services import preferences as prefs
    from unsubsvc.services import unsubscribe as svc

    with transaction(app) as session:
        exists = session.execute(sa.text("SELECT 1 FROM mailing_list")).first()
    if not exists:
        make_list(app)
    for action, who, campaign in actions:
        email = f"r{who}@example.com"
        if action == "one_click":
            one_click(app, email, campaign or "c0")  # checks for 200 itself
        elif action == "topic_click":
            uri = path_of(links_for(app, email, campaign=campaign, topic="events").unsubscribe_url)
            sent(app.test_client().post(uri), 200)
        elif action == "complaint":
            sent(api.post("/lists/news/complaints", {"email": email, "campaign": campaign}), 200)
        elif action == "bounce":
            sent(api.post("/lists/news/bounces", {"email": email, "campaign": campaign}), 200)
        elif action == "resubscribe":
            path = f"/lists/news/recipients/{email}/resubscribe"
            sent(api.post(path, {"reason": "property test"}), 200)
        elif action == "deliver":
            path = f"/lists/news/campaigns/{campaign or 'c0'}/deliveries"
            sent(api.post(path, {"count": who * 100}), 201)
        else:
            links = links_for(app, email, campaign=campaign)
            runtime = runtime_of(app)
            with transaction(app) as session:
                payload = runtime.minter.signer.verify(
                    Purpose.PREFERENCES, path_of(links.preferences_url).rsplit("/", 1)[1]
                )
                target = svc.resolve(session, payload)
                now = runtime.now()
                if action == "downgrade":
                    prefs.set_frequency(session, target, "monthly", now=now)
                    prefs.set_frequency(session, target, "weekly", now=now)  # an upgrade: no save
                elif action == "pause":
                    prefs.pause(session, target, "2w", now=now)
                else:
                    prefs.set_topics(session, target, ["product"], now=now)
    with transaction(app) as session:
        assert counters.stored(session) == counters.recount(session)


def test_demo_history_is_consistent_with_the_live_path(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tables=False)
    runner = runner_for(app)
    result = runner.invoke(args=["demo", "--no-serve", "--campaigns", "8", "--recipients", "600"])
    assert result.exit_code == 0, result.output
    rows = report_json(runner)
    weekly = [r for name, r in rows.items() if name.startswith("weekly-")]
    assert len(weekly) == 8
    assert all(r["delivered"] > 0 for r in weekly)
    assert sum(r["unsubscribes"] for r in weekly) > 0
    with transaction(app) as session:
        assert counters.stored(session) == counters.recount(session)
    assert "Wrote 8 sends to 600 subscribers" in result.output
    # Running it again does not write the history twice: it says so, and the report is the same.
    again = runner.invoke(args=["demo", "--no-serve", "--campaigns", "8", "--recipients", "600"])
    assert again.exit_code == 0, again.output
    assert "Wrote" not in again.output
    assert "Demo list 'newsletter' is ready." in again.output
    assert report_json(runner) == rows


def test_breakdowns_by_segment_source_topic_and_trend(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    deliver(
        runner, "c1", 1_000, "--segment", "eu", "--source", "form", "--sent-at", "2026-03-01T09:00Z"
    )
    deliver(
        runner, "c2", 3_000, "--segment", "us", "--source", "form", "--sent-at", "2026-03-08T09:00Z"
    )
    for i in range(4):
        one_click(app, f"e{i}@example.com", "c1")
    for i in range(3):
        one_click(app, f"u{i}@example.com", "c2")
    topic_uri = path_of(
        links_for(app, "t@example.com", campaign="c2", topic="events").unsubscribe_url
    )
    app.test_client().post(topic_uri)

    def groups(dimension: str) -> dict[str, dict[str, Any]]:
        result = runner.invoke(args=["report", "by", dimension, "--format", "json"])
        assert result.exit_code == 0, result.output
        return {g[dimension]: g for g in json.loads(result.stdout)["groups"]}

    segments = groups("segment")
    assert (segments["eu"]["unsubscribe_rate"], segments["eu"]["band"]) == (0.4, "acceptable")
    assert segments["us"]["unsubscribes"] == 4 and segments["us"]["delivered"] == 3_000
    assert groups("source")["form"]["delivered"] == 4_000
    assert groups("topic")["news/events"]["unsubscribes"] == 1
    trend = runner.invoke(args=["report", "trend", "--list", "news", "--format", "json"])
    points = json.loads(trend.stdout)["trend"]
    assert [p["campaign"] for p in points] == ["c1", "c2"]
    assert points[1]["rolling_average"] == 0.4
    assert runner.invoke(args=["report", "by", "colour"]).exit_code == 2


def test_list_niche_puts_a_benchmark_beside_the_rate(app: Flask, runner: CommandRunner) -> None:
    make_list(app)
    assert runner.invoke(args=["list", "niche", "news", "astrology"]).exit_code == 1
    assert runner.invoke(args=["list", "niche", "news", "nonprofit"]).exit_code == 0
    deliver(runner, "c1", 10_000)
    for i in range(15):
        one_click(app, f"n{i}@example.com", "c1")
    row = report_json(runner)["c1"]
    assert (
        row["benchmark"] == "Nonprofit: typical 0.10–0.20 %; this send is within the typical range."
    )
    runner.invoke(args=["list", "niche", "news"])
    assert report_json(runner)["c1"]["benchmark"] is None
