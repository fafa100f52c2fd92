"""Forms of the clerk and officer pages (Flask-WTF: CSRF on every post)."""

from __future__ import annotations

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    FieldList,
    FormField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import InputRequired, Length, Optional

from app.geo import governorates
from app.numbers import (
    DIGITS,
    MAX_CM,
    MAX_GRAMS,
    MAX_LINE_QUANTITY,
    MAX_PRICE,
    DecimalAmountField,
    HiddenIdField,
    WholeNumberField,
)
from payments.forms import one_time_code_field, pin_unless_code
from tracking.services.events import DELIVERY_ACTIONS, NON_DELIVERY_REASONS

REQUIRED = _l("Required.")

SERVICE_CHOICES = [("parcel", _l("Parcel")), ("ems", _l("EMS (express)")),
                   ("registered", _l("Registered")), ("ecommerce", _l("E-commerce parcel"))]
CATEGORY_CHOICES = [("", "-"), ("gift", _l("Gift")), ("documents", _l("Documents")),
                    ("commercial_sample", _l("Commercial sample")),
                    ("returned_goods", _l("Returned goods")),
                    ("sale_of_goods", _l("Sale of goods")), ("other", _l("Other"))]
CURRENCIES = [("IQD", "IQD"), ("USD", "USD"), ("EUR", "EUR"), ("TRY", "TRY"), ("AED", "AED"),
              ("CNY", "CNY"), ("GBP", "GBP")]


def governorate_choices(locale: str) -> list[tuple[str, str]]:
    return [("", "-")] + [(g.code, g.name(locale)) for g in governorates()]


class ArticleForm(FlaskForm):
    class Meta:
        csrf = False

    description = StringField(_l("Contents"), validators=[Optional(), Length(max=200)])
    quantity = WholeNumberField(_l("Quantity"), validators=[Optional()], min=1,
                                max=MAX_LINE_QUANTITY)
    net_weight_grams = WholeNumberField(_l("Net weight (g)"), validators=[Optional()],
                                        min=0, max=MAX_GRAMS)
    value = DecimalAmountField(_l("Value"), validators=[Optional(), Length(max=20)],
                               max=MAX_PRICE)
    currency = SelectField(_l("Currency"), choices=CURRENCIES, default="IQD")
    hs_code = StringField(_l("HS tariff number"), validators=[Optional(), Length(max=10)],
                          filters=DIGITS)
    origin_country = StringField(_l("Country of origin"), validators=[Optional(),
                                                                      Length(max=2)])


class AcceptanceForm(FlaskForm):
    acceptance_key = HiddenField(default=lambda: uuid.uuid4().hex)
    service = SelectField(_l("Service"), choices=SERVICE_CHOICES, default="parcel")
    direction = SelectField(_l("Destination"), default="domestic", choices=[
        ("domestic", _l("Inside Iraq")), ("outbound", _l("Abroad"))])

    sender_name = StringField(_l("Sender's name"), validators=[InputRequired(REQUIRED),
                                                               Length(max=200)])
    sender_phone = StringField(_l("Sender's phone"), validators=[Optional(), Length(max=20)],
                               filters=DIGITS)
    sender_governorate = SelectField(_l("Governorate"), choices=[])
    sender_district = StringField(_l("District"), validators=[Optional(), Length(max=120)])
    sender_landmark = StringField(_l("Nearest landmark"),
                                  validators=[Optional(), Length(max=200)])

    recipient_name = StringField(_l("Recipient's name"),
                                 validators=[InputRequired(REQUIRED), Length(max=200)])
    recipient_phone = StringField(_l("Recipient's phone"),
                                  validators=[Optional(), Length(max=20)], filters=DIGITS)
    recipient_country = StringField(_l("Country (abroad only)"),
                                    validators=[Optional(), Length(max=2)])
    recipient_governorate = SelectField(_l("Governorate"), choices=[])
    recipient_district = StringField(_l("District"), validators=[Optional(), Length(max=120)])
    recipient_landmark = StringField(_l("Nearest landmark"),
                                     validators=[Optional(), Length(max=200)])
    recipient_address = StringField(_l("Address (abroad only)"),
                                    validators=[Optional(), Length(max=300)])

    # The parcel weight limit is the service's (MAX_PARCEL_WEIGHT_GRAMS, said in kg);
    # the bound here only keeps a mistyped number of digits from the database.
    weight_grams = WholeNumberField(_l("Weight (g)"), validators=[InputRequired(REQUIRED)],
                                    min=1, max=MAX_GRAMS,
                                    too_small=_l("Weigh the parcel: the weight must be "
                                                 "more than zero."))
    length_cm = WholeNumberField(_l("Length (cm)"), validators=[Optional()], default=0,
                                 min=0, max=MAX_CM)
    width_cm = WholeNumberField(_l("Width (cm)"), validators=[Optional()], default=0,
                                min=0, max=MAX_CM)
    height_cm = WholeNumberField(_l("Height (cm)"), validators=[Optional()], default=0,
                                 min=0, max=MAX_CM)

    customs_category = SelectField(_l("Kind of contents"), choices=CATEGORY_CHOICES,
                                   default="")
    articles = FieldList(FormField(ArticleForm), min_entries=3, max_entries=10)

    payment_method = SelectField(_l("Payment"), default="cash", choices=[
        ("cash", _l("Cash")), ("post_card", _l("Post card"))])
    card_number = StringField(_l("Post card number"), validators=[Optional(),
                                                                  Length(max=30)], filters=DIGITS)
    card_pin = PasswordField(_l("PIN"), validators=[Optional(), Length(max=6)], filters=DIGITS)
    submit = SubmitField(_l("Accept and print label"))


class ScanSetupForm(FlaskForm):
    # No office here: a scan is recorded at the scanning clerk's own office.
    code = SelectField(_l("Event"), choices=[])
    reason_code = SelectField(_l("Reason (failed delivery)"), choices=[("", "-")] + [
        (k, v) for k, v in NON_DELIVERY_REASONS.items()])
    action_code = SelectField(_l("Action taken"), choices=[("", "-")] + [
        (k, v) for k, v in DELIVERY_ACTIONS.items()])


class HandoverForm(FlaskForm):
    receiver_name = StringField(_l("Name of who received it"),
                                validators=[InputRequired(REQUIRED), Length(max=200)])
    receiver_id_number = StringField(_l("Identity document number"),
                                     validators=[InputRequired(REQUIRED), Length(max=40)],
                                     filters=DIGITS)
    # Away from the parcel's destination office a supervisor, standing at the counter,
    # approves with their own login name and password.
    supervisor_login = StringField(_l("Supervisor's login name (other office only)"),
                                   validators=[Optional(), Length(max=254)])
    supervisor_password = PasswordField(_l("Supervisor's password"),
                                        validators=[Optional(), Length(max=256)])
    submit = SubmitField(_l("Hand over"))


class DutyPaymentForm(FlaskForm):
    method = SelectField(_l("Payment"), default="cash", choices=[
        ("cash", _l("Cash")), ("post_card", _l("Post card"))])
    card_number = StringField(_l("Post card number"), validators=[Optional(),
                                                                  Length(max=30)], filters=DIGITS)
    card_pin = PasswordField(_l("PIN"), validators=[Optional(), Length(max=6)], filters=DIGITS)
    submit = SubmitField(_l("Take payment"))


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED)])
    submit = SubmitField(_l("Upload"))


class RevalueForm(FlaskForm):
    article_id = HiddenIdField(validators=[InputRequired(REQUIRED)])
    value = DecimalAmountField(_l("New value"), validators=[InputRequired(REQUIRED),
                                                            Length(max=20)], max=MAX_PRICE)
    currency = SelectField(_l("Currency"), choices=CURRENCIES, default="USD")
    note = StringField(_l("Why"), validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Revalue"))


class ReclassifyForm(FlaskForm):
    article_id = HiddenIdField(validators=[InputRequired(REQUIRED)])
    hs_code = StringField(_l("HS tariff number"), validators=[InputRequired(REQUIRED),
                                                              Length(max=10)], filters=DIGITS)
    note = StringField(_l("Why"), validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Reclassify"))


class DecisionForm(FlaskForm):
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])
    outcome = SelectField(_l("If refused"), default="return", choices=[
        ("return", _l("Return to sender")), ("destroy", _l("Destroy"))])
    release = SubmitField(_l("Release"))
    refuse = SubmitField(_l("Refuse"))


class OnlineDutyForm(FlaskForm):
    card_number = StringField(_l("Post card number"), validators=[InputRequired(REQUIRED),
                                                                  Length(max=30)], filters=DIGITS)
    card_pin = PasswordField(_l("PIN"), validators=[pin_unless_code, Optional(),
                                                    Length(max=6)], filters=DIGITS)
    one_time_code = one_time_code_field()
    submit = SubmitField(_l("Pay the duty"))
