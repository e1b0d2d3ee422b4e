"""Unsubscribe-rate maths and rules: rates, bands, complaint levels, trends, timing, cohorts.

Rates are unsubscribes ÷ **delivered** × 100 (never sent: bounced mail reached
no one). Band edges are compared exactly, with fractions, so 50 of 10,000 is
0.5 % and "acceptable", not a float a hair above it. Figures and bands follow
industry benchmarks (a 2026 study of about 12,000 campaigns; Gmail's complaint
lines); they are guidance an admin can read, not law.

Every rule a report, a chart, the CLI or the admin console applies lives here,
once: the band edges and complaint lines (and their wording), what counts as a
lost unsubscribe or a save, and what makes a send "need a look". The services
keep one SQL predicate mirroring each event rule (``services.counters``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction

from unsubsvc.core.events import Channel, EventKind


class Band(StrEnum):
    """How a send's unsubscribe rate reads against industry practice."""

    GOOD = "good"  # below 0.2 %
    ACCEPTABLE = "acceptable"  # 0.2 % up to and including 0.5 %
    INVESTIGATE = "investigate"  # above 0.5 % up to and including 1.0 %
    CRITICAL = "critical"  # above 1.0 %


class ComplaintLevel(StrEnum):
    """Spam complaints against Gmail's lines: keep below 0.1 %, never 0.3 % or more."""

    OK = "ok"
    WARNING = "warning"  # 0.1 % or more
    CRITICAL = "critical"  # 0.3 % or more


BAND_GOOD_BELOW = Fraction(2, 10)
BAND_ACCEPTABLE_TO = Fraction(5, 10)
BAND_INVESTIGATE_TO = Fraction(1)
COMPLAINT_WARNING = Fraction(1, 10)
COMPLAINT_CRITICAL = Fraction(3, 10)
#: Decimal places a rate is reported with.
PRECISION = 4

#: The upper edge of each band but the last, bottom up: (edge, the band below it).
BAND_EDGES: tuple[tuple[Fraction, Band], ...] = (
    (BAND_GOOD_BELOW, Band.GOOD),
    (BAND_ACCEPTABLE_TO, Band.ACCEPTABLE),
    (BAND_INVESTIGATE_TO, Band.INVESTIGATE),
)

BAND_READINGS = {
    Band.GOOD: "Healthy, normal.",
    Band.ACCEPTABLE: "Normal for most lists; near the top, review relevance and targeting.",
    Band.INVESTIGATE: "Something may be wrong: look at content, frequency and targeting.",
    Band.CRITICAL: "Investigate this week: the same send has almost certainly raised complaints.",
}

#: Typical unsubscribe rate per send by niche, percent (2026 benchmark study).
NICHE_BENCHMARKS: dict[str, tuple[str, float, float]] = {
    "media": ("Media and publishing", 0.15, 0.30),
    "b2b_saas": ("B2B SaaS", 0.20, 0.40),
    "ecommerce": ("Ecommerce and DTC", 0.25, 0.55),
    "finance": ("Finance and fintech", 0.10, 0.25),
    "creator": ("Creator and solo newsletters", 0.30, 0.60),
    "nonprofit": ("Nonprofit", 0.10, 0.20),
    "education": ("Education and online courses", 0.15, 0.30),
    "travel": ("Travel and hospitality", 0.25, 0.50),
}


def percent(value: Fraction | float, decimals: int | None = None) -> str:
    """Return a threshold as people read it (``0.2 %``); ``decimals`` fixes the places."""
    number = f"{float(value):g}" if decimals is None else f"{float(value):.{decimals}f}"
    return f"{number} %"


def band_range(which: Band) -> str:
    """Return the rates a band covers, in words (``0.2 % to 0.5 %``), as the admin legend shows."""
    good, acceptable, investigate = (percent(edge, 1) for edge, _ in BAND_EDGES)
    return {
        Band.GOOD: f"below {good}",
        Band.ACCEPTABLE: f"{good} to {acceptable}",
        Band.INVESTIGATE: f"above {acceptable} to {investigate}",
        Band.CRITICAL: f"above {investigate}",
    }[which]


def rules_in_brief() -> str:
    """Return the band edges and complaint lines in one sentence (the CLI's table footnote)."""
    good, acceptable, investigate = (percent(edge) for edge, _ in BAND_EDGES)
    return (
        f"Bands: good < {good}, acceptable ≤ {acceptable}, investigate ≤ {investigate}, "
        f"critical > {investigate}. Complaints: warning at {percent(COMPLAINT_WARNING)}, "
        f"critical at {percent(COMPLAINT_CRITICAL)}."
    )


def exact_rate(events: int, delivered: int) -> Fraction | None:
    """Return events ÷ delivered × 100 exactly, or None when nothing was delivered."""
    if delivered <= 0:
        return None
    return Fraction(events * 100, delivered)


def rate(events: int, delivered: int) -> float | None:
    """Return the percentage rounded for display, or None when nothing was delivered."""
    exact = exact_rate(events, delivered)
    return None if exact is None else round(float(exact), PRECISION)


def band(unsubscribes: int, delivered: int) -> Band | None:
    """Return the band of a send's unsubscribe rate (None when nothing was delivered)."""
    exact = exact_rate(unsubscribes, delivered)
    if exact is None:
        return None
    if exact < BAND_GOOD_BELOW:
        return Band.GOOD
    if exact <= BAND_ACCEPTABLE_TO:
        return Band.ACCEPTABLE
    if exact <= BAND_INVESTIGATE_TO:
        return Band.INVESTIGATE
    return Band.CRITICAL


def complaint_level(complaints: int, delivered: int) -> ComplaintLevel | None:
    """Return where a send's complaint rate stands against Gmail's lines."""
    exact = exact_rate(complaints, delivered)
    if exact is None:
        return None
    if exact >= COMPLAINT_CRITICAL:
        return ComplaintLevel.CRITICAL
    if exact >= COMPLAINT_WARNING:
        return ComplaintLevel.WARNING
    return ComplaintLevel.OK


def niche_reading(niche: str, value: float | None) -> str | None:
    """Say how a rate compares with its niche's typical range, or None without one."""
    if value is None or niche not in NICHE_BENCHMARKS:
        return None
    label, low, high = NICHE_BENCHMARKS[niche]
    if value < low:
        where = "below the typical range"
    elif value <= high:
        where = "within the typical range"
    else:
        where = "above the typical range: diagnose"
    return f"{label}: typical {low:.2f}–{high:.2f} %; this send is {where}."


@dataclass(frozen=True)
class Rates:
    """Deliveries, unsubscribes and complaints of a send (or a group), with rates and band.

    Construct it from the three counts; the rates and the band follow from them.
    """

    delivered: int
    unsubscribes: int
    unsubscribe_rate: float | None = field(init=False)
    band: Band | None = field(init=False)
    complaints: int
    complaint_rate: float | None = field(init=False)

    def __post_init__(self) -> None:
        # Frozen: the derived fields are set once, here.
        object.__setattr__(self, "unsubscribe_rate", rate(self.unsubscribes, self.delivered))
        object.__setattr__(self, "band", band(self.unsubscribes, self.delivered))
        object.__setattr__(self, "complaint_rate", rate(self.complaints, self.delivered))

    @property
    def complaint_level(self) -> ComplaintLevel | None:
        """Return where the complaint rate stands against Gmail's lines."""
        return complaint_level(self.complaints, self.delivered)


# -- what an event means for the reports -------------------------------------------------

#: ``detail["cause"]`` of an unsubscribe that only follows a spam complaint.
COMPLAINT_CAUSE = "complaint"


def is_save(
    kind: str, channel: str, *, topic_scoped: bool, detail: Mapping[str, object] | None
) -> bool:
    """Return whether an event kept a reader with less mail rather than losing them.

    A pause, a frequency downgrade, or a topic opt-out in the preference center
    (industry figures: a preference center saves 20-40 % of would-be unsubscribes).
    """
    if kind == EventKind.PAUSE:
        return True
    if kind == EventKind.FREQUENCY_CHANGE:
        return bool((detail or {}).get("downgrade"))
    return kind == EventKind.UNSUBSCRIBE and channel == Channel.PREFERENCE_CENTER and topic_scoped


def is_lost_unsubscribe(
    kind: str, channel: str, *, topic_scoped: bool, detail: Mapping[str, object] | None
) -> bool:
    """Return whether an event is an unsubscribe the reports count (a reader lost).

    Not a save (a topic opt-out in the preference center), and not one that only
    follows a spam complaint: a complaint is not an unsubscribe in
    the accounting (it counts as a complaint), though the address is not mailed again.
    """
    return (
        kind == EventKind.UNSUBSCRIBE
        and not is_save(kind, channel, topic_scoped=topic_scoped, detail=detail)
        and (detail or {}).get("cause") != COMPLAINT_CAUSE
    )


# -- what calls for a look ---------------------------------------------------------------

#: Bands that call for a look: "something may be wrong" and worse.
ALARM_BANDS = frozenset({Band.INVESTIGATE, Band.CRITICAL})
#: Complaint levels that call for a look: Gmail's warning line and above.
ALARM_COMPLAINTS = frozenset({ComplaintLevel.WARNING, ComplaintLevel.CRITICAL})


def band_alarm(value: str | None) -> bool:
    """Return whether a band calls for a look (investigate or critical)."""
    return value in ALARM_BANDS


def needs_a_look(band_value: str | None, complaints: str | None, *, excused: bool) -> bool:
    """Return whether a send calls for a look.

    Its band is investigate or critical and no excuse was given, or its complaint
    rate reaches Gmail's warning line: an excuse does not cover complaints, they
    hurt deliverability whatever the cause.
    """
    return (band_alarm(band_value) and not excused) or complaints in ALARM_COMPLAINTS


@dataclass(frozen=True)
class TrendPoint:
    """One send in a list's series, with the rolling average of the sends before it."""

    campaign: str
    sent_at: datetime | None
    unsubscribe_rate: float | None
    rolling_average: float | None
    well_above_average: bool


#: Sends in the rolling average (industry practice: the last four); also the recent sends the
#: admin overview looks at for alarms.
ROLLING_WINDOW = 4
#: A send is "well above" its rolling average at this multiple and this many points over it.
SPIKE_FACTOR = 1.5
SPIKE_MIN_POINTS = 0.1
#: Fewer earlier sends than this make no average worth comparing with.
SPIKE_MIN_HISTORY = 2


def trend(series: Sequence[tuple[str, datetime | None, int, int]]) -> list[TrendPoint]:
    """Return each send's rate beside the average of the previous four sends' rates.

    ``series`` holds (campaign, sent_at, unsubscribes, delivered) in send order.
    A send is flagged when at least two earlier sends make the average, and its
    rate is at least 1.5× that average and at least 0.1 points above it (so
    0.02 → 0.04 % is not an alarm).
    """
    points: list[TrendPoint] = []
    rates: list[float] = []
    for campaign, sent_at, unsubscribes, delivered in series:
        value = rate(unsubscribes, delivered)
        window = rates[-ROLLING_WINDOW:]
        average = round(sum(window) / len(window), PRECISION) if window else None
        flagged = (
            value is not None
            and average is not None
            and len(window) >= SPIKE_MIN_HISTORY
            and value >= average * SPIKE_FACTOR
            and value - average >= SPIKE_MIN_POINTS
        )
        points.append(TrendPoint(campaign, sent_at, value, average, flagged))
        if value is not None:
            rates.append(value)
    return points


@dataclass(frozen=True)
class TimingSplit:
    """How a campaign's unsubscribes spread over time after the send."""

    first_hour: int
    later: int
    hint: str | None

    @property
    def first_hour_share(self) -> float | None:
        total = self.first_hour + self.later
        return round(self.first_hour / total * 100, 1) if total else None


#: Below this many unsubscribes a timing pattern says nothing.
TIMING_MIN_EVENTS = 10


def timing_split(sent_at: datetime, unsubscribed_at: Sequence[datetime]) -> TimingSplit:
    """Split unsubscribes into the first 60 minutes after the send and later, with a hint.

    Industry guidance: a sharp first-hour spike points to topic drift, reactivated
    cold subscribers or an unrecognised sender; a slow trickle over hours
    points to frequency.
    """
    first = sum(1 for t in unsubscribed_at if timedelta(0) <= t - sent_at < timedelta(hours=1))
    later = sum(1 for t in unsubscribed_at if t - sent_at >= timedelta(hours=1))
    total = first + later
    hint = None
    if total >= TIMING_MIN_EVENTS:
        share = first / total
        if share >= 0.6:
            hint = (
                "Sharp spike in the first hour: likely topic drift (a subject the list did not "
                "sign up for), reactivation of cold subscribers (check for addresses with no "
                "engagement in 90+ days), or a From name/domain people did not recognise."
            )
        elif share <= 0.3:
            hint = (
                "Slow trickle over hours: likely frequency, more mail than people expected "
                "(extra editions, launches). Offer a lower frequency in the preference center."
            )
    return TimingSplit(first, later, hint)


@dataclass(frozen=True)
class CohortRow:
    """Unsubscribe rate of one signup month's subscribers, early sends against later ones."""

    cohort: str  # YYYY-MM
    members: int
    honeymoon_unsubscribes: int  # within their first three sends
    honeymoon_rate: float | None = field(init=False)  # of members
    later_unsubscribes: int
    later_rate: float | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "honeymoon_rate", rate(self.honeymoon_unsubscribes, self.members))
        object.__setattr__(self, "later_rate", rate(self.later_unsubscribes, self.members))


#: Industry figures: impulsive signups leave within the first three sends.
HONEYMOON_SENDS = 3


def cohort_key(moment: datetime) -> str:
    """Return the signup cohort (YYYY-MM) of a join time."""
    return f"{moment.year:04d}-{moment.month:02d}"


def cohorts(
    joins: Sequence[tuple[int, datetime]],
    unsubscribes: Sequence[tuple[int, datetime]],
    sends: Sequence[datetime],
) -> list[CohortRow]:
    """Return one row per join month: members, and unsubscribes in vs. after the honeymoon.

    ``joins`` and ``unsubscribes`` hold (subscriber id, time); ``sends`` the send
    times of the list. An unsubscribe falls in the honeymoon when fewer than
    four sends went out between the subscriber's join and it.
    """
    ordered_sends = sorted(sends)
    joined = dict(joins)
    members: dict[str, int] = {}
    for _, moment in joins:
        members[cohort_key(moment)] = members.get(cohort_key(moment), 0) + 1
    early: dict[str, int] = {}
    late: dict[str, int] = {}
    counted: set[int] = set()
    for subscriber, moment in sorted(unsubscribes, key=lambda pair: pair[1]):
        if subscriber not in joined or subscriber in counted:
            continue
        counted.add(subscriber)
        key = cohort_key(joined[subscriber])
        sends_between = sum(1 for s in ordered_sends if joined[subscriber] <= s <= moment)
        bucket = early if sends_between <= HONEYMOON_SENDS else late
        bucket[key] = bucket.get(key, 0) + 1
    return [
        CohortRow(key, members[key], early.get(key, 0), late.get(key, 0)) for key in sorted(members)
    ]
