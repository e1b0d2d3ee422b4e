"""Reports: rates per campaign from the counters, CLI formats, and counters against a recount."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ApiClient
from tests.helpers import links_for, make_list, path_of
from unsubsvc.services import counters
from unsubsvc.web.extensions import db

CONTRACT_FIELDS = {
    "campaign", "list", "delivered", "unsubscribes", "unsubscribe_rate", "band",
    "complaints", "complaint_rate",
}  # fmt: skip


def one_click(app: Flask, email: str, campaign: str) -> None:
    uri = path_of(links_for(app, email, campaign=campaign).unsubscribe_url)
    assert app.test_client().post(uri, data="List-Unsubscribe=One-Click").status_code == 200


def report_json(runner: FlaskCliRunner, *args: str) -> dict[str, dict[str, Any]]:
    result = runner.invoke(args=["report", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return {row["campaign"]: row for row in json.loads(result.stdout)["campaigns"]}


def deliver(runner: FlaskCliRunner, campaign: str, count: int, *extra: str) -> None:
    result = runner.invoke(
        args=["delivered", "--list", "news", "--campaign", campaign, "--count", str(count), *extra]
    )
    assert result.exit_code == 0, result.output


def test_rates_bands_and_parts_that_add_up(app: Flask, runner: FlaskCliRunner) -> None:
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


def test_complaint_counts_as_a_complaint(
    app: Flask, api: ApiClient, runner: FlaskCliRunner
) -> None:
    make_list(app)
    deliver(runner, "c1", 1_000)
    api.post("/lists/news/complaints", {"email": "x@example.com", "campaign": "c1"})
    row = report_json(runner)["c1"]
    assert (row["complaints"], row["complaint_rate"], row["complaint_level"]) == (1, 0.1, "warning")
    # RATE-FACTS: the complainant is unsubscribed, but a complaint is not an unsubscribe in
    # the accounting.
    assert row["unsubscribes"] == 0
    assert (
        json.loads(
            runner.invoke(args=["status", "--list", "news", "--email", "x@example.com"]).stdout
        )["subscribed"]
        is False
    )


def test_csv_has_the_same_numbers(app: Flask, runner: FlaskCliRunner) -> None:
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


def test_report_filters_by_time(app: Flask, runner: FlaskCliRunner) -> None:
    make_list(app)
    deliver(runner, "march", 10, "--sent-at", "2026-03-01T00:00:00Z")
    deliver(runner, "april", 10, "--sent-at", "2026-04-01T00:00:00Z")
    rows = report_json(runner, "--since", "2026-03-15", "--until", "2026-05-01")
    assert list(rows) == ["april"]


def test_exit_reasons_report(app: Flask, runner: FlaskCliRunner) -> None:
    from tests.helpers import csrf_token

    make_list(app)
    for email, reason in (("a@example.com", "too_many"), ("b@example.com", "too_many"),
                          ("c@example.com", "not_relevant")):  # fmt: skip
        client = app.test_client()
        links = links_for(app, email, campaign="c1")
        page = client.post(
            path_of(links.preferences_url) + "/unsubscribe",
            data={
                "scope": "list",
                "csrf_token": csrf_token(
                    client.get(path_of(links.preferences_url)).get_data(as_text=True)
                ),
            },
        ).get_data(as_text=True)
        client.post(
            path_of(links.preferences_url) + "/survey",
            data={"reason": reason, "csrf_token": csrf_token(page)},
        )
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
    from unsubsvc.web import context

    with app.app_context():
        if not db.session.execute(db.text("SELECT 1 FROM mailing_list")).first():
            make_list(app)
    for action, who, campaign in actions:
        email = f"r{who}@example.com"
        if action == "one_click":
            one_click(app, email, campaign or "c0")
        elif action == "topic_click":
            uri = path_of(links_for(app, email, campaign=campaign, topic="events").unsubscribe_url)
            app.test_client().post(uri)
        elif action == "complaint":
            api.post("/lists/news/complaints", {"email": email, "campaign": campaign})
        elif action == "bounce":
            api.post("/lists/news/bounces", {"email": email, "campaign": campaign})
        elif action == "resubscribe":
            api.post(f"/lists/news/recipients/{email}/resubscribe", {"reason": "property test"})
        elif action == "deliver":
            api.post(f"/lists/news/campaigns/{campaign or 'c0'}/deliveries", {"count": who * 100})
        else:
            links = links_for(app, email, campaign=campaign)
            with app.app_context():
                payload = context.minter().signer.verify(
                    Purpose.PREFERENCES, path_of(links.preferences_url).rsplit("/", 1)[1]
                )
                target = svc.resolve(db.session(), payload)
                now = context.now()
                if action == "downgrade":
                    prefs.set_frequency(db.session(), target, "monthly", now=now)
                    prefs.set_frequency(
                        db.session(), target, "weekly", now=now
                    )  # an upgrade: no save
                elif action == "pause":
                    prefs.pause(db.session(), target, "2w", now=now)
                else:
                    prefs.set_topics(db.session(), target, ["product"], now=now)
    with app.app_context():
        assert counters.stored(db.session()) == counters.recount(db.session())


def test_demo_history_is_consistent_with_the_live_path(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tables=False)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--no-serve", "--campaigns", "8", "--recipients", "600"])
    assert result.exit_code == 0, result.output
    rows = report_json(runner)
    weekly = [r for name, r in rows.items() if name.startswith("weekly-")]
    assert len(weekly) == 8
    assert all(r["delivered"] > 0 for r in weekly)
    assert sum(r["unsubscribes"] for r in weekly) > 0
    with app.app_context():
        assert counters.stored(db.session()) == counters.recount(db.session())
    # Running it again does not write the history twice.
    runner.invoke(args=["demo", "--no-serve", "--campaigns", "8", "--recipients", "600"])
    assert len(report_json(runner)) == len(rows)


def test_breakdowns_by_segment_source_topic_and_trend(app: Flask, runner: FlaskCliRunner) -> None:
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


def test_list_niche_puts_a_benchmark_beside_the_rate(app: Flask, runner: FlaskCliRunner) -> None:
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
