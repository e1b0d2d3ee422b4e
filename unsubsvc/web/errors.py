"""One place that turns errors into answers: HTML for people, JSON for the API."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.db.engine import UNAVAILABLE, is_unavailable
from unsubsvc.web import i18n

log = logging.getLogger(__name__)

#: Plain words for the HTTP errors a person can meet.
MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    415: "The request's content type is not accepted here.",
    429: "Too many requests from your address. Please wait a minute and try again.",
}


#: Pages whose credential is a link from an e-mail: a bad, expired or used link there
#: offers the /manage form ("get a new link by e-mail") instead of a dead end.
RECIPIENT_PATHS = ("/u/", "/p/", "/manage")
MANAGE_OFFERED = frozenset({400, 404, 410})


def error_response(
    status: int, message: str, fields: list[dict[str, str]] | None = None
) -> Response:
    """Render an error as JSON under /api/, else as a plain HTML page."""
    if request.path.startswith("/api/"):
        body: dict[str, object] = {"error": message}
        if fields:
            body["fields"] = fields
        response = jsonify(body)
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
    html = render_template(
        "errors/error.html",
        status=status,
        message=i18n.translate(message),
        offer_manage=status in MANAGE_OFFERED and request.path.startswith(RECIPIENT_PATHS),
        admin_page=request.path.startswith("/admin"),
    )
    return Response(html, status=status, mimetype="text/html")


#: Seconds a client is asked to wait after a 503 (RFC 9110 §10.2.3): a restarting
#: database is usually back within this; mail clients and load balancers retry.
RETRY_AFTER = 5

UNAVAILABLE_MESSAGE = (
    "We cannot reach our database just now. Please try again in a few seconds; "
    "a change you asked for was not saved unless you saw it confirmed."
)


def unavailable_response() -> Response:
    """Answer 503 with Retry-After: the database is down, unreachable or too slow."""
    log.warning("database unavailable: %s %s answered 503", request.method, request.endpoint)
    response = error_response(503, UNAVAILABLE_MESSAGE)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def init_app(app: Flask) -> None:
    """Register the handlers on ``app``."""

    @app.errorhandler(UnsubsvcError)
    def domain_error(exc: UnsubsvcError) -> Response:
        return error_response(exc.status, str(exc), getattr(exc, "fields", None))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response:
        return error_response(
            400,
            "This form has expired or was not sent from our page, so nothing was changed. "
            "Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        custom = exc.description and exc.description != type(exc).description
        message = exc.description if custom else MESSAGES.get(status, exc.name)
        response = error_response(status, message or exc.name)
        # RFC 6585 §4 / RFC 9110 §10.2.3: a 429 (or 503) says when to come back.
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int):
            response.headers["Retry-After"] = str(retry_after)
        if status == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    def database_unavailable(_exc: Exception) -> Response:
        return unavailable_response()

    for kind in UNAVAILABLE:
        app.register_error_handler(kind, database_unavailable)

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> Response:
        # A failed commit (in after_request) reaches here wrapped, not through the handler above.
        if exc.original_exception is not None and is_unavailable(exc.original_exception):
            return unavailable_response()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(500, "Something went wrong on our side. Nothing was changed.")
