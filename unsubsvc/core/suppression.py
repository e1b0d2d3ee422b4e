"""The suppression policy: when bounces and complaints stop mail to an address.

A hard bounce suppresses the address on the list it concerns until a resubscribe
or ``unsubsvc bounce clear``; soft bounces do once ``soft_bounce_limit`` of them
fall within ``soft_bounce_window``; a spam complaint unsubscribes the address from
every list of the sender (``complaint_scope`` ``sender``) or from its list only
(``list``). Bounces are facts about delivery, not the recipient's choice: they
suppress without unsubscribing, so a report counts them as bounces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: The eligibility/status reason of an address suppressed by its bounces.
BOUNCED = "bounced"
COMPLAINT_SCOPES = ("sender", "list")


class PolicySettings(Protocol):
    """The settings the policy reads (``unsubsvc.settings.Settings`` has them)."""

    @property
    def soft_bounce_limit(self) -> int: ...

    @property
    def soft_bounce_window_days(self) -> int: ...

    @property
    def complaint_scope(self) -> str: ...


@dataclass(frozen=True)
class SuppressionPolicy:
    """How many soft bounces suppress, over how long, and how far a complaint reaches."""

    soft_bounce_limit: int = 3
    soft_bounce_window: timedelta = timedelta(days=14)
    complaint_scope: str = "sender"

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> SuppressionPolicy:
        """Build the policy from the installation's settings."""
        return cls(
            soft_bounce_limit=settings.soft_bounce_limit,
            soft_bounce_window=timedelta(days=settings.soft_bounce_window_days),
            complaint_scope=settings.complaint_scope,
        )

    @property
    def complaint_covers_sender(self) -> bool:
        """Return whether a complaint suppresses the address on every list."""
        return self.complaint_scope != "list"

    def soft_window_start(self, now: datetime) -> datetime:
        """Return since when soft bounces count (a clear also ends the count: ``services``)."""
        return now - self.soft_bounce_window

    def suppresses(self, *, hard: bool, soft_bounces_in_window: int) -> bool:
        """Decide whether a bounce suppresses; the count includes the bounce being decided."""
        return hard or soft_bounces_in_window >= self.soft_bounce_limit


DEFAULT_POLICY = SuppressionPolicy()
