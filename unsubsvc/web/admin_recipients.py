"""Admin console pages for one recipient's data rights: find, export, erase."""

from __future__ import annotations

from unsubsvc.web.admin import bp

__all__ = ["bp"]
