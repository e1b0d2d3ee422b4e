"""SendGrid's Event Webhook at ``POST /inbound/sendgrid``."""

from __future__ import annotations

from unsubsvc.web.esp import bp

__all__ = ["bp"]
