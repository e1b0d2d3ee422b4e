"""SendGrid's Event Webhook at ``POST /inbound/sendgrid``.

Only signed webhooks are accepted: without UNSUBSVC_SENDGRID_PUBLIC_KEY every
request is refused, since an unsigned one could come from anyone.
"""

from __future__ import annotations

from flask import Response, request

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.esp_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify
from unsubsvc.web import context
from unsubsvc.web.esp import bp
from unsubsvc.web.esp.inbound_body import json_error, read_body, record_events

__all__ = ["bp"]


@bp.post("/sendgrid")
def sendgrid() -> tuple[Response, int]:
    settings = context.settings()
    try:
        body = read_body()
        verify(
            settings.sendgrid_public_key,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            body,
            now=context.now(),
        )
        return record_events(parse_events(body))
    except UnsubsvcError as exc:
        return json_error(exc)
