"""Liveness for load balancers: 200 when the database answers, 503 when not."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from unsubsvc.web.context import session
from unsubsvc.web.errors import RETRY_AFTER

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int, dict[str, str]]:
    """Answer whether this server can reach its database."""
    try:
        session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        body = {"status": "unavailable", "database": "unreachable"}
        return body, 503, {"Retry-After": str(RETRY_AFTER)}
    return {"status": "ok", "database": "ok"}, 200, {}
