"""The preference center: less mail, a pause, fewer topics, or none at all, and undo.

Reached from the landing page and from "manage preferences" footer links
(``unsubsvc link``). Every form carries a CSRF token; every save redirects
back to the page, which shows what was stored.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from wtforms.fields.choices import SelectChoice

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.preferences import PAUSE_OPTIONS, RecipientState
from unsubsvc.core.tokens import Purpose
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.events import Target
from unsubsvc.services.status import recipient_state
from unsubsvc.web import context
from unsubsvc.web.context import session
from unsubsvc.web.forms import (
    FrequencyForm,
    PauseForm,
    ResubscribeForm,
    ResumeForm,
    SurveyForm,
    TopicsForm,
    UnsubscribeForm,
)
from unsubsvc.web.pages import render_unsubscribed

bp = Blueprint("center", __name__, url_prefix="/p/<token>")


def load(token: str) -> Target:
    """Verify a preferences token and load what it names (400/404 otherwise)."""
    payload = context.minter().signer.verify(Purpose.PREFERENCES, token, now=context.now())
    return svc.resolve(session(), payload)


def frequency_label(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ").capitalize()


def build_forms(target: Target, state: RecipientState) -> dict[str, Any]:
    """Return the page's forms, with the list's choices and the stored values filled in."""
    frequency = FrequencyForm(frequency=state.frequency)
    frequency.frequency.choices = [
        SelectChoice(f.slug, frequency_label(f.slug)) for f in target.mailing_list.frequencies
    ]
    topics = TopicsForm(
        topics=[t.slug for t in target.mailing_list.topics if t.slug not in state.opted_out_topics]
    )
    topics.topics.choices = [SelectChoice(t.slug, t.name) for t in target.mailing_list.topics]
    return {
        "frequency_form": frequency,
        "topics_form": topics,
        "pause_form": PauseForm(),
        "resume_form": ResumeForm(),
        "unsubscribe_list_form": UnsubscribeForm(scope="list"),
        "unsubscribe_all_form": UnsubscribeForm(scope="all"),
        "resubscribe_form": ResubscribeForm(),
    }


def render_center(token: str, target: Target, status: int = 200, **forms: Any) -> Response:
    """Render the preference center from what is stored now."""
    state = recipient_state(session(), target.mailing_list, target.subscriber)
    context_forms = build_forms(target, state)
    context_forms.update(forms)
    html = render_template(
        "center/preferences.html",
        token=token,
        target=target,
        state=state,
        paused_until=state.active_pause(context.now()),
        **context_forms,
    )
    return Response(html, status=status, mimetype="text/html")


def back(token: str, message: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("center.preferences", token=token) + "#saved", code=303)


@bp.get("")
def preferences(token: str) -> Response:
    """Show the recipient's choices, each with a form to change it."""
    target = load(token)
    state = recipient_state(session(), target.mailing_list, target.subscriber)
    if state.unsubscribed_all or not state.subscribed:
        return render_unsubscribed(token, target, "all" if state.unsubscribed_all else "list")
    return render_center(token, target)


@bp.post("/frequency")
def frequency(token: str) -> ResponseReturnValue:
    target = load(token)
    form = FrequencyForm()
    form.frequency.choices = [
        SelectChoice(f.slug, frequency_label(f.slug)) for f in target.mailing_list.frequencies
    ]
    if not form.validate_on_submit():
        return render_center(token, target, 400, frequency_form=form)
    prefs.set_frequency(session(), target, form.frequency.data, now=context.now())
    return back(token, f"Saved: you will get {frequency_label(form.frequency.data).lower()} mail.")


@bp.post("/topics")
def topics(token: str) -> ResponseReturnValue:
    target = load(token)
    form = TopicsForm()
    form.topics.choices = [SelectChoice(t.slug, t.name) for t in target.mailing_list.topics]
    if not form.validate_on_submit():
        return render_center(token, target, 400, topics_form=form)
    prefs.set_topics(session(), target, form.topics.data or [], now=context.now())
    return back(token, "Saved your topics.")


@bp.post("/pause")
def pause(token: str) -> ResponseReturnValue:
    target = load(token)
    form = PauseForm()
    if not form.validate_on_submit():
        return render_center(token, target, 400, pause_form=form)
    prefs.pause(session(), target, form.duration.data, now=context.now())
    label = next(label for key, label, _ in PAUSE_OPTIONS if key == form.duration.data)
    return back(token, f"Paused for {label}. Mail starts again by itself after that.")


@bp.post("/resume")
def resume(token: str) -> ResponseReturnValue:
    target = load(token)
    if not ResumeForm().validate_on_submit():
        return render_center(token, target, 400)
    prefs.resume(session(), target, now=context.now())
    return back(token, "Welcome back: mail resumes now.")


@bp.post("/unsubscribe")
def unsubscribe(token: str) -> ResponseReturnValue:
    target = load(token)
    form = UnsubscribeForm()
    if not form.validate_on_submit():
        return render_center(token, target, 400)
    whole_list = Target(target.mailing_list, target.subscriber, None, target.campaign_id)
    if form.scope.data == "all":
        prefs.unsubscribe_all(session(), whole_list, now=context.now())
    else:
        svc.unsubscribe(session(), whole_list, channel=prefs.CENTER, now=context.now())
    return render_unsubscribed(token, target, form.scope.data, just_now=True)


@bp.post("/resubscribe")
def resubscribe(token: str) -> ResponseReturnValue:
    target = load(token)
    form = ResubscribeForm()
    if not form.validate_on_submit():
        return render_center(token, target, 400)
    scope = form.scope.data
    now = context.now()
    whole_list = Target(target.mailing_list, target.subscriber, None, target.campaign_id)
    if scope == "all":
        prefs.resubscribe_all(session(), whole_list, now=now)
    elif scope == "list":
        svc.resubscribe(session(), whole_list, channel=prefs.CENTER, now=now)
    elif scope.startswith("topic:"):
        slug = scope.removeprefix("topic:")
        topic = next((t for t in target.mailing_list.topics if t.slug == slug), None)
        if topic is None:
            raise InvalidInput(f"unknown topic {slug!r}")
        topic_target = Target(target.mailing_list, target.subscriber, topic, target.campaign_id)
        svc.resubscribe(session(), topic_target, channel=prefs.CENTER, now=now)
    else:
        raise InvalidInput(f"unknown scope {scope!r}")
    return back(token, "You are subscribed again.")


@bp.post("/survey")
def survey(token: str) -> ResponseReturnValue:
    target = load(token)
    form = SurveyForm()
    scope = request.form.get("scope", "list")
    scope = scope if scope in {"list", "all"} or scope.startswith("topic:") else "list"
    if not form.validate_on_submit():
        return render_unsubscribed(token, target, scope, survey_form=form, status=400)
    try:
        prefs.record_survey(
            session(), target, form.reason.data, form.comment.data, now=context.now()
        )
    except InvalidInput as exc:
        form.comment.errors = [*form.comment.errors, str(exc)]
        return render_unsubscribed(token, target, scope, survey_form=form, status=400)
    flash("Thank you: your answer was saved.")
    return render_unsubscribed(token, target, scope)
