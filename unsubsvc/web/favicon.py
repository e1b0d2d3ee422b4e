"""The site icon: ``/favicon.svg``, and ``/favicon.ico``, which browsers ask for whatever
the page links, so that it is not a 404."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, Response, url_for
from werkzeug.utils import redirect
from werkzeug.wrappers import Response as BaseResponse

ICON = Path(__file__).resolve().parent.parent / "static" / "favicon.svg"
#: A day: the icon seldom changes, and a stale one harms nothing.
MAX_AGE = 86_400

bp = Blueprint("favicon", __name__)


@cache
def icon() -> bytes:
    """Return the icon, read once (a few hundred bytes)."""
    return ICON.read_bytes()


@bp.get("/favicon.svg")
def svg() -> Response:
    """Serve the icon from memory: no open file outlives a request the browser drops."""
    response = Response(icon(), mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    return response


@bp.get("/favicon.ico")
def ico() -> BaseResponse:
    """Send the browser to the SVG icon (every current browser takes SVG icons)."""
    return redirect(url_for("favicon.svg"), code=301)
