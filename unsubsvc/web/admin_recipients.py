"""Admin console pages for one recipient's data rights: find, export, erase.

The address travels only in POST bodies (CSRF-protected), never in a URL, so
it stays out of access logs, browser history and Referer headers. Erasing
takes two POSTs: the first shows what will go, the second does it. Each
look-up, export and erasure is audited with the address as a keyed hash.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, render_template
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.keys import Keyring
from unsubsvc.services import audit
from unsubsvc.services.erasure import erase
from unsubsvc.services.recipient_export import export_document, export_recipient
from unsubsvc.web import context, limits
from unsubsvc.web.admin import bp
from unsubsvc.web.context import session as db_session

__all__ = ["bp"]


class LookupForm(FlaskForm):  # type: ignore[misc]
    """Find what is held about an address."""

    email = StringField("E-mail address", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Look up")


class RecipientForm(FlaskForm):  # type: ignore[misc]
    """An action on the address just looked up (export, erase), carried in the body."""

    email = HiddenField(validators=[DataRequired(), Length(max=254)])
    confirmed = HiddenField()


@bp.route("/admin/recipients", methods=["GET", "POST"], endpoint="recipients")
def recipients() -> ResponseReturnValue:
    """Show the look-up form, and on POST what is held about the address."""
    form = LookupForm()
    if not form.validate_on_submit():
        return _page(form=form, status=400 if form.is_submitted() else 200)
    address = _address(form.email.data)
    if address is None:
        form.email.errors = [*form.email.errors, "This is not an e-mail address."]
        return _page(form=form, status=400)
    exported = export_recipient(db_session(), _keyring(), address, now=context.now())
    _audit("recipient.lookup", address, {"held": exported.held})
    return _page(form=form, exported=exported, action=RecipientForm(email=address, formdata=None))


@bp.post("/admin/recipients/export", endpoint="recipients_export")
def recipients_export() -> ResponseReturnValue:
    """Download everything held about the address as JSON."""
    form = RecipientForm()
    address = _address(form.email.data) if form.validate_on_submit() else None
    if address is None:
        return _page(form=LookupForm(formdata=None), status=400)
    exported = export_recipient(db_session(), _keyring(), address, now=context.now())
    _audit("recipient.export", address, {"held": exported.held})
    body = json.dumps(export_document(exported), indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        # A fixed name: the address must not end up in the downloads folder's listing either.
        headers={"Content-Disposition": 'attachment; filename="recipient-export.json"'},
    )


@bp.post("/admin/recipients/erase", endpoint="recipients_erase")
def recipients_erase() -> ResponseReturnValue:
    """Ask to confirm an erasure; on the confirming POST, erase and say what went."""
    form = RecipientForm()
    address = _address(form.email.data) if form.validate_on_submit() else None
    if address is None:
        return _page(form=LookupForm(formdata=None), status=400)
    if form.confirmed.data != "yes":
        exported = export_recipient(db_session(), _keyring(), address, now=context.now())
        return Response(
            render_template(
                "admin/recipients_confirm.html",
                address=address,
                exported=exported,
                action=RecipientForm(email=address, confirmed="yes", formdata=None),
            ),
            mimetype="text/html",
        )
    summary = erase(db_session(), _keyring(), address, now=context.now())
    _audit("recipient.erase", address, {"already_erased": summary.already_erased})
    return _page(form=LookupForm(formdata=None), summary=summary)


def _page(*, form: LookupForm, status: int = 200, **values: Any) -> Response:
    html = render_template("admin/recipients.html", form=form, **values)
    return Response(html, status=status, mimetype="text/html")


def _address(value: str | None) -> str | None:
    try:
        return normalize_address(value or "")
    except InvalidInput:
        return None


def _keyring() -> Keyring:
    return context.runtime().keyring


def _audit(action: str, address: str, detail: dict[str, Any]) -> None:
    """Record a data-rights action by the signed-in admin, the address as a keyed hash."""
    audit.record(
        db_session(),
        now=context.now(),
        actor_kind=audit.ADMIN,
        actor=g.admin.email,
        action=action,
        target=audit.describe_target({"email": address}, _keyring().address_hash),
        client=limits.client_address(),
        detail=detail,
    )
