"""The preference center, reached from the landing page and from footer links."""

from __future__ import annotations

from flask import Blueprint, render_template

from unsubsvc.core.tokens import Purpose
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.status import recipient_state
from unsubsvc.web import context
from unsubsvc.web.extensions import session

bp = Blueprint("center", __name__)


@bp.get("/p/<token>")
def preferences(token: str) -> str:
    """Show the recipient's current choices on the list."""
    payload = context.minter().signer.verify(Purpose.PREFERENCES, token, now=context.now())
    target = svc.resolve(session(), payload)
    state = recipient_state(session(), target.mailing_list, target.subscriber)
    return render_template(
        "center/preferences.html",
        target=target,
        state=state,
        paused_until=state.active_pause(context.now()),
        topics=[(t, t.slug not in state.opted_out_topics) for t in target.mailing_list.topics],
    )
