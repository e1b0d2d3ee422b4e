"""The rows reports return: frozen dataclasses whose fields are the report's columns.

``unsubsvc.core.tables`` takes the columns from these types (a ``Rates``
field stands for its six columns), so the CLI's tables, CSV and JSON and the
admin console's downloads name each column once, here. The trend and cohort
rows are ``TrendPoint`` and ``CohortRow`` of ``unsubsvc.core.reporting``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from unsubsvc.core.reporting import Band, ComplaintLevel, Rates


@dataclass(frozen=True)
class CampaignRow:
    """One campaign (a send): the contract's fields first, then counters and readings."""

    campaign: str
    list: str
    rates: Rates
    complaint_level: ComplaintLevel | None
    sent_at: datetime | None  # the earliest part's send time
    segment: str | None  # "mixed" when parts went to several
    source: str | None
    bounces: int
    saves: int
    resubscribes: int
    excuse: str | None
    benchmark: str | None  # the list's niche range beside this send's rate


@dataclass(frozen=True)
class ListOverviewRow:
    """One list: totals over its campaigns, and its latest delivered send."""

    list: str
    display_name: str
    niche: str | None
    campaigns: int
    rates: Rates
    complaint_level: ComplaintLevel | None
    saves: int
    latest_campaign: str | None
    latest_band: Band | None


@dataclass(frozen=True)
class BreakdownRow:
    """Rates of one group of sends: a list, a segment, a source, or a list's topic.

    The ``group`` column is written under the dimension's name (``segment``…).
    """

    group: str
    campaigns: int
    rates: Rates


@dataclass(frozen=True)
class ReasonRow:
    """How often one exit-survey reason was given (None: a comment without a reason)."""

    reason: str | None
    label: str
    count: int
    share: float | None  # percent of the answers


@dataclass(frozen=True)
class CommentRow:
    """A free-text exit-survey answer."""

    created_at: datetime
    list: str
    campaign: str | None
    reason: str | None
    comment: str | None


@dataclass(frozen=True)
class TimingRow:
    """Unsubscribes in one stretch of minutes after a send (the last is open-ended)."""

    minutes_from: int
    minutes_to: int | None
    unsubscribes: int


@dataclass(frozen=True)
class CampaignTiming:
    """When a campaign's unsubscribes came after its send: split, hint and histogram."""

    sent_at: datetime | None  # None: no send time recorded, nothing else known
    first_hour: int | None
    later: int | None
    first_hour_share: float | None
    hint: str | None
    bucket_minutes: int
    histogram: tuple[int, ...]  # per bucket; the last holds everything after the window

    def buckets(self) -> list[TimingRow]:
        """Return the histogram as rows of minutes after the send."""
        size, last = self.bucket_minutes, len(self.histogram) - 1
        return [
            TimingRow(i * size, (i + 1) * size if i < last else None, count)
            for i, count in enumerate(self.histogram)
        ]
