"""The recipient's own choice of language, stored so every later page and mail uses it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from unsubsvc.core.languages import check_language
from unsubsvc.db.models import Subscriber


def choose_language(session: Session, subscriber: Subscriber, code: str) -> str:
    """Store ``code`` (a shipped language, else InvalidInput) as the subscriber's language."""
    subscriber.locale = check_language(code)
    session.flush()
    return subscriber.locale
