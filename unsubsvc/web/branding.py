"""The brand on recipient pages: the list's logo and accent stylesheet, served by unsubsvc.

The CSP allows images and styles from this origin only and no inline style, so the logo
and the accent colour are files served here, at content-addressed URLs (the URL changes
when the logo or colour does), cached for a year and marked ``nosniff``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, before_render_template, g, request

from unsubsvc.core.branding import MAX_LOGO_BYTES, Brand
from unsubsvc.db.models import MailingList
from unsubsvc.services import branding as brand_service
from unsubsvc.web import context

bp = Blueprint("branding", __name__)

#: Content-addressed answers never change: cache them for a year (RFC 9111 §5.2.2.1, RFC 8246).
_IMMUTABLE = "public, max-age=31536000, immutable"


def brand_of(mailing_list: MailingList | None) -> Brand:
    """Return the brand for ``mailing_list`` (None: the service's default), URLs under this app."""
    brand = brand_service.brand_for(context.session(), mailing_list, settings=context.settings())
    root = request.script_root if request else ""
    if not root:
        return brand
    return Brand(
        sender_name=brand.sender_name,
        color=brand.color,
        footer=brand.footer,
        privacy_url=brand.privacy_url,
        logo_url=None if brand.logo_url is None else root + brand.logo_url,
        stylesheet_url=None if brand.stylesheet_url is None else root + brand.stylesheet_url,
    )


def brand_context(mailing_list: MailingList | None) -> dict[str, Any]:
    """Template variables a recipient view passes: ``render_template(..., **brand_context(ml))``.

    ``sender_name`` stays the service's own: "all mail from …" covers every list it serves.
    """
    return {"brand": brand_of(mailing_list)}


@bp.get("/brand/<int:list_id>/logo-<digest>")
def logo(list_id: int, digest: str) -> Response:
    """Serve a list's logo with the type its bytes were sniffed as."""
    stored = brand_service.logo(context.session(), list_id)
    if stored is None or stored.sha256[:16] != digest:
        abort(404)
    response = Response(stored.data, mimetype=stored.content_type)
    return _immutable(response, stored.sha256)


@bp.get("/brand/<int:list_id>/<key>.css")
def stylesheet(list_id: int, key: str) -> Response:
    """Serve a list's brand stylesheet: logo size and the accent colour's custom properties."""
    mailing_list = context.session().get(MailingList, list_id)
    if mailing_list is None or brand_service.stylesheet_key(mailing_list.brand_color) != key:
        abort(404)
    response = Response(brand_css(mailing_list.brand_color), mimetype="text/css")
    return _immutable(response, key)


_LOGO_CSS = (
    "header.brand { display: flex; align-items: center; gap: .75rem; }\n"
    ".brand-logo { display: block; max-height: 3rem; max-width: 12rem; width: auto;"
    " height: auto; }\n"
)


def brand_css(color: str | None) -> str:
    """A list's stylesheet; ``color`` was checked for AA contrast (core.branding) when stored."""
    if color is None:
        return _LOGO_CSS
    return _LOGO_CSS + (
        "/* The list's accent colour; checked for WCAG 2.x AA (4.5:1) on white text and on the\n"
        "   page background before it was stored. */\n"
        f":root {{ --brand-accent: {color}; }}\n"
        "a { color: var(--brand-accent); }\n"
        "a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible {\n"
        "  outline-color: var(--brand-accent); }\n"
        "input[type=radio], input[type=checkbox] { accent-color: var(--brand-accent); }\n"
        "button.primary { background: var(--brand-accent); border-color: var(--brand-accent);\n"
        "  color: #fff; }\n"
        "button.primary:hover { background: var(--brand-accent); filter: brightness(.85); }\n"
        "button.danger-outline { border-color: var(--brand-accent); color: var(--brand-accent); }\n"
    )


def _immutable(response: Response, etag: str) -> Response:
    response.headers["Cache-Control"] = _IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(etag)
    response.make_conditional(request)
    return response


_DEFAULT = "unsubsvc_default_brand"


def _default_brand() -> dict[str, Any]:
    """Every template has a ``brand``: the service's own unless a view passes its list's."""
    brand = Brand(sender_name=context.settings().sender_name)
    setattr(g, _DEFAULT, brand)
    return {"brand": brand}


def _brand_recipient_page(_app: Flask, **extra: Any) -> None:
    """Brand a recipient page whose view passed a ``target`` but no ``brand``.

    The recipient views pass ``target`` (its ``mailing_list`` says whose page it is); a
    view that passes ``brand`` itself (``brand_context``) wins. Admin pages pass no target.
    """
    values: dict[str, Any] = extra["context"]
    target = values.get("target")
    mailing_list = getattr(target, "mailing_list", None)
    if not isinstance(mailing_list, MailingList) or values.get("brand") is not g.get(_DEFAULT):
        return
    values.update(brand_context(mailing_list))


#: The admin endpoint that takes a logo upload, and the body it may send (logo + form).
UPLOAD_ENDPOINT = "admin.list_brand"
UPLOAD_MAX_BODY = MAX_LOGO_BYTES + 64 * 1024


def _allow_logo_upload(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Raise the body limit for the logo upload only.

    A URL-value preprocessor runs before every ``before_request`` function, so the limit is
    in place before CSRF protection reads the form.
    """
    if endpoint == UPLOAD_ENDPOINT:
        request.max_content_length = UPLOAD_MAX_BODY


def init_app(app: Flask) -> None:
    """Register the routes, the default ``brand`` and the recipient pages' branding."""
    app.register_blueprint(bp)
    app.context_processor(_default_brand)
    app.url_value_preprocessor(_allow_logo_upload)
    before_render_template.connect(_brand_recipient_page, app)
