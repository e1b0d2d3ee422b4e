"""Preference rules: what a recipient's stored choices mean at a given moment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RecipientState:
    """A recipient's stored choices on one list, independent of storage."""

    subscribed: bool = True
    opted_out_topics: frozenset[str] = field(default_factory=frozenset)
    frequency: str | None = None
    paused_until: datetime | None = None

    def is_paused(self, now: datetime) -> bool:
        """Return whether a pause is in force; a pause ends by itself when its date passes."""
        return self.paused_until is not None and now < self.paused_until

    def active_pause(self, now: datetime) -> datetime | None:
        """Return the end of the pause in force, or None."""
        return self.paused_until if self.is_paused(now) else None

    def topic_choices(self, topics: Sequence[str]) -> dict[str, bool]:
        """Return, for each of the list's topics in order, whether the recipient wants it."""
        return {slug: slug not in self.opted_out_topics for slug in topics}
