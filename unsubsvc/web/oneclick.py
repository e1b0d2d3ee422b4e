"""The URI in List-Unsubscribe: the RFC 8058 one-click POST and its landing page.

GET and HEAD never change anything: link scanners and security gateways fetch
every URL in a message. Only a POST unsubscribes, and it needs nothing but the
signed URI: no cookie, session, CSRF token or login (RFC 8058 §3.1).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from flask import Blueprint, Response, abort, render_template, request

from unsubsvc.core.events import Channel
from unsubsvc.core.headers import ONE_CLICK, preferences_url
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.events import Target
from unsubsvc.web import context, limits
from unsubsvc.web.context import session
from unsubsvc.web.extensions import csrf
from unsubsvc.web.pages import (
    preferences_token,
    render_unsubscribed,
    to_unsubscribed,
    undo_token,
    use_language,
)

bp = Blueprint("oneclick", __name__)

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def load_target(token: str) -> tuple[TokenPayload, Target]:
    """Verify ``token`` and load what it names (InvalidToken → 400, NotFound → 404)."""
    with limits.counting_bad_tokens():  # only a failure is counted: see web.limits
        payload = context.minter().signer.verify(Purpose.UNSUBSCRIBE, token, now=context.now())
        target = svc.resolve(session(), payload)
    use_language(target)
    return payload, target


def preferences_link(payload: TokenPayload) -> str:
    """Return the preference-center URI for the recipient behind an unsubscribe token."""
    return preferences_url(context.minter().base_url, preferences_token(payload))


@bp.route("/u/<token>", methods=["GET", "HEAD", "POST"])
def unsubscribe_uri(token: str) -> Response | str:
    """Unsubscribe on POST (one-click); show the confirm page on GET and HEAD."""
    payload, target = load_target(token)
    if request.method == "POST":
        check_one_click_body()
        svc.unsubscribe(session(), target, channel=Channel.ONE_CLICK, now=context.now())
        # Rendered without a form: the answer must not set a cookie.
        return render_template("oneclick/unsubscribed.html", target=target)
    if svc.is_unsubscribed(session(), target):
        # Already done (by the mail client, say): the state, resubscribe by mail, the survey.
        return render_unsubscribed(preferences_token(payload), target, scope_of(target))
    # The page's one button posts to a signed URI: no CSRF token, no cookie (see confirm).
    return render_template(
        "oneclick/landing.html",
        target=target,
        token=token,
        preferences_url=preferences_link(payload),
    )


# RFC 8058 §3.1: the POST carries no cookie or CSRF token; the signed URI is the credential.
csrf.exempt(unsubscribe_uri)


@bp.post("/u/<token>/confirm")
def confirm(token: str) -> Response:
    """Unsubscribe from the landing page's button, then 303 to the confirmation page.

    Like the one-click POST, the signed URI is the credential: in-app mail browsers
    that block cookies must not be able to refuse an unsubscribe. Unlike it, this is
    a page in a browser, so Post/Redirect/Get keeps Back and Reload harmless; the
    short-lived undo link travels in the redirect URL.
    """
    payload, target = load_target(token)
    outcome = svc.unsubscribe(session(), target, channel=Channel.LANDING_PAGE, now=context.now())
    scope = scope_of(target)
    return to_unsubscribed(
        preferences_token(payload),
        scope,
        done="unsubscribed" if outcome.changed else "already",
        undo=undo_token(target, scope, outcome.event_id),
    )


csrf.exempt(confirm)


def scope_of(target: Target) -> str:
    """Return how the confirmation page names the token's scope."""
    if target.subscriber.unsubscribed_all_at is not None:
        return "all"
    return f"topic:{target.topic.slug}" if target.topic is not None else "list"


def check_one_click_body() -> None:
    """Accept an empty body or a form carrying List-Unsubscribe=One-Click; refuse the rest.

    RFC 8058 §3.1 names the form field; some mail clients send no body at all,
    and the signed URI is the credential either way (RFC 8058 §3.1). Bodies over
    MAX_CONTENT_LENGTH are refused with 413 by Werkzeug before they are read.
    """
    key, _, value = ONE_CLICK.partition("=")
    if request.mimetype in FORM_TYPES:
        if not request.form and not request.files:
            return  # empty, or a multipart body with no part we can read
        if request.form.get(key) == value:
            return
        abort(400, description=f"The body must carry {ONE_CLICK}; nothing was changed.")
    body = request.get_data()
    if not body.strip():
        return
    # A client that sent the right bytes with no Content-Type at all still gets its unsubscribe;
    # a body declared as something else (JSON, text) is a different protocol: refuse it.
    fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    if not request.mimetype and fields == {key: [value]}:
        return
    abort(
        415,
        description="Send List-Unsubscribe=One-Click as application/x-www-form-urlencoded "
        "or multipart/form-data; nothing was changed.",
    )
