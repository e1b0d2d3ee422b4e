"""What can happen to a subscription, and through which channel it happened."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """The kinds of entries in the append-only event log."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"
    FREQUENCY_CHANGE = "frequency_change"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLAINT = "complaint"
    BOUNCE = "bounce"
    #: A bounce suppression ended by ``unsubsvc bounce clear`` (the address takes mail again).
    BOUNCE_CLEARED = "bounce_cleared"


class Channel(StrEnum):
    """How a change reached unsubsvc; reports split by it."""

    ONE_CLICK = "one_click"  # RFC 8058 POST from a mail client
    LANDING_PAGE = "landing_page"  # the confirm button on the page behind the link
    PREFERENCE_CENTER = "preference_center"
    API = "api"
    MAIL = "mail"  # the mailto: URI
    CLI = "cli"
    # An ESP's event webhook (``core.esp_events``): bounces, complaints, unsubscribes.
    ESP_SES = "esp:ses"
    ESP_SENDGRID = "esp:sendgrid"
    ESP_POSTMARK = "esp:postmark"
    ESP_MAILGUN = "esp:mailgun"
