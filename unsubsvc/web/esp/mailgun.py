"""Mailgun's webhooks at ``POST /inbound/mailgun``: signed, fresh, and each token once.

UNSUBSVC_MAILGUN_SIGNING_KEY unset: every request is refused (403).
"""

from __future__ import annotations

from flask import Response, jsonify

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.esp_events import SignatureRejected
from unsubsvc.core.esp_mailgun import (
    REPLAY_GUARD,
    parse_body,
    parse_event,
    verify,
)
from unsubsvc.services import esp_events
from unsubsvc.web import context
from unsubsvc.web.esp import bp
from unsubsvc.web.esp.inbound_body import json_error, read_body, record_events

__all__ = ["bp"]


@bp.post("/mailgun")
def mailgun() -> tuple[Response, int]:
    settings = context.settings()
    now = context.now()
    try:
        if not settings.mailgun_signing_key:
            raise SignatureRejected("no Mailgun signing key is configured")
        signed = parse_body(read_body())
        verify(settings.mailgun_signing_key, signed, now=now)
        if not esp_events.claim_once(context.session(), REPLAY_GUARD, signed.token, now=now):
            raise SignatureRejected("this request was seen before (its token is used)")
        event = parse_event(signed.event_data)
        if event is None:
            return jsonify(recorded=0), 200
        return record_events([event])
    except UnsubsvcError as exc:
        return json_error(exc)
