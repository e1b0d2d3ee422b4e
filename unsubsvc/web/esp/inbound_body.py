"""What the Postmark and Mailgun endpoints share: a bounded body and plain JSON errors.

The app-wide body limit (UNSUBSVC_MAX_BODY) is sized for forms; a bounce record
may carry the bounced message's dump, so these endpoints allow the API's limit.
"""

from __future__ import annotations

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from unsubsvc.core.errors import InvalidInput, UnsubsvcError
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
