"""SendGrid's Event Webhook at ``POST /inbound/sendgrid``.

Only signed webhooks are accepted: without UNSUBSVC_SENDGRID_PUBLIC_KEY every
request is refused, since an unsigned one could come from anyone.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.esp_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify
from unsubsvc.services import esp_events
from unsubsvc.web import context
from unsubsvc.web.esp import bp

__all__ = ["bp"]


@bp.post("/sendgrid")
def sendgrid() -> tuple[Response, int]:
    body = request.get_data()
    settings = context.settings()
    try:
        verify(
            settings.sendgrid_public_key,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            body,
        )
        events = parse_events(body)
    except UnsubsvcError as exc:
        return jsonify(error=str(exc)), exc.status
    recorded = 0
    for event in events:
        outcome = esp_events.record(
            context.session(),
            event,
            settings=settings,
            keyring=context.runtime().keyring,
            now=context.now(),
        )
        recorded += outcome.first_time
    return jsonify(recorded=recorded), 200
