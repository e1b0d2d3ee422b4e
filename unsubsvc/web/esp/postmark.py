"""Postmark's webhooks at ``POST /inbound/postmark``: basic auth, then one record per request.

UNSUBSVC_POSTMARK_WEBHOOK_AUTH unset: every request is refused (403), since
anyone could post a bounce otherwise.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.esp_postmark import REALM, Unauthenticated, check_auth, parse_record
from unsubsvc.web import context
from unsubsvc.web.esp import bp
from unsubsvc.web.esp.inbound_body import json_error, read_body, record_events

__all__ = ["bp"]


@bp.post("/postmark")
def postmark() -> tuple[Response, int]:
    settings = context.settings()
    try:
        check_auth(settings.postmark_webhook_auth, request.headers.get("Authorization"))
        event = parse_record(read_body())
        if event is None:
            return jsonify(recorded=0), 200
        return record_events([event])
    except Unauthenticated as exc:
        response, status = json_error(exc)
        response.headers["WWW-Authenticate"] = REALM
        return response, status
    except UnsubsvcError as exc:
        return json_error(exc)
