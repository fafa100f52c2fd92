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


BUY_CURRENCIES = ("USD", "EUR", "GBP", "TRY", "AED", "CNY", "SAR")


class BuyRequestSchema(Schema):
    """A shopper's "buy for me" request: the foreign shop's link and what to buy there.

    `price` is the unit price in the shop's currency as people write it ("49.99").
    """

    url = fields.String(required=True, validate=validate.Length(max=1000))
    title = fields.String(required=True, validate=validate.Length(
        min=2, max=300, error=_l("Write what the product is called.")))
    price = fields.Decimal(required=True, places=None, as_string=False,
                           validate=validate.Range(min=0, min_inclusive=False,
                                                   max=1_000_000,
                                                   error=_l("Write the price, above zero.")),
                           error_messages={"invalid": _l("Write the price as a number, "
                                                         "such as 49.99.")})
    currency = fields.String(required=True, validate=validate.OneOf(
        BUY_CURRENCIES, error=_l("Choose the shop's currency.")))
    quantity = fields.Integer(required=True, strict=False, validate=validate.Range(
        min=1, max=10, error=_l("Choose a quantity from 1 to 10.")))
    options = fields.String(load_default="", validate=validate.Length(max=200))
    weight_g = fields.Integer(required=True, strict=False, validate=validate.Range(
        min=1, max=30_000, error=_l("Give the weight of one item in grams (at most 30 kg).")))
    customs_category = fields.String(required=True)

    @validates("url")
    def _web_address(self, value: str, **_: object) -> None:
        from urllib.parse import urlsplit

        bad = _l("Paste the product's web address, starting with https://.")
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            raise ValidationError(bad) from None
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or "." not in host or " " in value.strip():
            raise ValidationError(bad)


class QuoteSchema(Schema):
    """Procurement's final quote: any of price, weight and shipping may be adjusted."""

    price = fields.Decimal(load_default=None, allow_none=True, places=None,
                           validate=validate.Range(min=0, min_inclusive=False,
                                                   max=1_000_000))
    weight_g = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=30_000))
    shipping_fee = fields.Integer(load_default=None, allow_none=True,
                                  validate=validate.Range(min=0, max=10_000_000))
    note = fields.String(load_default="", validate=validate.Length(max=500))
