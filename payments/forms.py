"""Forms of the payments pages (Flask-WTF: CSRF on every post)."""

from __future__ import annotations

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

from payments.pins import PIN_RE, WHY, weakness

REQUIRED = _l("Required.")
PIN = Regexp(r"^\d{4,6}$", message=_l("A PIN is 4 to 6 digits."))
AMOUNT = Regexp(r"^\s*[\d,]+\s*$", message=_l("Whole dinars, digits only."))


def strong_pin(_form: FlaskForm, field: PasswordField) -> None:
    """A new PIN the holder chooses: not one a thief tries first (see payments.pins).

    The shape is PIN's to judge; issue_card refuses a weak PIN too, this only says so
    next to the field before anything is tried.
    """
    pin = field.data or ""
    why = weakness(pin) if PIN_RE.match(pin) else None
    if why is not None:
        raise ValidationError(str(WHY[why]))


def new_key() -> str:
    return uuid.uuid4().hex


class IssueCardForm(FlaskForm):
    holder_name = StringField(_l("Holder's full name"), [InputRequired(REQUIRED), Length(max=200)])
    national_id = StringField(_l("National ID number"), [InputRequired(REQUIRED), Length(max=32)])
    mobile = StringField(_l("Mobile"), [InputRequired(REQUIRED), Length(max=16)])
    account_email = StringField(_l("Barid account e-mail (if any)"), [Optional(), Length(max=254)])
    pin = PasswordField(_l("PIN chosen by the holder"),
                        [InputRequired(REQUIRED), PIN, strong_pin])
    pin_again = PasswordField(_l("PIN again"), [InputRequired(REQUIRED),
                                               EqualTo("pin", message=_l("The PINs differ."))])


class TopUpForm(FlaskForm):
    amount = StringField(_l("Amount (IQD)"), [InputRequired(REQUIRED), AMOUNT])
    key = HiddenField(default=new_key)


class FindCardForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Card number or national ID"), [Optional(), Length(max=40)])


class RefundForm(FlaskForm):
    amount = StringField(_l("Amount to refund"), [InputRequired(REQUIRED), AMOUNT])
    reason = TextAreaField(_l("Reason"), [InputRequired(REQUIRED), Length(max=300)])
    key = HiddenField(default=new_key)


class RateForm(FlaskForm):
    base = SelectField(_l("Currency"), choices=["USD", "EUR", "TRY", "AED", "CNY", "GBP", "SAR"])
    rate = StringField(_l("Dinars for one unit"), [InputRequired(REQUIRED), Length(max=20)])


class PayWithPostCardForm(FlaskForm):
    card_number = StringField(_l("Post card number"), [InputRequired(REQUIRED), Length(max=24)])
    pin = PasswordField(_l("PIN"), [InputRequired(REQUIRED), PIN])
    key = HiddenField(default=new_key)


class OnlineTopUpForm(FlaskForm):
    amount = StringField(_l("Amount (IQD)"), [InputRequired(REQUIRED), AMOUNT])
    key = HiddenField(default=new_key)


def parse_amount(raw: str) -> int:
    return int((raw or "0").replace(",", "").strip() or 0)
