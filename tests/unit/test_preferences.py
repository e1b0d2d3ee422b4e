"""RecipientState: pauses that end by themselves, and per-topic choices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.preferences import (
    RecipientState,
    Verdict,
    check_survey,
    is_downgrade,
    may_mail,
    pause_end,
    undo_allowed,
)

PAUSED_UNTIL = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
PAUSED = RecipientState(paused_until=PAUSED_UNTIL)


@pytest.mark.parametrize(
    ("now", "paused"),
    [
        (PAUSED_UNTIL - timedelta(days=30), True),
        (PAUSED_UNTIL - timedelta(microseconds=1), True),
        (PAUSED_UNTIL, False),
        (PAUSED_UNTIL + timedelta(microseconds=1), False),
        (PAUSED_UNTIL + timedelta(days=365), False),
    ],
    ids=["month-before", "just-before", "at-end", "just-after", "year-after"],
)
def test_is_paused_until_the_end_date(now: datetime, paused: bool) -> None:
    """A pause is in force strictly before its end and over from that moment on."""
    assert PAUSED.is_paused(now) is paused


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (PAUSED_UNTIL - timedelta(hours=1), PAUSED_UNTIL),
        (PAUSED_UNTIL, None),
        (PAUSED_UNTIL + timedelta(hours=1), None),
    ],
    ids=["before", "at-end", "after"],
)
def test_active_pause(now: datetime, expected: datetime | None) -> None:
    """The pause in force is reported with its end date; an expired one as None."""
    assert PAUSED.active_pause(now) == expected


def test_pause_compares_instants_not_wall_clocks() -> None:
    """The same instant in another time zone gives the same answer."""
    plus_two = timezone(timedelta(hours=2))
    just_before_elsewhere = datetime(2026, 4, 1, 1, 59, tzinfo=plus_two)  # 23:59 UTC
    at_end_elsewhere = datetime(2026, 4, 1, 2, 0, tzinfo=plus_two)  # 00:00 UTC
    assert PAUSED.is_paused(just_before_elsewhere) is True
    assert PAUSED.is_paused(at_end_elsewhere) is False


def test_no_pause() -> None:
    """Without a pause date nothing is paused, at any time."""
    state = RecipientState()
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert state.is_paused(now) is False
    assert state.active_pause(now) is None


def test_defaults() -> None:
    """A fresh state is subscribed to everything, with no frequency or pause."""
    state = RecipientState()
    assert state.subscribed is True
    assert state.opted_out_topics == frozenset()
    assert state.frequency is None
    assert state.paused_until is None


def test_topic_choices_follow_list_order_and_opt_outs() -> None:
    """Each of the list's topics, in the list's order, maps to whether it is wanted."""
    state = RecipientState(opted_out_topics=frozenset({"events", "offers"}))
    choices = state.topic_choices(["product", "events", "offers", "digest"])
    assert list(choices) == ["product", "events", "offers", "digest"]
    assert choices == {"product": True, "events": False, "offers": False, "digest": True}


def test_topic_choices_in_another_order() -> None:
    """The order comes from the topics given, not from sorting."""
    state = RecipientState(opted_out_topics=frozenset({"b"}))
    assert list(state.topic_choices(["c", "b", "a"]).items()) == [
        ("c", True),
        ("b", False),
        ("a", True),
    ]


def test_topic_choices_ignore_opt_outs_of_unknown_topics() -> None:
    """An opt-out of a topic the list no longer has does not show up."""
    state = RecipientState(opted_out_topics=frozenset({"retired"}))
    assert state.topic_choices(["product"]) == {"product": True}
    assert state.topic_choices([]) == {}


# --- may_mail: the rule the sender API's eligibility call applies ----------------------------


RULE_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FREQUENCIES = ("daily", "weekly", "monthly")


@pytest.mark.parametrize(
    ("state", "kwargs", "verdict"),
    [
        (RecipientState(), {}, Verdict.OK),
        (RecipientState(subscribed=False), {}, Verdict.UNSUBSCRIBED),
        (RecipientState(unsubscribed_all=True), {}, Verdict.UNSUBSCRIBED_ALL),
        (RecipientState(opted_out_topics=frozenset({"events"})), {"topic": "events"},
         Verdict.TOPIC_OPTED_OUT),
        (RecipientState(opted_out_topics=frozenset({"events"})), {"topic": "product"},
         Verdict.OK),
        (RecipientState(opted_out_topics=frozenset({"events"})), {}, Verdict.OK),
        (RecipientState(paused_until=RULE_NOW + timedelta(days=1)), {}, Verdict.PAUSED),
        (RecipientState(paused_until=RULE_NOW), {}, Verdict.OK),
        (RecipientState(frequency="monthly"), {"cadence": "weekly"}, Verdict.FREQUENCY),
        (RecipientState(frequency="monthly"), {"cadence": "monthly"}, Verdict.OK),
        (RecipientState(frequency="weekly"), {"cadence": "monthly"}, Verdict.OK),
        (RecipientState(frequency="daily"), {"cadence": "daily"}, Verdict.OK),
        (RecipientState(frequency="weekly"), {"cadence": "daily"}, Verdict.FREQUENCY),
        (RecipientState(subscribed=False), {"transactional": True}, Verdict.OK),
        (RecipientState(unsubscribed_all=True, paused_until=RULE_NOW + timedelta(days=9)),
         {"transactional": True}, Verdict.OK),
        (RecipientState(subscribed=False, paused_until=RULE_NOW + timedelta(days=1)), {},
         Verdict.UNSUBSCRIBED),
    ],
    ids=[
        "defaults", "unsubscribed", "unsubscribed-all", "topic-opted-out", "other-topic",
        "no-topic-named", "paused", "pause-ended", "monthly-reader-weekly-send",
        "monthly-reader-monthly-send", "weekly-reader-monthly-send", "daily-daily",
        "weekly-reader-daily-send", "transactional-ignores-unsubscribe",
        "transactional-ignores-everything", "unsubscribed-wins-over-paused",
    ],
)  # fmt: skip
def test_may_mail(state: RecipientState, kwargs: dict[str, Any], verdict: Verdict) -> None:
    assert may_mail(state, now=RULE_NOW, frequencies=FREQUENCIES, **kwargs) is verdict


def test_may_mail_refuses_an_unknown_cadence() -> None:
    with pytest.raises(InvalidInput, match="unknown cadence"):
        may_mail(RecipientState(frequency="weekly"), now=RULE_NOW, frequencies=FREQUENCIES,
                 cadence="hourly")  # fmt: skip


@pytest.mark.parametrize(
    ("option", "days"), [("2w", 14), ("1m", 30), ("3m", 91)], ids=["2w", "1m", "3m"]
)
def test_pause_end(option: str, days: int) -> None:
    assert pause_end(option, RULE_NOW) == RULE_NOW + timedelta(days=days)


def test_pause_end_refuses_unknown_option() -> None:
    with pytest.raises(InvalidInput):
        pause_end("forever", RULE_NOW)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [("daily", "monthly", True), ("monthly", "weekly", False), ("weekly", "weekly", False),
     (None, "weekly", False), ("weekly", "yearly", False)],
    ids=["down", "up", "same", "no-old", "unknown-new"],
)  # fmt: skip
def test_is_downgrade(old: str | None, new: str, expected: bool) -> None:
    assert is_downgrade(FREQUENCIES, old, new) is expected


@pytest.mark.parametrize(
    ("reason", "comment", "expected"),
    [("too_many", None, ("too_many", None)), (None, "  spaced  ", (None, "spaced")),
     (None, "   ", (None, None)), ("other", "<b>x</b>", ("other", "<b>x</b>")),
     (None, "x" * 500, (None, "x" * 500))],
    ids=["reason", "trimmed", "blank", "markup-kept-as-text", "at-limit"],
)  # fmt: skip
def test_check_survey(
    reason: str | None, comment: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert check_survey(reason, comment) == expected


@pytest.mark.parametrize(
    ("reason", "comment"), [("bored", None), (None, "x" * 501)], ids=["bad-reason", "too-long"]
)
def test_check_survey_refuses(reason: str | None, comment: str | None) -> None:
    with pytest.raises(InvalidInput):
        check_survey(reason, comment)


def test_check_survey_states_the_limit_inclusively() -> None:
    with pytest.raises(InvalidInput, match="up to 500 characters"):
        check_survey(None, "x" * 501)


@pytest.mark.parametrize(
    ("link_event", "latest", "allowed"),
    [(7, 7, True), (7, 9, False), (7, None, False), (9, 7, False)],
    ids=["still-newest", "newer-change", "no-change-recorded", "link-from-the-future"],
)
def test_undo_only_while_its_unsubscribe_is_the_newest_change(
    link_event: int, latest: int | None, allowed: bool
) -> None:
    assert undo_allowed(link_event, latest) is allowed
