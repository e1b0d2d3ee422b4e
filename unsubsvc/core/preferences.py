"""Preference rules: what a recipient's stored choices mean at a given moment.

Plain data in, decisions out: the sender API's eligibility check, the
preference center and the status command all read choices through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from unsubsvc.core.errors import InvalidInput

#: The pauses the preference center offers, shortest first: (key, label, length).
PAUSE_OPTIONS: tuple[tuple[str, str, timedelta], ...] = (
    ("2w", "2 weeks", timedelta(weeks=2)),
    ("1m", "1 month", timedelta(days=30)),
    ("3m", "3 months", timedelta(days=91)),
)

#: Exit-survey reasons, in the order they are offered (industry practice: 3-5 reasons).
SURVEY_REASONS: tuple[tuple[str, str], ...] = (
    ("too_many", "Too many emails"),
    ("not_relevant", "The content is not relevant to me"),
    ("never_signed_up", "I never signed up"),
    ("found_alternative", "I found an alternative"),
    ("other", "Other"),
)
SURVEY_COMMENT_MAX = 500


@dataclass(frozen=True)
class RecipientState:
    """A recipient's stored choices on one list, independent of storage."""

    subscribed: bool = True
    opted_out_topics: frozenset[str] = field(default_factory=frozenset)
    frequency: str | None = None
    paused_until: datetime | None = None
    #: Set when the recipient left every list of the sender at once.
    unsubscribed_all: bool = False
    #: Set while bounces suppress the address on the list (``core.suppression``).
    bounced: bool = False

    @property
    def receives_mail(self) -> bool:
        """Return whether the recipient is on the list at all (pauses aside)."""
        return self.subscribed and not self.unsubscribed_all

    def is_paused(self, now: datetime) -> bool:
        """Return whether a pause is in force; a pause ends by itself when its date passes."""
        return self.paused_until is not None and now < self.paused_until

    def active_pause(self, now: datetime) -> datetime | None:
        """Return the end of the pause in force, or None."""
        return self.paused_until if self.is_paused(now) else None

    def topic_choices(self, topics: Sequence[str]) -> dict[str, bool]:
        """Return, for each of the list's topics in order, whether the recipient wants it."""
        return {slug: slug not in self.opted_out_topics for slug in topics}


class Verdict(StrEnum):
    """Why a recipient may or may not be mailed now; ``OK`` is the only yes."""

    OK = "ok"
    UNSUBSCRIBED = "unsubscribed"
    UNSUBSCRIBED_ALL = "unsubscribed_all"
    TOPIC_OPTED_OUT = "topic_opted_out"
    PAUSED = "paused"
    FREQUENCY = "frequency"
    #: Hard bounces (or enough soft ones): the address does not take mail.
    BOUNCED = "bounced"


def may_mail(
    state: RecipientState,
    *,
    now: datetime,
    frequencies: Sequence[str] = (),
    topic: str | None = None,
    cadence: str | None = None,
    transactional: bool = False,
) -> Verdict:
    """Decide whether a send may go to this recipient now.

    Transactional mail (receipts, password resets) is never suppressed by a
    marketing preference. A send at ``cadence`` reaches people whose chosen
    frequency is that cadence or a more frequent one: someone who chose
    monthly gets the monthly digest but not the weekly letter. A bounced
    address is not mailed at all: it would bounce again, whatever the mail.
    """
    if state.bounced:
        return Verdict.BOUNCED
    if transactional:
        return Verdict.OK
    if state.unsubscribed_all:
        return Verdict.UNSUBSCRIBED_ALL
    if not state.subscribed:
        return Verdict.UNSUBSCRIBED
    if topic is not None and topic in state.opted_out_topics:
        return Verdict.TOPIC_OPTED_OUT
    if state.is_paused(now):
        return Verdict.PAUSED
    if cadence is not None and state.frequency is not None:
        order = list(frequencies)
        if cadence not in order:
            raise InvalidInput(f"unknown cadence {cadence!r} (frequencies: {', '.join(order)})")
        if state.frequency in order and order.index(state.frequency) > order.index(cadence):
            return Verdict.FREQUENCY
    return Verdict.OK


def pause_end(option: str, now: datetime) -> datetime:
    """Return when a pause chosen as ``option`` (a PAUSE_OPTIONS key) ends."""
    for key, _label, length in PAUSE_OPTIONS:
        if key == option:
            return now + length
    raise InvalidInput(f"unknown pause {option!r}")


def is_downgrade(frequencies: Sequence[str], old: str | None, new: str) -> bool:
    """Return whether moving from ``old`` to ``new`` means less mail."""
    order = list(frequencies)
    if old not in order or new not in order:
        return False
    return order.index(new) > order.index(old)


def check_survey(reason: str | None, comment: str | None) -> tuple[str | None, str | None]:
    """Return a cleaned exit-survey answer, or raise InvalidInput."""
    if reason is not None and reason not in {key for key, _ in SURVEY_REASONS}:
        raise InvalidInput(f"unknown reason {reason!r}")
    text = (comment or "").strip() or None
    if text is not None and len(text) > SURVEY_COMMENT_MAX:
        raise InvalidInput(f"The comment can be up to {SURVEY_COMMENT_MAX} characters.")
    return reason, text


#: The preference center's pause choices besides PAUSE_OPTIONS: no pause (or end the one in
#: force), and keep the pause in force as it is.
PAUSE_NONE = "none"
PAUSE_KEEP = "keep"


def undo_allowed(link_event_id: int, latest_change_id: int | None) -> bool:
    """Return whether an undo link for unsubscribe ``link_event_id`` may still act.

    Only while that unsubscribe is the newest change of its scope: after a later
    resubscribe or unsubscribe, the link would undo something it was not made for.
    """
    return latest_change_id == link_event_id
