"""WTForms forms (through Flask-WTF, so each carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SubmitField


class ConfirmUnsubscribeForm(FlaskForm):
    """The landing page's single button."""

    submit = SubmitField("Unsubscribe")
