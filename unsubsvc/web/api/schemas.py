"""Request and response bodies of ``/api/v1``: validated by pydantic, described in OpenAPI."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)
from pydantic_core import PydanticCustomError

from unsubsvc.core.preferences import Verdict
from unsubsvc.services.erasure import ErasureSummary
from unsubsvc.services.recipient_export import (
    HeldEvent,
    HeldOutgoingMail,
    HeldSubscriber,
    HeldSubscription,
    HeldSurveyAnswer,
)

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["news"])]
#: What ``core.addresses.normalize_address`` accepts: one '@', a dot inside the domain,
#: no spaces, controls or list punctuation.
EMAIL_PATTERN = (
    r"^[^\s\x00-\x1f@<>,;]+@[^\s\x00-\x1f@<>,;]*[^\s\x00-\x1f@<>,;.]"
    r"[^\s\x00-\x1f@<>,;]*\.[^\s\x00-\x1f@<>,;]*[^\s\x00-\x1f@<>,;.][^\s\x00-\x1f@<>,;]*$"
)
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=EMAIL_PATTERN,
        examples=["ann@example.com"],
        json_schema_extra={"format": "idn-email"},
    ),
]

#: The start of an ISO 8601 date and time: a number alone is not a time here.
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
#: The error type (and words) of a time that is not ISO 8601 text.
ISO_TIME_ERROR = "iso_time"
ISO_TIME_MESSAGE = "must be an ISO 8601 time with a time zone"


def _iso_text(value: object) -> object:
    """Refuse anything but ISO 8601 text before pydantic's lax parsing sees it.

    Lax mode takes ``0``, ``1772443800`` and ``"1772443800"`` as Unix times; the API
    takes only what its document says: a string like ``2026-03-02T09:00:00Z``.
    """
    if not isinstance(value, str) or not _ISO_START.match(value):
        raise PydanticCustomError(ISO_TIME_ERROR, ISO_TIME_MESSAGE)
    return value


#: A time in: ISO 8601 text with a time zone (``Z`` or ``+01:00``); numbers and naive times fail.
IsoTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    Field(examples=["2026-03-02T09:00:00Z"]),
]
#: A count in: a JSON integer, not ``"5"``, ``5.0`` or ``true``.
StrictCount = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("items must be unique")
    return values


UniqueSlugs = Annotated[
    list[Slug], Field(json_schema_extra={"uniqueItems": True}), AfterValidator(_unique)
]
CampaignId = Annotated[str, Field(min_length=1, max_length=200, examples=["2026-03-newsletter"])]
Label = Annotated[str, Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    """Bodies refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    fields: list[FieldError] | None = None


class ListCreate(Strict):
    name: Slug
    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    topics: Annotated[UniqueSlugs, Field(max_length=100)] = []
    frequencies: Annotated[
        UniqueSlugs, Field(max_length=20, description="Most frequent first; the first is default")
    ] = []


class TopicOut(BaseModel):
    slug: str
    name: str


class ListOut(BaseModel):
    name: str
    display_name: str
    topics: list[TopicOut]
    frequencies: list[str]


class ListsOut(BaseModel):
    lists: list[ListOut]


class RecipientIn(Strict):
    email: Email
    campaign: CampaignId | None = None
    topic: Slug | None = None


class HeadersIn(Strict):
    recipients: Annotated[list[RecipientIn], Field(min_length=1, max_length=10_000)]
    campaign: CampaignId | None = Field(
        default=None, description="Campaign for recipients that name none"
    )


class HeaderSet(BaseModel):
    email: str
    list_unsubscribe: str = Field(description="The List-Unsubscribe value, without the name")
    list_unsubscribe_post: str
    unsubscribe_url: str
    preferences_url: str


class HeadersOut(BaseModel):
    recipients: list[HeaderSet]
    erased: list[str] = Field(
        default=[], description="Addresses erased at their owner's request: no headers, never mail"
    )


class StatusOut(BaseModel):
    list: str
    email: str
    subscribed: bool
    topics: dict[str, bool]
    frequency: str | None
    paused_until: str | None
    suppressed: Literal["bounced"] | None = None


class EligibilityIn(Strict):
    emails: Annotated[list[Email], Field(min_length=1, max_length=10_000)]
    topic: Slug | None = None
    cadence: Slug | None = Field(default=None, description="The send's cadence, a list frequency")
    transactional: StrictBool = Field(
        default=False, description="Receipts and resets: never suppressed by marketing choices"
    )


class Excluded(BaseModel):
    email: str
    reason: Verdict | Literal["erased"]


class EligibilityOut(BaseModel):
    eligible: list[str]
    excluded: list[Excluded]


class UnsubscribeIn(Strict):
    topic: Slug | None = None
    campaign: CampaignId | None = None


class ResubscribeIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="Why the address may be mailed again (e.g. 'signed up again on the web form')"
    )
    topic: Slug | None = None


class ChangeOut(BaseModel):
    changed: bool
    status: StatusOut


class DeliveryIn(Strict):
    count: StrictCount
    sent_at: IsoTime | None = None
    segment: Label | None = None
    source: Label | None = None


class DeliveryOut(BaseModel):
    campaign: str
    delivered: int


class BounceIn(Strict):
    email: Email
    campaign: CampaignId | None = None
    type: Literal["hard", "soft"] = "hard"


class ComplaintIn(Strict):
    email: Email
    campaign: CampaignId | None = None


class RecordedOut(BaseModel):
    recorded: bool


class SuppressionQuery(Strict):
    list: Slug | None = None
    since: IsoTime | None = None
    cursor: Annotated[str, Field(max_length=40)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 500


class SuppressionChange(BaseModel):
    seq: int
    email: str
    list: str | None
    topic: str | None
    scope: Literal["list", "topic", "all"]
    status: Literal["unsubscribed", "subscribed"]
    changed_at: str
    channel: str
    campaign: str | None
    #: Why mail stops when the recipient did not choose it.
    reason: Literal["bounced", "complaint"] | None = None


class SuppressionsOut(BaseModel):
    changes: list[SuppressionChange]
    next_cursor: str
    has_more: bool


class WebhookIn(Strict):
    url: Annotated[
        str,
        Field(
            min_length=8,
            max_length=2000,
            examples=["https://hooks.example.com/unsub"],
            description="A public host (https in production); private addresses are refused",
        ),
    ]


class WebhookOut(BaseModel):
    id: int
    url: str
    active: bool
    pending: int = Field(description="Events not yet delivered")
    failing_since: AwareDatetime | None = Field(
        default=None, description="Deliveries have failed since then, none accepted"
    )
    disabled_at: AwareDatetime | None = None
    disabled_reason: str | None = Field(
        default=None, description="Why it is not active: by an operator, or failing for 3 days"
    )
    previous_secret_until: AwareDatetime | None = Field(
        default=None,
        description="After a rotation, until then deliveries carry a second signature, "
        "with the old secret; null when only one secret signs",
    )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Shown once: verify the Standard Webhooks `webhook-signature` with it"
    )


class WebhookRotateQuery(Strict):
    overlap_hours: Annotated[
        float,
        Field(
            ge=0,
            le=720,
            description="Hours the old secret keeps signing too (0: drop it now)",
        ),
    ] = 24


class WebhookRotated(BaseModel):
    id: int
    url: str
    secret: str = Field(
        description="Shown once: the new secret; verify `webhook-signature` with it"
    )
    previous_secret_until: AwareDatetime | None = Field(
        description="Until then deliveries carry a second signature, with the old secret"
    )


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


# -- data rights: the types are the services' own, so each field is named once.


class ErasureOut(BaseModel):
    erased: bool = Field(description="Always true: the address is erased and stays suppressed")
    summary: ErasureSummary


class RecipientExportOut(BaseModel):
    format: int
    held: bool = Field(description="Whether anything at all is stored about the address")
    address: str
    erased: bool
    exported_at: AwareDatetime
    subscriber: HeldSubscriber | None
    subscriptions: list[HeldSubscription]
    events: list[HeldEvent]
    survey_answers: list[HeldSurveyAnswer]
    pending_webhook_deliveries: int
    outgoing_mail: list[HeldOutgoingMail]
