"""Amazon SES through SNS at ``POST /inbound/ses``."""

from __future__ import annotations

from unsubsvc.web.esp import bp

__all__ = ["bp"]
