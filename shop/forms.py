"""Forms of the shop's pages (Flask-WTF, so every POST carries a CSRF token)."""

from __future__ import annotations

from typing import Any

from babel import Locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.geo import governorates
from app.i18n import current_locale
from app.numbers import (
    DIGITS,
    MAX_AMOUNT,
    MAX_BIGINT,
    WholeNumberField,
    ascii_digits,
    parse_whole,
)
from payments.forms import one_time_code_field
from shop.schemas import BUY_CURRENCIES
from shop.services.cart import MAX_QUANTITY
from shop.services.delivery_fees import customs_categories

QUANTITY_RANGE = _l("Enter a quantity from 1 to %(max)s.", max=MAX_QUANTITY)


class QuantityField(IntegerField):
    """A whole number of items; anything else gets the shop's own message."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        # Arabic-Indic digits typed on an Arabic keyboard are still numbers; a sign, a
        # fraction or an exponent is not a quantity.
        raw = str(valuelist[0]).strip()
        number = parse_whole(raw.removeprefix("-"))
        if number is None:
            self.data = None
            raise ValueError(_l("Enter the quantity as a whole number."))
        # "-1" is a whole number out of range: NumberRange says which range.
        self.data = -number if raw.startswith("-") else number


class ProductIdField(HiddenField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            # An id beyond BIGINT would make PostgreSQL refuse the query (a 500).
            self.data = parse_whole(str(valuelist[0]))
            if self.data is None or not 1 <= self.data <= MAX_BIGINT:
                self.data = None
                raise ValueError(_l("This product is not available."))


class AddToCartForm(FlaskForm):
    product_id = ProductIdField(validators=[InputRequired()])
    quantity = QuantityField(
        default=1,
        validators=[InputRequired(QUANTITY_RANGE), NumberRange(1, MAX_QUANTITY, QUANTITY_RANGE)],
    )


class CartLineForm(FlaskForm):
    product_id = ProductIdField(validators=[InputRequired()])
    quantity = QuantityField(
        validators=[InputRequired(QUANTITY_RANGE), NumberRange(1, MAX_QUANTITY, QUANTITY_RANGE)],
    )


class RemoveLineForm(FlaskForm):
    product_id = ProductIdField(validators=[InputRequired()])


class SuspendForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[
        DataRequired(_l("Say why the shop is suspended.")), Length(max=500)])


class CommissionForm(FlaskForm):
    commission_bps = IntegerField(
        _l("Commission in basis points (100 means 1 %)"),
        validators=[InputRequired(), NumberRange(0, 10000, _l(
            "The commission is between 0 and 10000 basis points."))],
    )


class PayoutForm(FlaskForm):
    """A bank transfer paid to a merchant, as finance staff read it off the bank's advice."""

    amount = WholeNumberField(_l("Amount transferred"), min=1, max=MAX_AMOUNT,
                              validators=[InputRequired(_l("Write the amount."))])
    reference = StringField(_l("Bank transfer reference"), validators=[
        DataRequired(_l("Write the bank transfer's reference.")), Length(max=60)])


class EmptyForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class PostOfficeForm(FlaskForm):
    post_office_id = SelectField(_l("Post office for handing over parcels"), coerce=int,
                                 validators=[InputRequired()])


# -- addresses, checkout, orders, buy for me ---------------------------------------------

class AddressForm(FlaskForm):
    recipient_name = StringField(_l("Who receives it"), validators=[Optional()])
    phone = StringField(_l("Mobile number"), validators=[Optional()], filters=DIGITS)
    governorate = SelectField(_l("Governorate"), validators=[Optional()])
    district = StringField(_l("District or area"), validators=[Optional()])
    landmark = StringField(_l("Nearest landmark"), validators=[Optional()])
    postal_code = StringField(_l("Postal code (if you know it)"), validators=[Optional()],
                              filters=DIGITS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        locale = current_locale()
        self.governorate.choices = [("", _l("Choose a governorate"))] + [
            (g.code, g.name(locale)) for g in governorates()]


class CheckoutForm(FlaskForm):
    """What the checkout page sends. The amounts are never among them: the server prices
    the order itself; `digest` only says which quote the shopper saw."""

    method = HiddenField()
    address_id = HiddenField()
    office_id = HiddenField()
    recipient_name = HiddenField()
    phone = HiddenField()
    digest = HiddenField()
    key = HiddenField()
    payment = RadioField(_l("How to pay"), choices=[
        ("post_card", _l("Post card")), ("stripe", _l("Bank card"))], default="post_card",
        validators=[Optional()])
    card_id = SelectField(_l("Your post card"), validators=[Optional()], validate_choice=False)
    card_number = StringField(_l("Post card number"), validators=[Optional()], filters=DIGITS)
    pin = PasswordField(_l("PIN"), validators=[Optional()], filters=DIGITS)
    one_time_code = one_time_code_field()


class BuyForMeForm(FlaskForm):
    url = StringField(_l("Link to the product"), validators=[Optional()])
    title = StringField(_l("What is it called"), validators=[Optional()])
    price = StringField(_l("Price of one item"), validators=[Optional()])
    currency = SelectField(_l("Currency"), validators=[Optional()])
    quantity = StringField(_l("Quantity"), default="1", validators=[Optional()], filters=DIGITS)
    options = StringField(_l("Size, colour or other choices"), validators=[Optional()])
    weight_g = StringField(_l("Estimated weight of one item, in grams"),
                           validators=[Optional()])
    customs_category = SelectField(_l("What kind of goods (for customs)"),
                                   validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency.choices = [(c, c) for c in BUY_CURRENCIES]
        locale = current_locale()
        self.customs_category.choices = [("", _l("Choose one"))] + [
            (c.key, c.name(locale)) for c in customs_categories()]

    def values(self) -> dict[str, Any]:
        return {name: (getattr(self, name).data or "").strip() for name in (
            "url", "title", "price", "currency", "quantity", "options", "weight_g",
            "customs_category")}


class QuoteForm(FlaskForm):
    price = StringField(_l("Final price of one item (in the shop's currency)"),
                        validators=[Optional()])
    weight_g = StringField(_l("Weight of one item, in grams"), validators=[Optional()])
    shipping_fee = StringField(_l("International shipping, in dinars"),
                               validators=[Optional()])
    note = TextAreaField(_l("Note for the shopper"), validators=[Optional(), Length(max=500)])

    def values(self) -> dict[str, Any]:
        def blank(v: str | None) -> str | None:
            return ascii_digits(v or "") or None

        return {"price": blank(self.price.data), "weight_g": blank(self.weight_g.data),
                "shipping_fee": blank(self.shipping_fee.data), "note": self.note.data or ""}


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Why it is rejected (the shopper sees this)"),
                           validators=[Optional(), Length(max=500)])


class PurchaseForm(FlaskForm):
    foreign_order_number = StringField(_l("The foreign shop's order number"),
                                       validators=[Optional()])
    foreign_tracking_number = StringField(_l("Carrier tracking number (if any)"),
                                          validators=[Optional()], filters=DIGITS)
    ships_from = SelectField(_l("Country it ships from"), validators=[Optional()])
    hs_code = StringField(_l("HS tariff number (leave empty to use the category's)"),
                          validators=[Optional(), Length(max=12)], filters=DIGITS)

    def __init__(self, *args: Any, origin: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = Locale.parse(current_locale()).territories
        self.ships_from.choices = [("", _l("Choose a country"))] + sorted(
            ((code, name) for code, name in names.items()
             if len(code) == 2 and code.isalpha() and code != "IQ"),
            key=lambda pair: pair[1])
        if origin and not self.ships_from.data:
            self.ships_from.data = origin
