"""What both recipient blueprints share: the confirmation page, undo links, resubscribe mail.

The one-click landing page and the preference center each lead to the
confirmation page, so it lives here rather than in either blueprint. Every
recipient page is cookie-free: its credential is the signed URI, and the status
after a Post/Redirect/Get travels in the redirect URL (``?done=...#status``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from unsubsvc.core.action_links import ActionLinks, ConfirmLink, UndoLink, expiry
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.tokens import Purpose, TokenPayload
from unsubsvc.services import preferences as prefs
from unsubsvc.services import unsubscribe as svc
from unsubsvc.services.events import Target
from unsubsvc.web import context, i18n
from unsubsvc.web.branding import brand_of
from unsubsvc.web.context import session
from unsubsvc.web.forms import SurveyForm

#: Status messages a redirect may ask for (``?done=KEY``); anything else shows none.
DONE_KEYS = frozenset(
    {"unsubscribed", "saved", "survey", "resubscribed", "mailed", "undo-refused", "already"}
)


def preferences_token(payload: TokenPayload) -> str:
    """Return the preferences token for the recipient behind any token's payload."""
    scoped = TokenPayload(payload.list_id, payload.subscriber, campaign_id=payload.campaign_id)
    return context.minter().signer.sign(Purpose.PREFERENCES, scoped, now=context.now())


def action_links() -> ActionLinks:
    return ActionLinks(context.runtime().keyring)


def use_language(target: Target) -> None:
    """Pick the page's language from the recipient's stored choice and the list's default."""
    i18n.use_recipient(
        stored=target.subscriber.locale, list_default=target.mailing_list.default_locale
    )


def scope_target(target: Target, scope: str) -> Target:
    """Return the target an action on ``scope`` applies to (InvalidInput for unknown scopes)."""
    if scope in {"list", "all"}:
        return Target(
            target.mailing_list,
            target.subscriber,
            None,
            target.campaign_id,
            subscription=target.subscription,
        )
    if scope.startswith("topic:"):
        slug = scope.removeprefix("topic:")
        topic = next((t for t in target.mailing_list.topics if t.slug == slug), None)
        if topic is not None:
            return Target(
                target.mailing_list,
                target.subscriber,
                topic,
                target.campaign_id,
                subscription=target.subscription,
            )
        raise InvalidInput(f"unknown topic {slug!r}")
    raise InvalidInput(f"unknown scope {scope!r}")


def undo_token(target: Target, scope: str, event_id: int | None) -> str | None:
    """Mint the short-lived undo link for the unsubscribe ``event_id`` (None: nothing to undo)."""
    if event_id is None:
        return None
    link = UndoLink(
        list_id=target.mailing_list.id,
        subscriber=target.subscriber.public_id,
        scope=scope,
        event_id=event_id,
        expires_at=expiry(context.now(), context.settings().undo_window),
    )
    return action_links().sign(link)


def to_unsubscribed(
    prefs_token: str, scope: str, *, done: str, undo: str | None = None
) -> Response:
    """303 to the confirmation page (Post/Redirect/Get): Back and Reload repeat nothing."""
    args: dict[str, Any] = {"scope": scope, "done": done}
    if undo is not None:
        args["undo"] = undo
    url = url_for("center.unsubscribed", token=prefs_token, **args, _anchor="status")
    return redirect(url, code=303)  # type: ignore[return-value]


def to_center(prefs_token: str, done: str) -> Response:
    url = url_for("center.preferences", token=prefs_token, done=done, _anchor="status")
    return redirect(url, code=303)  # type: ignore[return-value]


def status_message(done: str | None, *, scope_text: str = "") -> str | None:
    """Return the sentence a ``?done=`` key stands for (translated), or None."""
    messages = {
        "unsubscribed": _("Done. You will no longer receive %(what)s.", what=scope_text),
        "already": _("You were already unsubscribed from %(what)s.", what=scope_text),
        "saved": _("Saved. Your preferences are shown below."),
        "survey": _("Thank you. Your answer helps us send better mail."),
        "resubscribed": _("Welcome back: you are subscribed again."),
        "mailed": _(
            "We sent a confirmation link to your e-mail address. Nothing changes until you "
            "follow it."
        ),
        "undo-refused": _(
            "Undo is no longer possible from this page. You can resubscribe with a "
            "confirmation link we send to your e-mail address."
        ),
    }
    return messages.get(done or "")


def render_unsubscribed(
    prefs_token: str,
    target: Target,
    scope: str,
    *,
    survey_form: SurveyForm | None = None,
    status: int = 200,
    done: str | None = None,
    undo: str | None = None,
) -> Response:
    """Render the confirmation: what stopped, undo (or resubscribe by mail), the optional survey."""
    use_language(target)
    last = prefs.last_unsubscribe(session(), target)
    answer = last.answer if last is not None else None
    if survey_form is None:
        survey_form = SurveyForm(scope=scope)
    text = scope_text(target, scope)
    html = render_template(
        "center/unsubscribed.html",
        prefs_token=prefs_token,
        target=target,
        scope=scope,
        scope_text=text,
        message=status_message(done, scope_text=text),
        error=status == 400,
        survey_form=survey_form,
        survey_done=done == "survey" or answer is not None,
        undo=undo,
    )
    return Response(html, status=status, mimetype="text/html")


def scope_text(target: Target, scope: str) -> str:
    """Say in words what an unsubscribe of ``scope`` stopped."""
    if scope == "all":
        return str(_("any mail from %(sender)s", sender=brand_of(target.mailing_list).sender_name))
    if scope.startswith("topic:"):
        slug = scope.removeprefix("topic:")
        name = next((t.name for t in target.mailing_list.topics if t.slug == slug), slug)
        list_name = target.mailing_list.display_name
        return str(_("%(topic)s mail from %(list)s", topic=name, list=list_name))
    return str(_("mail from %(list)s", list=target.mailing_list.display_name))


def is_unsubscribed(target: Target, scope: str) -> bool:
    """Return whether ``scope`` is unsubscribed now (stored state, read fresh)."""
    if scope == "all":
        return target.subscriber.unsubscribed_all_at is not None
    return svc.is_unsubscribed(session(), scope_target(target, scope))


def mail_resubscribe_link(target: Target, scope: str) -> None:
    """Queue a mail with a link that resubscribes ``scope`` when followed (double opt-in).

    Following it proves the reader holds the address: a forwarded message or a
    relay's copy cannot resubscribe anyone. Written in the recipient's language.
    """
    from unsubsvc.core.outgoing_mail import MailContent  # noqa: PLC0415 (mail helper's module)
    from unsubsvc.services import outbox  # noqa: PLC0415

    settings = context.settings()
    now = context.now()
    link = ConfirmLink(
        list_id=target.mailing_list.id,
        subscriber=target.subscriber.public_id,
        scope=scope,
        expires_at=expiry(now, settings.confirm_link_max_age),
    )
    url = url_for("center.confirm_page", link=action_links().sign(link), _external=True)
    locale = (
        i18n.supported(target.subscriber.locale)
        or i18n.supported(target.mailing_list.default_locale)
        or i18n.supported(settings.default_locale)
        or "en"
    )
    brand = brand_of(target.mailing_list)
    with force_locale(locale):
        values = {
            "brand": brand,
            "url": url,
            "scope_text": scope_text(target, scope),
            "days": max(1, settings.confirm_link_max_age // 86400),
            "current_locale": locale,
        }
        subject = _("Confirm: resubscribe to %(list)s", list=target.mailing_list.display_name)
        text = render_template("mail/resubscribe_confirm.txt", **values)
        html = render_template("mail/resubscribe_confirm.html", **values)
    content = MailContent(
        kind="resubscribe-confirm",
        to=target.subscriber.email,
        subject=subject,
        text=text,
        html=html,
        sender_name=brand.sender_name,
        locale=locale,
    )
    outbox.enqueue(
        session(), content, settings=settings, now=now, subscriber_id=target.subscriber.id
    )
