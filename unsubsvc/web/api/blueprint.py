"""The API blueprint and its operation registry; every call but the document needs a key."""

from __future__ import annotations

from flask import Blueprint, g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from unsubsvc.services.apikeys import authenticate
from unsubsvc.web import context, limits
from unsubsvc.web.api.registry import Api, ApiError
from unsubsvc.web.context import session
from unsubsvc.web.extensions import csrf

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
api = Api(bp, title="unsubsvc sender API", version="1")
# Authenticated by bearer keys, not cookies: CSRF does not apply.
csrf.exempt(bp)


class AddressConverter(PathConverter):
    """An address as a path parameter, ``/`` in its local part included (``a/b@example.com``).

    WSGI servers decode ``%2F`` before routing, so a client's ``a%2Fb%40example.com``
    arrives as two segments; this takes them back together. The domain never holds a
    ``/``, so ``.../a@example.com/unsubscribe`` still routes to the unsubscribe
    operation rather than naming an address ``a@example.com/unsubscribe``. Text without
    ``@`` is one segment, as before, for the handler to refuse in words.
    """

    regex = r"(?:[^/@][^@]*@[^/@]*|[^/]+)"
    part_isolating = False


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    """Make ``<address:...>`` known before the blueprint's rules are added to the app."""
    state.app.url_map.converters["address"] = AddressConverter


@bp.before_request
def authenticate_request() -> None:
    """Allow a larger body than pages get, and require a live API key (but for the document).

    Bearer keys that fail are counted per client address (``web.limits``); past the
    limit they are answered 429 with Retry-After instead of 401.
    """
    request.max_content_length = context.settings().api_max_body
    if request.endpoint == "api.openapi_document":
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    key = None
    if scheme.lower() == "bearer" and presented.strip():
        key = authenticate(session(), presented.strip(), now=context.now())
    if key is None:
        if scheme.lower() == "bearer" and presented.strip():
            # A key that was looked up and failed: a guess, or a revoked key. Only these are
            # counted and refused (a missing header costs nothing); a valid key never is.
            limits.enforce(limits.API_KEY_FAILURES)
        raise ApiError(401, "send a valid API key as 'Authorization: Bearer <key>'")
    g.api_key = key
