"""ESP event webhooks: ``POST /inbound/<provider>``, each verified the way its provider signs.

One module per provider (``ses``, ``sendgrid``, ``postmark``, ``mailgun``) adds its
route to this blueprint. The credential is the provider's signature (or basic
auth), not a session: no CSRF token, no cookie.
"""

from __future__ import annotations

from flask import Blueprint

from unsubsvc.web.extensions import csrf

bp = Blueprint("esp", __name__, url_prefix="/inbound")
csrf.exempt(bp)
