"""Postmark's webhooks at ``POST /inbound/postmark``."""

from __future__ import annotations

from unsubsvc.web.esp import bp

__all__ = ["bp"]
