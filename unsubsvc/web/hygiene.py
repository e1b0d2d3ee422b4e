"""Refuse file parts and NUL characters before any view reads the request.

No form of unsubsvc takes a file: every field is text. A multipart body whose
part carries a filename becomes a ``FileStorage`` in ``request.files``, which
WTForms would then hand to a text field (a 500). Answer 400 instead.

PostgreSQL cannot store U+0000 in text, so a NUL in a path, query, form or
JSON body would surface as a 500 from the driver. No legitimate address,
slug, campaign id or comment contains one: answer 400 instead.
"""

from __future__ import annotations

from flask import Flask, abort, request

MESSAGE = "NUL characters are not accepted."
FILE_MESSAGE = "Files are not accepted here: send every field as text. Nothing was changed."
#: The one form that takes a file: a list's logo (web.admin_branding reads it as bytes).
FILE_ENDPOINTS = frozenset({"admin.list_brand"})


def has_file_part() -> bool:
    """Return whether the current request is multipart with a file part (a part with a filename).

    Werkzeug's form parser puts such a part in ``request.files``, whatever its name
    (RFC 7578 §4.2); a part without a filename is an ordinary text field.
    """
    return request.mimetype == "multipart/form-data" and bool(request.files)


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
    def refuse_unreadable_input() -> None:
        # Files first: reading the form parses the body once, for both checks.
        if has_file_part() and request.endpoint not in FILE_ENDPOINTS:
            abort(400, description=FILE_MESSAGE)
        if has_nul():
            abort(400, description=MESSAGE)
