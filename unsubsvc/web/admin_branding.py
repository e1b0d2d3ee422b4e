"""Admin console page to set a list's brand: sender name, accent colour, footer, privacy
link and logo (a multipart upload, CSRF-protected like every console form).

The same checks as ``unsubsvc list brand`` (``core.branding``): a colour below WCAG AA or a
logo that is not a raster image is refused with 400 and the reason. Each change is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from unsubsvc.core.branding import MAX_FOOTER, MAX_PRIVACY_URL, MAX_SENDER_NAME, BrandError
from unsubsvc.db.models import MailingList
from unsubsvc.services import audit
from unsubsvc.services import branding as brand_service
from unsubsvc.services.lists import get_list
from unsubsvc.web import context, limits
from unsubsvc.web.admin import bp
from unsubsvc.web.context import session as db_session

__all__ = ["bp"]

#: The endpoint that accepts a logo upload (a larger body than other pages).
ENDPOINT = "admin.list_brand"


class BrandForm(FlaskForm):  # type: ignore[misc]
    """A list's brand; an empty text field clears that value, an empty upload keeps the logo."""

    sender_name = StringField("Sender name", validators=[Optional(), Length(max=MAX_SENDER_NAME)])
    color = StringField("Accent colour (#RRGGBB)", validators=[Optional(), Length(max=7)])
    footer = TextAreaField(
        "Footer (postal address)", validators=[Optional(), Length(max=MAX_FOOTER)]
    )
    privacy_url = StringField(
        "Privacy-policy URL", validators=[Optional(), Length(max=MAX_PRIVACY_URL)]
    )
    logo = FileField("Logo (PNG, JPEG, GIF or WebP, at most 512 KiB)")
    clear_logo = BooleanField("Remove the logo")


@bp.route("/admin/lists/<name>/brand", methods=["GET", "POST"], endpoint="list_brand")
def list_brand(name: str) -> ResponseReturnValue:
    """Show the list's brand form; on POST check and store it, then show the page again."""
    mailing_list = get_list(db_session(), name)
    if request.method == "GET":
        return _page(mailing_list, BrandForm(formdata=None, **_current(mailing_list)))
    form = BrandForm()
    if not form.validate_on_submit():
        return _page(mailing_list, form, status=400)
    fields: dict[str, object] = {
        "sender_name": (form.sender_name.data or "").strip() or None,
        "color": (form.color.data or "").strip() or None,
        "footer": (form.footer.data or "").strip() or None,
        "privacy_url": (form.privacy_url.data or "").strip() or None,
    }
    upload = form.logo.data
    if isinstance(upload, FileStorage) and upload.filename:
        fields["logo_data"] = upload.read()
    elif form.clear_logo.data:
        fields["logo_data"] = None
    try:
        change = brand_service.set_brand(db_session(), mailing_list, now=context.now(), **fields)
    except BrandError as exc:
        return _page(mailing_list, form, status=400, problem=str(exc))
    if change.fields:
        audit.record(
            db_session(),
            now=context.now(),
            actor_kind=audit.ADMIN,
            actor=g.admin.email,
            action="list.brand",
            target=f"list:{mailing_list.name}",
            client=limits.client_address(),
            detail={"changed": list(change.fields)},
        )
    return redirect(url_for(ENDPOINT, name=name, saved=1), 303)


def _current(mailing_list: MailingList) -> dict[str, Any]:
    return {
        "sender_name": mailing_list.brand_sender_name,
        "color": mailing_list.brand_color,
        "footer": mailing_list.brand_footer,
        "privacy_url": mailing_list.brand_privacy_url,
    }


def _page(
    mailing_list: MailingList, form: BrandForm, *, status: int = 200, problem: str | None = None
) -> Response:
    preview = brand_service.brand_for(db_session(), mailing_list, settings=context.settings())
    html = render_template(
        "admin/brand.html",
        mailing_list=mailing_list,
        form=form,
        problem=problem,
        preview=preview,
        saved=request.args.get("saved") == "1",
    )
    return Response(html, status=status, mimetype="text/html")
