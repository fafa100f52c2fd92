"""Forms of the shop's pages (Flask-WTF, so every POST carries a CSRF token)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from shop.services.cart import MAX_QUANTITY

QUANTITY_RANGE = _l("Enter a quantity from 1 to %(max)s.", max=MAX_QUANTITY)


class QuantityField(IntegerField):
    """A whole number of items; anything else gets the shop's own message."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0]).strip()
        # Arabic-Indic digits typed on an Arabic keyboard are still numbers.
        raw = raw.translate({0x0660 + d: str(d) for d in range(10)})
        try:
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter the quantity as a whole number.")) from None


class ProductIdField(HiddenField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            try:
                self.data = int(valuelist[0])
            except ValueError:
                self.data = None
                raise ValueError(_l("This product is not available.")) from None


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


class EmptyForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class PostOfficeForm(FlaskForm):
    post_office_id = SelectField(_l("Post office for handing over parcels"), coerce=int,
                                 validators=[InputRequired()])
