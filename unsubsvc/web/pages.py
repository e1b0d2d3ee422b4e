"""The confirmation page both recipient blueprints show: what stopped, undo, the exit survey.

The one-click landing page and the preference center each render it, so it
lives here rather than in either blueprint.
"""

from __future__ import annotations

from flask import Response, render_template

from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.services import preferences as prefs
from unsubsvc.services.events import Target
from unsubsvc.web import context
from unsubsvc.web.context import session
from unsubsvc.web.forms import SurveyForm


def preferences_token(payload: TokenPayload) -> str:
    """Return the preferences token for the recipient behind any token's payload."""
    scoped = TokenPayload(payload.list_id, payload.subscriber, campaign_id=payload.campaign_id)
    return context.minter().signer.sign(Purpose.PREFERENCES, scoped, now=context.now())


def render_unsubscribed(
    prefs_token: str,
    target: Target,
    scope: str,
    *,
    survey_form: SurveyForm | None = None,
    status: int = 200,
    just_now: bool = False,
) -> Response:
    """Render the confirmation: what stopped, an undo button and the optional exit survey.

    One SELECT (the newest unsubscribe and its answer) and one form: the undo
    button needs only the page's CSRF token and its scope.
    """
    last = prefs.last_unsubscribe(session(), target)
    answer = last.answer if last is not None else None
    if survey_form is None:
        survey_form = (
            SurveyForm(reason=answer.reason, comment=answer.comment) if answer else SurveyForm()
        )
    html = render_template(
        "center/unsubscribed.html",
        prefs_token=prefs_token,
        target=target,
        scope=scope,
        scope_text=scope_text(target, scope),
        just_now=just_now,
        survey_form=survey_form,
        answered=answer is not None,
    )
    return Response(html, status=status, mimetype="text/html")


def scope_text(target: Target, scope: str) -> str:
    """Say in words what an unsubscribe of ``scope`` stopped."""
    if scope == "all":
        return f"any mail from {context_sender()}"
    if scope.startswith("topic:"):
        slug = scope.removeprefix("topic:")
        name = next((t.name for t in target.mailing_list.topics if t.slug == slug), slug)
        return f"{name} mail from {target.mailing_list.display_name}"
    return f"mail from {target.mailing_list.display_name}"


def context_sender() -> str:
    return context.settings().sender_name
