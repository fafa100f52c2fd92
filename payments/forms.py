"""Forms of the payments pages (Flask-WTF: CSRF on every post)."""

from __future__ import annotations

import uuid

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from app.money import format_money
from app.numbers import DIGITS, MAX_AMOUNT, WholeNumberField, parse_whole
from payments.pins import PIN_RE, WHY, weakness

REQUIRED = _l("Required.")
PIN = Regexp(r"^\d{4,6}$", message=_l("A PIN is 4 to 6 digits."))
WHOLE_DINARS = _l("Whole dinars, digits only.")
ABOVE_ZERO = _l("The amount must be a whole number above zero.")


def _dinars(amount: int) -> str:
    return format_money(amount, "IQD")


def _topup_max() -> int:
    return int(current_app.config["PAYMENTS_TOPUP_MAX"])


def topup_amount() -> WholeNumberField:
    """Dinars to put on a card: 1 to PAYMENTS_TOPUP_MAX ("75,000" and "٧٥٠٠٠" too)."""
    return WholeNumberField(_l("Amount (IQD)"), [InputRequired(REQUIRED)], min=1,
                            max=_topup_max, invalid=WHOLE_DINARS, show=_dinars,
                            too_small=ABOVE_ZERO,
                            too_large=_l("A top-up can be at most %(max)s."))


def strong_pin(_form: FlaskForm, field: PasswordField) -> None:
    """A new PIN the holder chooses: not one a thief tries first (see payments.pins).

    The shape is PIN's to judge; issue_card refuses a weak PIN too, this only says so
    next to the field before anything is tried.
    """
    pin = field.data or ""
    why = weakness(pin) if PIN_RE.match(pin) else None
    if why is not None:
        raise ValidationError(str(WHY[why]))


def pin_unless_code(form: FlaskForm, field: PasswordField) -> None:
    """The PIN is required, except on the try that gives the one-time code sent to the
    holder (the PIN was checked when the code was sent; see payments.otp)."""
    if not (field.data or "") and not (form.one_time_code.data or "").strip():
        raise StopValidation(str(REQUIRED))


def one_time_code_field() -> StringField:
    """The code the holder got by SMS, asked only once payments sent one."""
    return StringField(_l("One-time code from the SMS"), [Optional(), Length(max=12)])


def new_key() -> str:
    return uuid.uuid4().hex


class IssueCardForm(FlaskForm):
    holder_name = StringField(_l("Holder's full name"), [InputRequired(REQUIRED), Length(max=200)])
    national_id = StringField(_l("National ID number"), [InputRequired(REQUIRED), Length(max=32)],
                              filters=DIGITS)
    mobile = StringField(_l("Mobile"), [InputRequired(REQUIRED), Length(max=16)], filters=DIGITS)
    account_email = StringField(_l("Barid account e-mail (if any)"), [Optional(), Length(max=254)])
    pin = PasswordField(_l("PIN chosen by the holder"),
                        [InputRequired(REQUIRED), PIN, strong_pin], filters=DIGITS)
    pin_again = PasswordField(_l("PIN again"), [InputRequired(REQUIRED),
                                               EqualTo("pin", message=_l("The PINs differ."))],
                                               filters=DIGITS)


class TopUpForm(FlaskForm):
    amount = topup_amount()
    key = HiddenField(default=new_key)


class FindCardForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Card number or national ID"), [Optional(), Length(max=40)], filters=DIGITS)


class RefundForm(FlaskForm):
    # At most what the payment took, which the refund service checks; the bound here
    # keeps a mistyped hundred digits away from the database.
    amount = WholeNumberField(_l("Amount to refund"), [InputRequired(REQUIRED)], min=1,
                              max=MAX_AMOUNT, invalid=WHOLE_DINARS,
                              show=_dinars, too_small=ABOVE_ZERO)
    reason = TextAreaField(_l("Reason"), [InputRequired(REQUIRED), Length(max=300)])
    key = HiddenField(default=new_key)


class DecisionForm(FlaskForm):
    """A supervisor's approve / decline of a refund request or a pending rate."""

    note = StringField(_l("Note (if declined)"), [Optional(), Length(max=300)])


class RateForm(FlaskForm):
    base = SelectField(_l("Currency"), choices=["USD", "EUR", "TRY", "AED", "CNY", "GBP", "SAR",
                                                "JOD", "KWD"])
    rate = StringField(_l("Dinars for one unit"), [InputRequired(REQUIRED), Length(max=20)])


class PayWithPostCardForm(FlaskForm):
    card_number = StringField(_l("Post card number"), [InputRequired(REQUIRED), Length(max=24)],
                              filters=DIGITS)
    pin = PasswordField(_l("PIN"), [pin_unless_code, Optional(), PIN], filters=DIGITS)
    one_time_code = one_time_code_field()
    key = HiddenField(default=new_key)


class OnlineTopUpForm(FlaskForm):
    amount = topup_amount()
    key = HiddenField(default=new_key)


def parse_amount(value: int | str | None) -> int:
    """The amount of a validated amount field (its data is already the int).

    Raises ValueError for text that is not a whole amount: a view that reaches this has
    skipped validate_on_submit()."""
    amount = value if isinstance(value, int) else parse_whole(value)
    if amount is None:
        raise ValueError("not a whole amount")
    return amount
