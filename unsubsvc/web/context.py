"""Per-app services the views share: the link minter and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, current_app

from unsubsvc.core.tokens import TokenSigner
from unsubsvc.services.links import LinkMinter

_MINTER = "unsubsvc.minter"
_CLOCK = "unsubsvc.clock"


def install(app: Flask) -> None:
    """Build the app's minter from its config and pick its clock."""
    signer = TokenSigner(
        app.config["UNSUBSVC_SECRET_KEYS"], max_age=app.config.get("UNSUBSVC_TOKEN_MAX_AGE")
    )
    app.extensions[_MINTER] = LinkMinter(
        signer=signer,
        base_url=app.config["UNSUBSVC_BASE_URL"],
        mailto=app.config.get("UNSUBSVC_MAILTO"),
    )
    clock: Callable[[], datetime] = app.config.get("UNSUBSVC_CLOCK") or _utcnow
    app.extensions[_CLOCK] = clock


def minter() -> LinkMinter:
    """Return the current app's link minter."""
    value: LinkMinter = current_app.extensions[_MINTER]
    return value


def now() -> datetime:
    """Return the current app's notion of now (tests inject a fixed clock)."""
    clock: Callable[[], datetime] = current_app.extensions[_CLOCK]
    return clock()


def _utcnow() -> datetime:
    return datetime.now(UTC)
