"""Unsubscribe-rate maths and rules on hand-computed fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from unsubsvc.core.events import Channel, EventKind
from unsubsvc.core.reporting import (
    Band,
    ComplaintLevel,
    Rates,
    band,
    band_range,
    cohorts,
    complaint_level,
    is_lost_unsubscribe,
    is_save,
    needs_a_look,
    niche_reading,
    rate,
    rules_in_brief,
    timing_split,
    trend,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unsubscribes", "delivered", "expected_rate", "expected_band"),
    [
        (50, 10_000, 0.5, Band.ACCEPTABLE),
        (51, 10_000, 0.51, Band.INVESTIGATE),
        (20, 10_000, 0.2, Band.ACCEPTABLE),
        (19, 10_000, 0.19, Band.GOOD),
        (100, 10_000, 1.0, Band.INVESTIGATE),
        (101, 10_000, 1.01, Band.CRITICAL),
        (0, 10_000, 0.0, Band.GOOD),
        (1, 500, 0.2, Band.ACCEPTABLE),  # 0.2 exactly, though 1/500*100 is not in floats
        (1, 3, 33.3333, Band.CRITICAL),
        (0, 0, None, None),
        (5, 0, None, None),
    ],
    ids=[
        "0.5-acceptable",
        "0.51-investigate",
        "0.2-acceptable",
        "0.19-good",
        "1.0-investigate",
        "1.01-critical",
        "zero",
        "exact-edge",
        "rounded",
        "nothing-delivered",
        "unsubscribes-without-deliveries",
    ],
)
def test_rate_and_band(
    unsubscribes: int, delivered: int, expected_rate: float | None, expected_band: Band | None
) -> None:
    assert rate(unsubscribes, delivered) == expected_rate
    assert band(unsubscribes, delivered) == expected_band


@pytest.mark.parametrize(
    ("complaints", "delivered", "level"),
    [(9, 10_000, ComplaintLevel.OK), (10, 10_000, ComplaintLevel.WARNING),
     (29, 10_000, ComplaintLevel.WARNING), (30, 10_000, ComplaintLevel.CRITICAL), (0, 0, None)],
    ids=["below-0.1", "at-0.1", "below-0.3", "at-0.3", "nothing-delivered"],
)  # fmt: skip
def test_complaint_level(complaints: int, delivered: int, level: ComplaintLevel | None) -> None:
    assert complaint_level(complaints, delivered) == level


def test_niche_reading() -> None:
    assert niche_reading("nonprofit", 0.15) == (
        "Nonprofit: typical 0.10–0.20 %; this send is within the typical range."
    )
    assert "above the typical range" in (niche_reading("finance", 0.3) or "")
    assert niche_reading("unknown", 0.3) is None
    assert niche_reading("media", None) is None


def test_rolling_average_of_the_four_previous_sends() -> None:
    # rates: 0.2, 0.2, 0.25, 0.2, 0.8, 0.25, 0.3  (per 10,000 delivered)
    counts = [20, 20, 25, 20, 80, 25, 30]
    series = [(f"c{i}", T0 + timedelta(days=7 * i), n, 10_000) for i, n in enumerate(counts)]
    points = trend(series)
    assert [p.unsubscribe_rate for p in points] == [0.2, 0.2, 0.25, 0.2, 0.8, 0.25, 0.3]
    # (0.2+0.2+0.25)/3, then windows of the last four: (0.2+0.2+0.25+0.2)/4, …
    assert [p.rolling_average for p in points] == [
        None, 0.2, 0.2, 0.2167, 0.2125, 0.3625, 0.375,
    ]  # fmt: skip
    assert [p.well_above_average for p in points] == [False] * 4 + [True] + [False] * 2


def test_one_earlier_send_is_too_little_history() -> None:
    points = trend([("a", T0, 10, 10_000), ("b", T0, 40, 10_000)])
    assert points[1].well_above_average is False


def test_small_absolute_rises_are_not_flagged() -> None:
    points = trend([("a", T0, 2, 10_000), ("b", T0, 5, 10_000)])  # 0.02 → 0.05
    assert points[1].well_above_average is False


def test_sends_without_deliveries_do_not_enter_the_average() -> None:
    points = trend(
        [("a", T0, 10, 10_000), ("b", T0, 3, 0), ("c", T0, 10, 10_000), ("d", T0, 40, 10_000)]
    )
    assert points[1].unsubscribe_rate is None
    assert points[3].rolling_average == 0.1
    assert points[3].well_above_average is True


def test_timing_split_and_hints() -> None:
    spike = [T0 + timedelta(minutes=m) for m in (1, 2, 5, 9, 15, 20, 30, 45, 50, 59)] + [
        T0 + timedelta(hours=3)
    ]
    split = timing_split(T0, spike)
    assert (split.first_hour, split.later, split.first_hour_share) == (10, 1, 90.9)
    assert split.hint is not None and "topic drift" in split.hint

    trickle = [T0 + timedelta(minutes=20)] + [T0 + timedelta(hours=h) for h in range(1, 10)]
    split = timing_split(T0, trickle)
    assert (split.first_hour, split.later) == (1, 9)
    assert split.hint is not None and "frequency" in split.hint

    assert timing_split(T0, [T0 + timedelta(minutes=1)] * 3).hint is None  # too few to read
    # Exactly 60 minutes after the send is "later"; before the send does not count.
    edge = timing_split(T0, [T0 + timedelta(minutes=60), T0 - timedelta(minutes=1)])
    assert (edge.first_hour, edge.later) == (0, 1)


def test_cohorts_split_honeymoon_from_later_sends() -> None:
    jan = datetime(2026, 1, 10, tzinfo=UTC)
    feb = datetime(2026, 2, 10, tzinfo=UTC)
    sends = [
        datetime(2026, m, d, tzinfo=UTC) for m, d in ((1, 15), (2, 1), (2, 15), (3, 1), (3, 15))
    ]
    joins = [(1, jan), (2, jan), (3, jan), (4, feb), (5, feb)]
    unsubscribes = [
        (1, datetime(2026, 1, 16, tzinfo=UTC)),  # after 1 send: honeymoon
        (2, datetime(2026, 3, 2, tzinfo=UTC)),  # after 4 sends: later
        (2, datetime(2026, 3, 3, tzinfo=UTC)),  # the same person again: counted once
        (4, datetime(2026, 2, 16, tzinfo=UTC)),  # after 2 sends since joining: honeymoon
        (9, datetime(2026, 2, 16, tzinfo=UTC)),  # not a member of any cohort here
    ]
    rows = cohorts(joins, unsubscribes, sends)
    assert [
        (r.cohort, r.members, r.honeymoon_unsubscribes, r.later_unsubscribes) for r in rows
    ] == [
        ("2026-01", 3, 1, 1),
        ("2026-02", 2, 1, 0),
    ]
    assert rows[0].honeymoon_rate == 33.3333
    assert rows[1].later_rate == 0.0


def test_rates_follow_from_the_counts() -> None:
    figures = Rates(delivered=10_000, unsubscribes=51, complaints=30)
    assert (figures.unsubscribe_rate, figures.band) == (0.51, Band.INVESTIGATE)
    assert (figures.complaint_rate, figures.complaint_level) == (0.3, ComplaintLevel.CRITICAL)
    nothing = Rates(delivered=0, unsubscribes=2, complaints=0)
    assert (nothing.unsubscribe_rate, nothing.band, nothing.complaint_level) == (None, None, None)


def test_rules_in_words_follow_the_edges() -> None:
    assert [band_range(b) for b in Band] == [
        "below 0.2 %", "0.2 % to 0.5 %", "above 0.5 % to 1.0 %", "above 1.0 %",
    ]  # fmt: skip
    assert rules_in_brief() == (
        "Bands: good < 0.2 %, acceptable ≤ 0.5 %, investigate ≤ 1 %, critical > 1 %. "
        "Complaints: warning at 0.1 %, critical at 0.3 %."
    )


UNSUB, CENTER, ONE_CLICK = EventKind.UNSUBSCRIBE, Channel.PREFERENCE_CENTER, Channel.ONE_CLICK


@pytest.mark.parametrize(
    ("kind", "channel", "topic_scoped", "detail", "saved", "lost"),
    [
        (UNSUB, ONE_CLICK, False, None, False, True),
        (UNSUB, ONE_CLICK, True, None, False, True),  # a topic link from a message: a loss
        (UNSUB, CENTER, False, None, False, True),
        (UNSUB, CENTER, True, None, True, False),  # a topic opt-out in the center: a save
        (UNSUB, Channel.API, False, {"cause": "complaint"}, False, False),
        (EventKind.PAUSE, CENTER, False, {"until": "x"}, True, False),
        (EventKind.FREQUENCY_CHANGE, CENTER, False, {"downgrade": True}, True, False),
        (EventKind.FREQUENCY_CHANGE, CENTER, False, {"downgrade": False}, False, False),
        (EventKind.COMPLAINT, Channel.API, False, None, False, False),
        (EventKind.RESUBSCRIBE, Channel.API, False, None, False, False),
    ],
    ids=["one-click", "topic-link", "center-list", "center-topic", "after-complaint", "pause",
         "downgrade", "upgrade", "complaint", "resubscribe"],
)  # fmt: skip
def test_what_an_event_counts_as(
    kind: str,
    channel: str,
    topic_scoped: bool,
    detail: dict[str, object] | None,
    saved: bool,
    lost: bool,
) -> None:
    assert is_save(kind, channel, topic_scoped=topic_scoped, detail=detail) is saved
    assert is_lost_unsubscribe(kind, channel, topic_scoped=topic_scoped, detail=detail) is lost


@pytest.mark.parametrize(
    ("band_value", "complaints", "excused", "expected"),
    [
        ("good", "ok", False, False),
        ("acceptable", None, False, False),
        ("investigate", "ok", False, True),
        ("critical", "ok", False, True),
        ("critical", "ok", True, False),  # an excuse covers the band
        ("good", "warning", False, True),
        ("good", "critical", True, True),  # but never complaints
        (None, None, False, False),
    ],
    ids=["good", "acceptable", "investigate", "critical", "excused", "complaint-warning",
         "excused-complaints", "nothing-delivered"],
)  # fmt: skip
def test_what_needs_a_look(
    band_value: str | None, complaints: str | None, excused: bool, expected: bool
) -> None:
    assert needs_a_look(band_value, complaints, excused=excused) is expected
