"""The sender API, ``/api/v1``: JSON in and out, bearer keys, an OpenAPI document.

The blueprint and its registry live in ``blueprint``; importing ``routes``
registers the operations on them.
"""

from __future__ import annotations

from unsubsvc.web.api import audit_trail, routes  # noqa: F401 (audit_trail: its hook)
from unsubsvc.web.api.blueprint import PREFIX, api, bp

__all__ = ["PREFIX", "api", "bp", "routes"]
