"""One place that turns errors into answers: HTML for people, JSON for the API."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from unsubsvc.core.errors import UnsubsvcError

log = logging.getLogger(__name__)

#: Plain words for the HTTP errors a person can meet.
MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    415: "The request's content type is not accepted here.",
}


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
    html = render_template("errors/error.html", status=status, message=message)
    return Response(html, status=status, mimetype="text/html")


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
        if status == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> Response:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(500, "Something went wrong on our side. Nothing was changed.")
