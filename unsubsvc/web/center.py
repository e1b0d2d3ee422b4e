"""The preference center: less mail, a pause, fewer topics, or none at all, and undo.

Reached from the landing page and from "manage preferences" footer links
(``unsubsvc link``). Every form carries a CSRF token; every save redirects
back to the page, which shows what was stored.
"""

from __future__ import annotations

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
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.preferences import PAUSE_OPTIONS, RecipientState
from unsubsvc.core.tokens import Purpose
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.events import Target
from unsubsvc.web import context, limits
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
    with limits.counting_bad_tokens():  # only a failure is counted: see web.limits
        payload = context.minter().signer.verify(Purpose.PREFERENCES, token, now=context.now())
        return svc.resolve(session(), payload)


def frequency_label(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ").capitalize()


def frequency_form(target: Target, state: RecipientState | None = None) -> FrequencyForm:
    """Return the frequency form with the list's choices, preset to ``state`` when given."""
    form = FrequencyForm() if state is None else FrequencyForm(frequency=state.frequency)
    form.frequency.choices = [
        SelectChoice(f.slug, frequency_label(f.slug)) for f in target.mailing_list.frequencies
    ]
    return form


def topics_form(target: Target, state: RecipientState | None = None) -> TopicsForm:
    """Return the topics form with the list's choices, preset to ``state`` when given."""
    topics = target.mailing_list.topics
    form = (
        TopicsForm()
        if state is None
        else TopicsForm(topics=[t.slug for t in topics if t.slug not in state.opted_out_topics])
    )
    form.topics.choices = [SelectChoice(t.slug, t.name) for t in topics]
    return form


def render_center(
    token: str,
    target: Target,
    status: int = 200,
    *,
    state: RecipientState | None = None,
    **forms: FlaskForm,
) -> Response:
    """Render the preference center from what is stored now, building only the forms it shows.

    ``forms`` replaces a built form with one that failed validation, to show its
    errors. The buttons without fields (resume, unsubscribe) need no form object:
    the page's one CSRF token (Flask-WTF keeps one per request) is all they carry.
    """
    if state is None:
        state = prefs.stored_state(session(), target)
    paused_until = state.active_pause(context.now())
    mailing_list = target.mailing_list
    shown: dict[str, FlaskForm | None] = {
        "frequency_form": (
            frequency_form(target, state) if len(mailing_list.frequencies) > 1 else None
        ),
        "topics_form": topics_form(target, state) if mailing_list.topics else None,
        "pause_form": PauseForm() if paused_until is None else None,
    }
    shown.update(forms)
    html = render_template(
        "center/preferences.html",
        token=token,
        target=target,
        paused_until=paused_until,
        **shown,
    )
    return Response(html, status=status, mimetype="text/html")


def back(token: str, message: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("center.preferences", token=token) + "#saved", code=303)


@bp.get("")
def preferences(token: str) -> Response:
    """Show the recipient's choices, each with a form to change it."""
    target = load(token)
    state = prefs.stored_state(session(), target)
    if state.unsubscribed_all or not state.subscribed:
        return render_unsubscribed(token, target, "all" if state.unsubscribed_all else "list")
    return render_center(token, target, state=state)


@bp.post("/frequency")
def frequency(token: str) -> ResponseReturnValue:
    target = load(token)
    form = frequency_form(target)
    if not form.validate_on_submit():
        return render_center(token, target, 400, frequency_form=form)
    prefs.set_frequency(session(), target, form.frequency.data, now=context.now())
    return back(token, f"Saved: you will get {frequency_label(form.frequency.data).lower()} mail.")


@bp.post("/topics")
def topics(token: str) -> ResponseReturnValue:
    target = load(token)
    form = topics_form(target)
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
