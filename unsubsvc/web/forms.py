"""WTForms forms (through Flask-WTF, so each carries a CSRF token).

Choices that depend on the list (its frequencies and topics) are filled in by
the view before validation.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectMultipleField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from unsubsvc.core.preferences import PAUSE_OPTIONS, SURVEY_COMMENT_MAX, SURVEY_REASONS


class ConfirmUnsubscribeForm(FlaskForm):
    """The landing page's single button."""

    submit = SubmitField("Unsubscribe")


class FrequencyForm(FlaskForm):
    frequency = RadioField("How often", validators=[DataRequired()])
    submit = SubmitField("Save how often")


class CheckboxesField(SelectMultipleField):
    """Several checkboxes with one name: ticking none is a valid answer."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TopicsForm(FlaskForm):
    topics = CheckboxesField("Topics")
    submit = SubmitField("Save topics")


class PauseForm(FlaskForm):
    duration = RadioField(
        "Pause for",
        choices=[SelectChoice(key, label) for key, label, _ in PAUSE_OPTIONS],
        validators=[DataRequired(message="Choose how long to pause.")],
    )
    submit = SubmitField("Pause mail")


class ResumeForm(FlaskForm):
    submit = SubmitField("Resume now")


class UnsubscribeForm(FlaskForm):
    scope = HiddenField(validators=[AnyOf(["list", "all"])])
    submit = SubmitField("Unsubscribe")


class ResubscribeForm(FlaskForm):
    """Undo: ``list``, ``all`` or ``topic:<slug>``, as the unsubscribe was."""

    scope = HiddenField(validators=[DataRequired(), Length(max=80)])
    submit = SubmitField("Undo: resubscribe me")


class SurveyForm(FlaskForm):
    reason = RadioField(
        "Why did you unsubscribe? (optional)",
        choices=[SelectChoice(key, label) for key, label in SURVEY_REASONS],
        validators=[Optional()],
    )
    comment = TextAreaField(
        "Anything else you want to tell us? (optional)",
        validators=[
            Optional(),
            Length(
                max=SURVEY_COMMENT_MAX,
                message=f"Please keep it under {SURVEY_COMMENT_MAX} characters.",
            ),
        ],
    )
    submit = SubmitField("Send")
