"""Self-service by e-mail (``/manage``): ask for a link, follow it once, manage every list.

Routes:

- ``GET /manage``: the form (one field, ``email``).
- ``POST /manage``: rate-limited per client and per address; mails a sign-in link
  if the address is a known subscriber, and answers the same either way (a 303 to
  ``/manage?sent=1``, the same page, the same status; the only extra work for a
  known address is one INSERT), so the form does not tell who is subscribed.
- ``GET /manage/<token>``: changes nothing (link scanners fetch every URL in mail):
  shows one button, "Open my subscriptions".
- ``POST /manage/<token>``: spends the link (single use) and redirects (303) to
- ``GET /manage/s/<token>``: every list of the address, with its state, and forms
  that change it: ``POST /manage/s/<token>/list/<id>`` and ``POST .../all``. Each
  post redirects back with the outcome in the URL and ``#status``, where the
  status message is (Post/Redirect/Get; the fragment moves focus without script).

Cookie-free, like every recipient page: the credential is the token in the URL,
and no form carries a CSRF token. For the links' pages the token is the secret an
attacker would need anyway. For ``POST /manage`` a forged cross-site post can only
make a victim's browser ask for a sign-in link to be mailed to some address: the
link goes to that mailbox, not to the attacker, and the rate limits bound how much
mail that causes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from unsubsvc.core.action_links import ManageLink, ManageSession
from unsubsvc.core.addresses import address_key, normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.outgoing_mail import MailContent
from unsubsvc.core.preferences import PAUSE_OPTIONS
from unsubsvc.db.models import Subscriber
from unsubsvc.services import self_service
from unsubsvc.web import context, i18n, limits
from unsubsvc.web.branding import brand_of
from unsubsvc.web.extensions import csrf

bp = Blueprint("manage", __name__, url_prefix="/manage")
csrf.exempt(bp)

#: Outcomes a redirect may report (anything else in the URL is ignored).
OUTCOMES = ("saved", "unchanged", "left-all", "back")


def _page(template: str, status: int = 200, **values: Any) -> Response:
    html = render_template(template, **values)
    return Response(html, status=status, mimetype="text/html")


@bp.get("")
def form() -> Response:
    """Show the form that asks for an address (or, after a post, what happens next)."""
    return _page("manage/form.html", sent=request.args.get("sent") == "1")


@bp.post("")
def ask() -> ResponseReturnValue:
    """Mail a sign-in link to a known address; answer the same for any address."""
    raw = request.form.get("email", "")
    try:
        address = normalize_address(raw)
    except InvalidInput:
        limits.enforce(limits.MANAGE_PER_CLIENT)
        error = _("Please enter an e-mail address, like name@example.com.")
        return _page("manage/form.html", 400, sent=False, error=error, email=raw[:254])
    runtime = context.runtime()
    # The client first, so that a refused client spends no address's quota.
    limits.enforce(limits.MANAGE_PER_CLIENT)
    limits.enforce_key(
        limits.MANAGE_PER_ADDRESS, runtime.keyring.address_hash(address_key(address))
    )
    self_service.request_link(
        context.session(),
        address,
        keyring=runtime.keyring,
        links=context.action_links(),
        settings=runtime.settings,
        now=context.now(),
        content_for=_mail_content,
    )
    return redirect(url_for("manage.form", sent="1") + "#status", code=303)


def _mail_content(subscriber: Subscriber, token: str) -> MailContent:
    """Render the sign-in mail in the subscriber's language, else this request's."""
    settings = context.settings()
    locale = i18n.supported(subscriber.locale) or str(get_locale() or "en")
    url = settings.base_url + url_for("manage.follow", token=token)
    minutes = settings.manage_link_max_age // 60
    brand = brand_of(None)
    values = {"url": url, "minutes": minutes, "brand": brand, "current_locale": locale}
    with force_locale(locale):
        subject = _("Your link to manage your subscriptions")
        text = render_template("mail/manage_link.txt", **values)
        html = render_template("mail/manage_link.html", **values)
    return MailContent(
        kind="manage-link",
        to=subscriber.email,
        subject=subject,
        text=text,
        html=html,
        sender_name=brand.sender_name,
        locale=locale,
    )


def _verify_link(token: str) -> ManageLink:
    with limits.counting_bad_tokens():
        return context.action_links().verify(ManageLink, token, now=context.now())


@bp.get("/<token>")
def follow(token: str) -> Response:
    """Show the button that opens the subscriptions; changes nothing (scanners GET links)."""
    link = _verify_link(token)
    if self_service.is_used(context.session(), link):
        raise self_service.LinkUsed(_("This link was already used. Ask for a new one below."))
    return _page("manage/follow.html", token=token)


@bp.post("/<token>")
def spend(token: str) -> ResponseReturnValue:
    """Spend the single-use link and open the manage page."""
    link = _verify_link(token)
    now = context.now()
    session = context.session()
    self_service.subscriber_of(session, link.subscriber)
    try:
        self_service.consume(session, link, now=now)
    except self_service.LinkUsed:
        raise self_service.LinkUsed(
            _("This link was already used. Ask for a new one below.")
        ) from None
    opened = self_service.open_session(
        link, now=now, max_age=context.settings().manage_link_max_age
    )
    target = url_for("manage.subscriptions", token=context.action_links().sign(opened))
    return redirect(target, code=303)


def _load(token: str) -> Subscriber:
    with limits.counting_bad_tokens():
        opened = context.action_links().verify(ManageSession, token, now=context.now())
        return self_service.subscriber_of(context.session(), opened.subscriber)


@bp.get("/s/<token>")
def subscriptions(token: str) -> Response:
    """List every list of the address, with its state and a form to change it."""
    subscriber = _load(token)
    lists = self_service.lists_of(context.session(), subscriber)
    first = lists[0].mailing_list if lists else None
    i18n.use_recipient(
        stored=subscriber.locale, list_default=first.default_locale if first else None
    )
    outcome = request.args.get("done")
    return _page(
        "manage/subscriptions.html",
        token=token,
        lists=lists,
        email=subscriber.email,
        left_all=subscriber.unsubscribed_all_at is not None,
        now=context.now(),
        pause_options=PAUSE_OPTIONS,
        outcome=outcome if outcome in OUTCOMES else None,
        changed_list=request.args.get("list", type=int),
        brand=brand_of(first),
    )


def _back(token: str, outcome: str, list_id: int | None = None) -> ResponseReturnValue:
    args: dict[str, Any] = {"done": outcome}
    if list_id is not None:
        args["list"] = list_id
    path = url_for("manage.subscriptions", token=token) + "?" + urlencode(args)
    return redirect(path + "#status", code=303)


@bp.post("/s/<token>/list/<int:list_id>")
def change_list(token: str, list_id: int) -> ResponseReturnValue:
    """Store the choices of one list (subscribed, topics, frequency, pause)."""
    subscriber = _load(token)
    session = context.session()
    target = self_service.list_target(session, subscriber, list_id)
    pause = request.form.get("pause") or None
    if pause is not None and pause != "resume" and pause not in {k for k, *_ in PAUSE_OPTIONS}:
        raise InvalidInput(_("Choose one of the pauses offered."))
    choice = self_service.ListChoice(
        subscribed=request.form.get("subscribed") == "yes",
        topics=request.form.getlist("topics") if "topics-shown" in request.form else None,
        frequency=request.form.get("frequency") or None,
        pause=pause,
    )
    changed = self_service.apply_choice(session, target, choice, now=context.now())
    return _back(token, "saved" if changed else "unchanged", list_id)


@bp.post("/s/<token>/all")
def change_all(token: str) -> ResponseReturnValue:
    """Leave every list at once, or come back after having done so."""
    subscriber = _load(token)
    session = context.session()
    if request.form.get("action") == "back":
        self_service.come_back(session, subscriber, now=context.now())
        return _back(token, "back")
    self_service.leave_everything(session, subscriber, now=context.now())
    return _back(token, "left-all")
