"""The admin console's audit log page and its downloads."""

from __future__ import annotations

from unsubsvc.web.admin import bp

__all__ = ["bp"]
