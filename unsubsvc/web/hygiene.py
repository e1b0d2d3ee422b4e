"""Refuse NUL characters before they reach the database.

PostgreSQL cannot store U+0000 in text, so a NUL in a path, query, form or
JSON body would surface as a 500 from the driver. No legitimate address,
slug, campaign id or comment contains one: answer 400 instead.
"""

from __future__ import annotations

from flask import Flask, abort, request

MESSAGE = "NUL characters are not accepted."


def has_nul() -> bool:
    """Return whether the current request carries a NUL anywhere unsubsvc reads."""
    if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
        return True
    if request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return any("\x00" in value for value in request.form.values())
    return False


def json_body_has_nul() -> bool:
    """Return whether a JSON body spells a NUL (raw, or as the escape \\u0000)."""
    data = request.get_data(cache=True)
    return b"\x00" in data or b"\\u0000" in data.lower()


def init_app(app: Flask) -> None:
    """Check every request to ``app`` (JSON bodies are checked by the API, which reads them)."""

    @app.before_request
    def refuse_nul() -> None:
        if has_nul():
            abort(400, description=MESSAGE)
