"""RecipientState: pauses that end by themselves, and per-topic choices."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from unsubsvc.core.preferences import RecipientState

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


def test_state_is_immutable() -> None:
    """A state is a value: it cannot be changed in place."""
    state = RecipientState()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.subscribed = False  # type: ignore[misc]
