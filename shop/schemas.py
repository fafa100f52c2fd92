"""The shop's marshmallow shapes: input for its services (pages, the back office and the
merchant API), and the merchant API's answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates

from app.api.platform import ID_RANGE, PageQuery
from app.numbers import MAX_PRICE, MAX_STOCK, ascii_digits

COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error=_l("Use a two-letter country code, e.g. TR."))
SLUG = validate.Regexp(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    error=_l("Use lower-case Latin letters, digits and hyphens."),
)



class DigitsString(fields.String):
    """A code of digits (an HS number) as people type it: Arabic-Indic digits are read
    as their ASCII ones and stored so."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return ascii_digits(super()._deserialize(value, attr, data, **kwargs))

class ProductSchema(Schema):
    """A product as a merchant describes it; the price is in the merchant's minor units."""

    category_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    merchant_sku = fields.String(load_default=None, validate=validate.Length(max=64))
    title_ar = fields.String(required=True, validate=validate.Length(min=1, max=300))
    title_en = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description_ar = fields.String(load_default="", validate=validate.Length(max=10000))
    description_en = fields.String(load_default="", validate=validate.Length(max=10000))
    price = fields.Integer(
        required=True, strict=True,
        validate=[
            validate.Range(min=1, error=_l("The price must be above zero.")),
            validate.Range(max=MAX_PRICE, error=_l(
                "The price can be at most %(max)s (in minor units).", max=f"{MAX_PRICE:,}")),
        ],
    )
    stock = fields.Integer(load_default=0, strict=True, validate=[
        validate.Range(min=0, error=_l("Stock cannot be negative.")),
        validate.Range(max=MAX_STOCK, error=_l("Stock can be at most %(max)s.",
                                                max=f"{MAX_STOCK:,}")),
    ])
    weight_g = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(min=1, max=100_000, error=_l("Give the weight in grams.")),
    )
    hs_code = DigitsString(
        required=True,
        validate=validate.Regexp(r"^[0-9]{6}$", error=_l("The HS code has six digits.")),
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
    post_office_id = fields.Integer(load_default=None, allow_none=True, validate=ID_RANGE)
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


# -- the merchant API (shop.api): catalog and stock, parcels ------------------------------

# The most stock levels one request may set (the schema's limit and the service's).
MAX_STOCK_ITEMS = 1000


class ProductCreateSchema(ProductSchema):
    """A new product; the price is in the merchant's currency, in minor units."""


class ProductUpdateSchema(ProductSchema):
    """The fields to change; any subset."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(partial=True, **kw)


class ProductOutSchema(Schema):
    """A product of your catalog."""

    id = fields.Integer(required=True)
    merchant_sku = fields.String(allow_none=True, required=True)
    category_id = fields.Integer(required=True)
    title_ar = fields.String(required=True)
    title_en = fields.String(required=True)
    description_ar = fields.String(required=True)
    description_en = fields.String(required=True)
    price = fields.Integer(required=True, metadata={"description": "minor units"})
    currency = fields.String(required=True)
    stock = fields.Integer(required=True)
    weight_g = fields.Integer(required=True)
    hs_code = fields.String(required=True)
    origin_country = fields.String(required=True)
    active = fields.Boolean(required=True)
    image_url = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ImageUploadSchema(Schema):
    """A product picture, sent as multipart/form-data. Its kind is read from its content
    (JPEG, PNG or WebP), whatever the file is called; metadata such as EXIF (camera, GPS
    position) is removed; a thumbnail, listing and zoom size are made, each as WebP and
    JPEG."""

    file = fields.Raw(required=True, metadata={
        "openapi": {"type": "string", "format": "binary", "contentMediaType": "image/*"},
    })
    alt_ar = fields.String(load_default="", validate=validate.Length(max=300),
                           metadata={"description": "what the picture shows, in Arabic "
                                                    "(empty: the product's title)"})
    alt_en = fields.String(load_default="", validate=validate.Length(max=300),
                           metadata={"description": "the same in English"})


class ImageVariantSchema(Schema):
    """One stored size of a picture, in both formats."""

    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    webp = fields.String(required=True)
    jpeg = fields.String(required=True)


class ProductImageSchema(Schema):
    """A picture of one of your products; the first (position 0) is shown in listings."""

    id = fields.Integer(required=True)
    position = fields.Integer(required=True)
    alt_ar = fields.String(required=True)
    alt_en = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    variants = fields.Dict(keys=fields.String(), values=fields.Nested(ImageVariantSchema),
                           required=True,
                           metadata={"description": "thumb, listing and zoom"})


class ProductImageListSchema(Schema):
    data = fields.List(fields.Nested(ProductImageSchema), required=True)


class ProductQuerySchema(PageQuery):
    active = fields.Boolean(load_default=None, allow_none=True)
    merchant_sku = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=64))


class StockItemSchema(Schema):
    product_id = fields.Integer(strict=True, load_default=None, allow_none=True,
                                validate=ID_RANGE)
    merchant_sku = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=64))
    stock = fields.Integer(required=True, strict=True, validate=[
        validate.Range(min=0, error=_l("Stock cannot be negative.")),
        validate.Range(max=MAX_STOCK, error=_l("Stock can be at most %(max)s.",
                                                max=f"{MAX_STOCK:,}")),
    ])


class StockUpdateSchema(Schema):
    """New stock levels, applied all together or not at all."""

    items = fields.List(fields.Nested(StockItemSchema), required=True,
                        validate=validate.Length(min=1, max=MAX_STOCK_ITEMS))


class StockLevelSchema(Schema):
    id = fields.Integer(required=True)
    merchant_sku = fields.String(allow_none=True, required=True)
    stock = fields.Integer(required=True)


class StockResultSchema(Schema):
    data = fields.List(fields.Nested(StockLevelSchema), required=True)


class ParcelEventSchema(Schema):
    code = fields.String(required=True, metadata={"description": "UPU event code"})
    status = fields.String(required=True)
    description = fields.String(required=True)
    office_city = fields.String(required=True)
    time = fields.String(required=True, metadata={"description": "UTC, ISO 8601"})
    local_time = fields.String(required=True, metadata={"description": "Baghdad time"})


class CustomsSchema(Schema):
    state = fields.String(required=True)
    duty_due_iqd = fields.Integer(allow_none=True, required=True)
    paid = fields.Boolean(required=True)


class ParcelSchema(Schema):
    """One of your parcels and its events, newest first."""

    tracking_number = fields.String(required=True)
    status = fields.String(required=True)
    status_text = fields.String(required=True)
    closed = fields.Boolean(required=True)
    international = fields.Boolean(required=True)
    events = fields.List(fields.Nested(ParcelEventSchema), required=True)
    customs = fields.Nested(CustomsSchema)
    label_url = fields.String(required=True)


# -- the merchant API: orders and consignments -------------------------------------------

class OrderLineSchema(Schema):
    product_id = fields.Integer(allow_none=True, required=True)
    merchant_sku = fields.String(allow_none=True, required=True)
    title_ar = fields.String(required=True)
    title_en = fields.String(required=True)
    options = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Integer(required=True, metadata={"description": "minor units"})
    currency = fields.String(required=True)
    line_total_iqd = fields.Integer(required=True)


class DeliverySchema(Schema):
    method = fields.String(required=True, metadata={"description": "door or pickup"})
    recipient_name = fields.String(required=True)
    phone = fields.String(required=True)
    governorate = fields.String(required=True)
    district = fields.String(required=True)
    landmark = fields.String(required=True)
    postal_code = fields.String(allow_none=True, required=True)
    pickup_office_id = fields.Integer(allow_none=True, required=True)


class ConsignmentSchema(Schema):
    """Your part of an order: what to pack, where it goes, and its parcel."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    order_number = fields.String(required=True)
    status = fields.String(required=True)
    placed_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True, required=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True, required=True)
    ready_at = fields.AwareDateTime(allow_none=True, required=True)
    shipped_at = fields.AwareDateTime(allow_none=True, required=True)
    delivered_at = fields.AwareDateTime(allow_none=True, required=True)
    items_total = fields.Integer(required=True)
    delivery_fee = fields.Integer(required=True)
    total = fields.Integer(required=True)
    currency = fields.String(required=True)
    weight_g = fields.Integer(required=True)
    tracking_number = fields.String(allow_none=True, required=True)
    label_url = fields.String(allow_none=True, required=True)
    delivery = fields.Nested(DeliverySchema, required=True)
    lines = fields.List(fields.Nested(OrderLineSchema), required=True)


class OrderSchema(Schema):
    """An order with items of yours (only your consignments are shown)."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True)
    placed_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True, required=True)
    consignments = fields.List(fields.Nested(ConsignmentSchema), required=True)


class ConsignmentQuerySchema(PageQuery):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ["awaiting_payment", "open", "ready", "shipped", "delivered", "cancelled",
         "expired"]))
    order_id = fields.Integer(load_default=None, allow_none=True, validate=ID_RANGE)
    since = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "placed at or after this time"})


class OrderQuerySchema(PageQuery):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ["pending_payment", "paid", "processing", "shipped", "delivered", "cancelled",
         "expired", "refunded", "partially_refunded"]))
    since = fields.AwareDateTime(load_default=None, allow_none=True)


class HandoverSchema(Schema):
    """The packed parcel's weight and size (the consignment's weight if left out)."""

    weight_g = fields.Integer(strict=True, validate=validate.Range(min=1, max=30_000))
    length_cm = fields.Integer(strict=True, validate=validate.Range(min=0, max=300))
    width_cm = fields.Integer(strict=True, validate=validate.Range(min=0, max=300))
    height_cm = fields.Integer(strict=True, validate=validate.Range(min=0, max=300))


class CancelSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=250))
