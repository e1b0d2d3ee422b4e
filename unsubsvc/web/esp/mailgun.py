"""Mailgun's webhooks at ``POST /inbound/mailgun``."""

from __future__ import annotations

from unsubsvc.web.esp import bp

__all__ = ["bp"]
