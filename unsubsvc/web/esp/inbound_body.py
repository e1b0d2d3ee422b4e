"""What the ESP endpoints share: a bounded body, recording the events, plain JSON errors.

The app-wide body limit (UNSUBSVC_MAX_BODY) is sized for forms; a bounce record
may carry the bounced message's headers and SendGrid posts events in batches, so
these endpoints allow the API's limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from unsubsvc.core.errors import InvalidInput, UnsubsvcError
from unsubsvc.core.esp_events import EspEvent
from unsubsvc.services import esp_events
from unsubsvc.web import context


class BodyTooLarge(InvalidInput):
    """The body is over the limit: refused before it is read."""

    status = 413


def read_body() -> bytes:
    """Return the request's body, or raise BodyTooLarge past UNSUBSVC_API_MAX_BODY."""
    request.max_content_length = context.settings().api_max_body
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise BodyTooLarge("the body is too large") from exc


def json_error(exc: UnsubsvcError) -> tuple[Response, int]:
    """Answer ``{"error": ...}`` with the error's status; nothing of the request is committed."""
    return jsonify(error=str(exc)), exc.status


def record_events(events: Iterable[EspEvent]) -> tuple[Response, int]:
    """Record each event once (``services.esp_events``); answer how many were new."""
    runtime = context.runtime()
    now = context.now()
    recorded = sum(
        esp_events.record(
            context.session(), event, settings=runtime.settings, keyring=runtime.keyring, now=now
        ).first_time
        for event in events
    )
    return jsonify(recorded=recorded), 200
