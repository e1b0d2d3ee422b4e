"""The OpenAPI ``webhooks`` section: what unsubsvc POSTs to a registered endpoint.

The payload is ``services.events.event_document``; one entry per event kind, so a
generated receiver (or a reader) sees every ``type`` it must handle. The headers
are those of Standard Webhooks (https://www.standardwebhooks.com/).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field
from pydantic.json_schema import models_json_schema

from unsubsvc.core.events import Channel, EventKind

#: What each kind means to a receiver, in words.
KIND_SUMMARIES: dict[EventKind, str] = {
    EventKind.SUBSCRIBE: "An address subscribed to a list",
    EventKind.UNSUBSCRIBE: "An address unsubscribed (from the list, or one topic): stop mailing it",
    EventKind.RESUBSCRIBE: "An address was subscribed again after unsubscribing",
    EventKind.FREQUENCY_CHANGE: "A recipient chose another frequency",
    EventKind.PAUSE: "A recipient paused mail until a date",
    EventKind.RESUME: "A paused recipient takes mail again",
    EventKind.COMPLAINT: "A spam complaint: the address is unsubscribed from the list",
    EventKind.BOUNCE: "A bounce was recorded (a hard bounce suppresses the address)",
    EventKind.BOUNCE_CLEARED: "A bounce suppression was cleared: the address takes mail again",
}

SIGNATURE_DESCRIPTION = (
    "Standard Webhooks signature: space-separated `v1,<base64>` values (several while a "
    "secret is rotated; accept the request if any matches). Each is the base64 of "
    "HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the "
    "endpoint secret after its `whsec_` prefix, base64-decoded. Compare in constant time."
)

HEADERS: list[dict[str, Any]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The message id: the same on every retry, so deduplicate on it "
        "(delivery is at least once)",
        "schema": {"type": "string", "examples": ["msg_812_1772443800123456"]},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "When it was signed, in Unix seconds; refuse one far (say five "
        "minutes) from your clock, so a captured request cannot be replayed",
        "schema": {"type": "string", "pattern": "^[0-9]{1,15}$", "examples": ["1772443800"]},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": SIGNATURE_DESCRIPTION,
        "schema": {
            "type": "string",
            "examples": ["v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="],
        },
    },
]


class WebhookEvent(BaseModel):
    """One change, as POSTed (JSON) to every active endpoint."""

    id: int = Field(description="The event's id (equal to `seq`)")
    seq: int = Field(description="Its place in the event log: later changes have larger ones")
    type: EventKind = Field(description="What happened")
    occurred_at: AwareDatetime
    list: str = Field(description="The list's name")
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})]
    subscriber: str = Field(description="A stable opaque id of the address")
    topic: str | None = Field(description="The topic's slug when the change was to one topic")
    campaign: str | None = Field(description="The campaign the change came from, if known")
    channel: Channel = Field(description="How the change reached unsubsvc")
    detail: dict[str, Any] | None = Field(description="Kind-specific detail, if any")


def webhooks_section(ref_template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the ``webhooks`` object and the schemas it refers to (for ``components``)."""
    keyed, top = models_json_schema([(WebhookEvent, "serialization")], ref_template=ref_template)
    ref = keyed[(WebhookEvent, "serialization")]
    section: dict[str, Any] = {}
    for kind in EventKind:
        section[kind.value] = {
            "post": {
                "operationId": f"webhook_{kind.value}",
                "summary": KIND_SUMMARIES.get(kind, f"A {kind.value} event"),
                "description": (
                    f"POSTed to every active endpoint with `type` = `{kind.value}`. "
                    "Answer 2xx within 10 seconds; anything else is retried with back-off "
                    "(10 s doubling to 1 h), and an endpoint failing for 3 days is disabled."
                ),
                "tags": ["webhooks"],
                "parameters": HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref}},
                },
                "responses": {
                    "2XX": {"description": "Received; any 2xx status counts as delivered"},
                    "default": {"description": "Not received: the delivery is retried"},
                },
                "security": [],
            }
        }
    return section, top.get("$defs", {})
