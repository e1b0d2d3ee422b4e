"""WTForms forms for the recipient pages (through Flask-WTF, without CSRF tokens).

Every recipient page lives under a signed URI (/u/, /p/), and that URI is the
credential: the forms carry no CSRF token and the pages set no cookie, so they
work in mail apps' in-app browsers that block cookies. Choices that depend on
the list (its frequencies and topics) are filled in by the view.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectMultipleField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from unsubsvc.core.preferences import SURVEY_COMMENT_MAX, SURVEY_REASONS


class TokenForm(FlaskForm):
    """A form whose credential is the signed URI it is posted to, not a cookie."""

    class Meta:
        csrf = False


class CheckboxesField(SelectMultipleField):
    """Several checkboxes with one name: ticking none is a valid answer."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PreferencesForm(TokenForm):
    """The preference center's one form: frequency, topics and pause, saved together."""

    frequency = RadioField(_l("How often"), validators=[Optional()])
    topics = CheckboxesField(_l("Topics"))
    pause = RadioField(_l("Pause"), validators=[DataRequired(_l("Choose whether to pause."))])


class UnsubscribeForm(TokenForm):
    scope = HiddenField(validators=[AnyOf(["list", "all"])])


class ResubscribeForm(TokenForm):
    """Ask to resubscribe: ``list``, ``all`` or ``topic:<slug>``, as the unsubscribe was."""

    scope = HiddenField(validators=[DataRequired(), Length(max=80)])


class UndoForm(TokenForm):
    """Undo from the confirmation page: the short-lived undo token is the proof."""

    undo = HiddenField(validators=[DataRequired(), Length(max=600)])


#: The survey reasons' labels, written out so the message extractor finds them.
REASON_LABELS = {
    "too_many": _l("Too many emails"),
    "not_relevant": _l("The content is not relevant to me"),
    "never_signed_up": _l("I never signed up"),
    "found_alternative": _l("I found an alternative"),
    "other": _l("Other"),
}


def reason_choices() -> list[SelectChoice]:
    return [SelectChoice(key, REASON_LABELS.get(key, label)) for key, label in SURVEY_REASONS]


class SurveyForm(TokenForm):
    """The exit survey; every field is optional and an empty answer is simply thanked."""

    reason = RadioField(
        _l("Why did you unsubscribe? (optional)"),
        choices=reason_choices(),
        validators=[Optional()],
    )
    comment = TextAreaField(
        _l(
            "Anything else you want to tell us? (optional, up to %(n)s characters)",
            n=SURVEY_COMMENT_MAX,
        ),
        validators=[
            Optional(),
            Length(
                max=SURVEY_COMMENT_MAX,
                message=_l(
                    "Your comment is longer than %(n)s characters. Please shorten it; "
                    "your text is kept below.",
                    n=SURVEY_COMMENT_MAX,
                ),
            ),
        ],
    )
    scope = HiddenField()
