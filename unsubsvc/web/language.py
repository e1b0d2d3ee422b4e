"""The language picker on recipient pages: the recipient's choice, stored on their row.

Cookie-free like the other recipient forms: the signed token in the URL is the
credential, so there is no CSRF token and no session. Only POST changes anything
(link scanners fetch every URL in a message); the answer is a 303 back to the page
the picker was on (a path under the same token, else the token's main page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue

from unsubsvc.services.languages import choose_language
from unsubsvc.web import center, i18n, manage, oneclick
from unsubsvc.web.context import session
from unsubsvc.web.extensions import csrf

bp = Blueprint("language", __name__)
csrf.exempt(bp)

#: URL rule of the page shown (its prefix) → the picker's endpoint for the same token.
PICKERS = {
    "/p/<token>": "language.preferences",
    "/u/<token>": "language.landing",
    "/manage/s/<token>": "language.manage_page",
}
#: Not carried back after a choice: ``lang`` would override it, the others report a
#: change (Post/Redirect/Get status) that the language choice did not make.
STATUS_PARAMS = frozenset({"lang", "saved", "done"})


def back(prefix: str, main_page: str) -> ResponseReturnValue:
    """Redirect (303) to the form's ``back`` path if under ``prefix``, else to ``main_page``."""
    target = request.form.get("back", "")
    parts = urlsplit(target)
    inside = target == prefix or target.startswith(prefix + "/") or target.startswith(prefix + "?")
    if not inside or parts.scheme or parts.netloc or "\\" in target:
        target = main_page
    return redirect(target, code=303)


@bp.post("/p/<token>/language")
def preferences(token: str) -> ResponseReturnValue:
    """Store the language chosen on a preference-center page; show that page in it."""
    target = center.load(token)
    choose_language(session(), target.subscriber, request.form.get("lang", ""))
    return back(f"/p/{token}", url_for("center.preferences", token=token))


@bp.post("/u/<token>/language")
def landing(token: str) -> ResponseReturnValue:
    """Store the language chosen on the unsubscribe landing page; show that page in it."""
    _payload, target = oneclick.load_target(token)
    choose_language(session(), target.subscriber, request.form.get("lang", ""))
    return back(f"/u/{token}", url_for("oneclick.unsubscribe_uri", token=token))


@bp.post("/manage/s/<token>/language")
def manage_page(token: str) -> ResponseReturnValue:
    """Store the language chosen on the self-service page (all lists of the address)."""
    subscriber = manage._load(token)
    choose_language(session(), subscriber, request.form.get("lang", ""))
    return back(f"/manage/s/{token}", url_for("manage.subscriptions", token=token))


@bp.app_context_processor
def picker() -> dict[str, Any]:
    """Give templates ``language_action`` (where the picker posts) and ``language_back``."""
    token = (request.view_args or {}).get("token")
    rule = request.url_rule.rule if request.url_rule is not None else ""
    endpoint = PICKERS.get(rule.partition("/<token>")[0] + "/<token>")
    # Only where the token proved good and named a recipient: not on an error page.
    if not isinstance(token, str) or endpoint is None or not i18n.recipient_known():
        return {"language_action": None, "language_back": None}
    # Back to this page after the choice, without a ?lang= that would override it; a page
    # answering a POST has no address to return to, so the token's main page is shown.
    here = None
    if request.method in ("GET", "HEAD"):
        query = urlencode(
            [(k, v) for k, v in request.args.items(multi=True) if k not in STATUS_PARAMS]
        )
        here = request.path + (f"?{query}" if query else "")
    return {"language_action": url_for(endpoint, token=token), "language_back": here}
