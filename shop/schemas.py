"""Input shapes for the shop's services (pages, the back office and the merchant API)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates

COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error=_l("Use a two-letter country code, e.g. TR."))
SLUG = validate.Regexp(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    error=_l("Use lower-case Latin letters, digits and hyphens."),
)


class ProductSchema(Schema):
    """A product as a merchant describes it; the price is in the merchant's minor units."""

    category_id = fields.Integer(required=True)
    merchant_sku = fields.String(load_default=None, validate=validate.Length(max=64))
    title_ar = fields.String(required=True, validate=validate.Length(min=1, max=300))
    title_en = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description_ar = fields.String(load_default="", validate=validate.Length(max=10000))
    description_en = fields.String(load_default="", validate=validate.Length(max=10000))
    price = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(min=1, error=_l("The price must be above zero.")),
    )
    stock = fields.Integer(
        load_default=0, strict=True,
        validate=validate.Range(min=0, error=_l("Stock cannot be negative.")),
    )
    weight_g = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(min=1, max=100_000, error=_l("Give the weight in grams.")),
    )
    hs_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{6}$", error=_l("The HS code has six digits.")),
    )
    origin_country = fields.String(required=True, validate=COUNTRY)
    active = fields.Boolean(load_default=True)
    image_url = fields.String(load_default="", validate=validate.Length(max=500))

    @validates("image_url")
    def _image_url(self, value: str, **_: object) -> None:
        if value and not value.startswith(("https://", "http://", "/")):
            raise ValidationError(_l("The image address must start with https://."))


class MerchantSchema(Schema):
    slug = fields.String(required=True, validate=[validate.Length(min=2, max=80), SLUG])
    name_ar = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = fields.String(load_default="IQ", validate=COUNTRY)
    currency = fields.String(load_default="IQD", validate=validate.OneOf(
        ["IQD", "USD", "EUR", "TRY", "AED", "CNY"]))
    governorate = fields.String(load_default=None, allow_none=True,
                                validate=validate.Regexp(r"^IQ-[A-Z]{2}$"))
    post_office_id = fields.Integer(load_default=None, allow_none=True)
    commission_bps = fields.Integer(load_default=0, strict=True, validate=validate.Range(
        min=0, max=10000, error=_l("The commission is between 0 and 10000 basis points.")))
