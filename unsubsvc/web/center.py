"""The preference center: one form for frequency, topics and pause; unsubscribe, undo, survey.

Reached from the landing page and from "manage preferences" footer links
(``unsubsvc link``). The signed URI is the credential: no CSRF token, no
cookie (in-app mail browsers block them). Every POST answers 303 to a page
that shows what is stored, with the status in the URL (``?done=...#status``),
so Back and Reload repeat nothing. GET never changes anything.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from unsubsvc.core.action_links import ConfirmLink, UndoLink
from unsubsvc.core.errors import InvalidInput, InvalidToken
from unsubsvc.core.preferences import (
    PAUSE_KEEP,
    PAUSE_NONE,
    PAUSE_OPTIONS,
    RecipientState,
    undo_allowed,
)
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.events import Target
from unsubsvc.web import context, limits
from unsubsvc.web.context import session
from unsubsvc.web.extensions import csrf
from unsubsvc.web.forms import (
    PreferencesForm,
    ResubscribeForm,
    SurveyForm,
    UndoForm,
    UnsubscribeForm,
)
from unsubsvc.web.pages import (
    DONE_KEYS,
    action_links,
    is_unsubscribed,
    mail_resubscribe_link,
    preferences_token,
    render_unsubscribed,
    scope_target,
    scope_text,
    status_message,
    to_center,
    to_unsubscribed,
    undo_token,
    use_language,
)

bp = Blueprint("center", __name__)
# The signed URI is the credential of every form here; see the module docstring.
csrf.exempt(bp)

#: The pause periods' labels, written out so the message extractor finds them.
PAUSE_LABELS = {"2w": _l("2 weeks"), "1m": _l("1 month"), "3m": _l("3 months")}
CONFIRMED_BY_UNDO = {"confirmed_by": "undo-link"}
CONFIRMED_BY_MAIL = {"confirmed_by": "email-link"}


def load(token: str) -> Target:
    """Verify a preferences token and load what it names (400/404 otherwise)."""
    with limits.counting_bad_tokens():  # only a failure is counted: see web.limits
        payload = context.minter().signer.verify(Purpose.PREFERENCES, token, now=context.now())
        target = svc.resolve(session(), payload)
    use_language(target)
    return target


def frequency_label(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ").capitalize()


def pause_label(key: str) -> str:
    return str(PAUSE_LABELS.get(key, key))


def preferences_form(
    target: Target, paused: bool, *, state: RecipientState | None = None
) -> PreferencesForm:
    """Return the one form with the list's choices, preset to ``state`` when given."""
    mailing_list = target.mailing_list
    if state is not None:
        form = PreferencesForm(
            frequency=state.frequency,
            topics=[t.slug for t in mailing_list.topics if t.slug not in state.opted_out_topics],
            pause=PAUSE_KEEP if paused else PAUSE_NONE,
        )
    else:
        form = PreferencesForm()
    if len(mailing_list.frequencies) > 1:
        form.frequency.choices = [
            SelectChoice(f.slug, frequency_label(f.slug)) for f in mailing_list.frequencies
        ]
        form.frequency.validators = [*form.frequency.validators[1:]]  # required when offered
    else:
        del form.frequency
    if mailing_list.topics:
        form.topics.choices = [SelectChoice(t.slug, t.name) for t in mailing_list.topics]
    else:
        del form.topics
    keep = [SelectChoice(PAUSE_KEEP, _("Keep the current pause"))] if paused else []
    none = _("Resume mail now") if paused else _("Don't pause")
    form.pause.choices = [
        *keep,
        SelectChoice(PAUSE_NONE, none),
        *[
            SelectChoice(k, _("Pause for %(period)s", period=pause_label(k)))
            for k, _x, _y in PAUSE_OPTIONS
        ],
    ]
    return form


def render_center(
    token: str,
    target: Target,
    status: int = 200,
    *,
    form: PreferencesForm | None = None,
    state: RecipientState | None = None,
) -> Response:
    """Render the preference center from what is stored now (``state``, when already read)."""
    if state is None:
        state = prefs.stored_state(session(), target)
    paused_until = state.active_pause(context.now())
    if form is None:
        form = preferences_form(target, paused_until is not None, state=state)
    topics = target.mailing_list.topics
    html = render_template(
        "center/preferences.html",
        token=token,
        target=target,
        form=form,
        state=state,
        paused_until=paused_until,
        frequency_text=frequency_label(state.frequency) if state.frequency else None,
        wanted_topics=[t.name for t in topics if t.slug not in state.opted_out_topics],
        has_topics=bool(topics),
        descriptions={t.slug: t.description for t in topics if t.description},
        message=None if status != 200 else status_message(request.args.get("done")),
        error=status == 400,
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("/p/<token>")
def preferences(token: str) -> Response:
    """Show the stored choices, summarized, and the one form to change them."""
    target = load(token)
    state = prefs.stored_state(session(), target)
    if state.unsubscribed_all or not state.subscribed:
        scope = "all" if state.unsubscribed_all else "list"
        return render_unsubscribed(token, target, scope, done=_done())
    return render_center(token, target, state=state)


@bp.post("/p/<token>")
def save(token: str) -> Response:
    """Save frequency, topics and pause together; only what changed writes an event."""
    target = load(token)
    now = context.now()
    paused = prefs.stored_state(session(), target).active_pause(now) is not None
    form = preferences_form(target, paused)
    if not form.validate():
        return render_center(token, target, 400, form=form)
    if "frequency" in form:
        prefs.set_frequency(session(), target, form.frequency.data, now=now)
    if "topics" in form:
        prefs.set_topics(session(), target, form.topics.data or [], now=now)
    choice = form.pause.data
    if choice == PAUSE_NONE:
        prefs.resume(session(), target, now=now)
    elif choice != PAUSE_KEEP:
        prefs.pause(session(), target, choice, now=now)
    return to_center(token, "saved")


@bp.post("/p/<token>/unsubscribe")
def unsubscribe(token: str) -> Response:
    target = load(token)
    form = UnsubscribeForm()
    if not form.validate():
        return render_center(token, target, 400)
    scope = form.scope.data
    whole_list = scope_target(target, "list")
    if scope == "all":
        outcome = prefs.unsubscribe_all(session(), whole_list, now=context.now())
    else:
        outcome = svc.unsubscribe(session(), whole_list, channel=prefs.CENTER, now=context.now())
    done = "unsubscribed" if outcome.changed else "already"
    return to_unsubscribed(
        token, scope, done=done, undo=undo_token(target, scope, outcome.event_id)
    )


@bp.get("/p/<token>/unsubscribed")
def unsubscribed(token: str) -> Response:
    """The confirmation page a Post/Redirect/Get lands on: the stored state and the status."""
    target = load(token)
    scope = request.args.get("scope", "list")
    if not is_unsubscribed(target, scope):
        return render_center(token, target)
    undo = request.args.get("undo")
    return render_unsubscribed(
        token, target, scope, done=_done(), undo=undo if _undo_usable(target, undo) else None
    )


def _done() -> str | None:
    done = request.args.get("done")
    return done if done in DONE_KEYS else None


def _undo_usable(target: Target, token: str | None) -> bool:
    """Return whether ``token`` is an undo link for ``target`` that may act now."""
    return token is not None and _undo_link(target, token) is not None


def _undo_link(target: Target, token: str) -> UndoLink | None:
    try:
        link = action_links().verify(UndoLink, token, now=context.now())
        scoped = scope_target(target, link.scope)
    except (InvalidToken, InvalidInput):
        return None
    if link.list_id != target.mailing_list.id or link.subscriber != target.subscriber.public_id:
        return None
    latest = svc.latest_change_id(session(), scoped, link.scope)
    return link if undo_allowed(link.event_id, latest) else None


@bp.post("/p/<token>/undo")
def undo(token: str) -> Response:
    """Undo an unsubscribe with its short-lived undo link; otherwise say it is too late."""
    target = load(token)
    form = UndoForm()
    scope = request.form.get("scope", "list")
    link = _undo_link(target, form.undo.data) if form.validate() else None
    if link is None:
        safe_scope = scope if scope in {"list", "all"} or scope.startswith("topic:") else "list"
        return to_unsubscribed(token, safe_scope, done="undo-refused")
    _resubscribe(target, link.scope, CONFIRMED_BY_UNDO)
    return to_center(token, "resubscribed")


@bp.post("/p/<token>/resubscribe")
def resubscribe(token: str) -> Response:
    """Mail a confirmation link; nothing changes until it is followed (double opt-in)."""
    target = load(token)
    form = ResubscribeForm()
    if not form.validate():
        return render_center(token, target, 400)
    scope = form.scope.data
    scope_target(target, scope)  # unknown scope or topic: InvalidInput (400)
    mail_resubscribe_link(target, scope)
    return to_unsubscribed(token, scope, done="mailed")


@bp.post("/p/<token>/survey")
def survey(token: str) -> Response:
    """Store the optional exit-survey answer; sending nothing simply thanks."""
    target = load(token)
    form = SurveyForm()
    scope = form.scope.data or "list"
    scope = scope if scope in {"list", "all"} or scope.startswith("topic:") else "list"
    undo = request.form.get("undo")
    undo = undo if _undo_usable(target, undo) else None
    if not form.validate():
        return render_unsubscribed(token, target, scope, survey_form=form, status=400, undo=undo)
    prefs.record_survey(session(), target, form.reason.data, form.comment.data, now=context.now())
    return to_unsubscribed(token, scope, done="survey", undo=undo)


def _resubscribe(target: Target, scope: str, detail: dict[str, str]) -> None:
    scoped = scope_target(target, scope)
    now = context.now()
    if scope == "all":
        prefs.resubscribe_all(session(), scoped, now=now, detail=detail)
    else:
        svc.resubscribe(session(), scoped, channel=prefs.CENTER, now=now, detail=detail)


def load_confirm(link_token: str) -> tuple[ConfirmLink, Target]:
    """Verify a mailed confirmation link and load its recipient (400/404 otherwise)."""
    with limits.counting_bad_tokens():
        link = action_links().verify(ConfirmLink, link_token, now=context.now())
        target = svc.resolve(session(), TokenPayload(link.list_id, link.subscriber))
    use_language(target)
    return link, target


@bp.get("/p/confirm/<link>")
def confirm_page(link: str) -> str:
    """Show the button that resubscribes (link scanners fetch mailed URLs: GET changes nothing)."""
    confirm, target = load_confirm(link)
    return render_template(
        "center/confirm.html",
        link=link,
        target=target,
        scope=confirm.scope,
        scope_text=scope_text(target, confirm.scope),
    )


@bp.post("/p/confirm/<link>")
def confirm_resubscribe(link: str) -> Response:
    """Resubscribe: following the mailed link proves the reader holds the address."""
    confirm, target = load_confirm(link)
    _resubscribe(target, confirm.scope, CONFIRMED_BY_MAIL)
    prefs_token = preferences_token(
        TokenPayload(target.mailing_list.id, target.subscriber.public_id)
    )
    return to_center(prefs_token, "resubscribed")
