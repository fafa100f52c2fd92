"""The merchant REST API (/api/v1): catalog and stock, parcels, orders and consignments.

Every operation is declared with app.api.platform, which authenticates the key, checks
its scope, limits the rate, parses JSON strictly, honours Idempotency-Key and documents
the operation in /api/v1/openapi.json. Views parse nothing themselves and call one
service each; a merchant only ever sees its own objects.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_babel import force_locale
from marshmallow import Schema, fields, validate

from app.api.models import Scope
from app.api.platform import ApiBlueprint, Call, PageQuery, page_schema, paginate
from app.i18n import current_locale
from shop.models import Product
from shop.schemas import ProductSchema
from shop.services import catalog
from shop.services import merchant_api as svc

catalog_api = ApiBlueprint("shop_catalog_api", __name__, tag="Catalog")
parcels_api = ApiBlueprint("shop_parcels_api", __name__, tag="Parcels")


# -- schemas -----------------------------------------------------------------------------

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


class ProductQuerySchema(PageQuery):
    active = fields.Boolean(load_default=None, allow_none=True)
    merchant_sku = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=64))


class StockItemSchema(Schema):
    product_id = fields.Integer(strict=True, load_default=None, allow_none=True)
    merchant_sku = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=64))
    stock = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=1_000_000, error="Stock cannot be negative."))


class StockUpdateSchema(Schema):
    """New stock levels, applied all together or not at all."""

    items = fields.List(fields.Nested(StockItemSchema), required=True,
                        validate=validate.Length(min=1, max=svc.MAX_STOCK_ITEMS))


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


# -- catalog -----------------------------------------------------------------------------

C = Scope.CATALOG.value


@catalog_api.operation("GET", "/products", scope=C, summary="List your products",
                       query=ProductQuerySchema,
                       response=page_schema(ProductOutSchema, "ProductPage"))
def list_products(call: Call) -> dict[str, Any]:
    """Your products in every state, newest first, a page at a time (cursor)."""
    stmt = svc.products_query(call.owner_id, active=call.query.get("active"),
                              merchant_sku=call.query.get("merchant_sku"))
    return paginate(stmt, Product.id, call.query)


@catalog_api.operation("POST", "/products", scope=C, summary="Add a product",
                       body=ProductCreateSchema, response=ProductOutSchema, status=201,
                       errors=(409,))
def create_product(call: Call) -> Product:
    """Add a product to your catalog. merchant_sku, if given, must be unique to you."""
    return svc.create_product(call.owner_id, call.body)


@catalog_api.operation("GET", "/products/<int:product_id>", scope=C, summary="Get a product",
                       response=ProductOutSchema)
def get_product(call: Call, product_id: int) -> Product:
    """One of your products."""
    return svc.owned_product(call.owner_id, product_id)


@catalog_api.operation("PATCH", "/products/<int:product_id>", scope=C,
                       summary="Change a product", body=ProductUpdateSchema,
                       response=ProductOutSchema)
def update_product(call: Call, product_id: int) -> Product:
    """Change any of the product's fields."""
    return catalog.update_product(call.owner_id, product_id, call.body)


@catalog_api.operation("POST", "/products/stock", scope=C, summary="Set stock levels",
                       body=StockUpdateSchema, response=StockResultSchema)
def update_stock(call: Call) -> dict[str, Any]:
    """Set the stock of up to 1,000 products in one request, all or nothing. Name each
    product by product_id or merchant_sku."""
    return {"data": svc.set_stock_levels(call.owner_id, call.body["items"])}


# -- parcels -----------------------------------------------------------------------------

P = Scope.PARCELS.value


@parcels_api.operation("GET", "/parcels/<number>", scope=P, summary="Get a parcel",
                       response=ParcelSchema)
def get_parcel(call: Call, number: str) -> dict[str, Any]:
    """A parcel made for one of your consignments, with its tracking events."""
    from tracking.services.lookup import public_view

    parcel = svc.owned_parcel(call.owner_id, number)
    record = public_view(parcel, current_locale())
    record["label_url"] = url_for("shop_parcels_api.parcel_label",
                                  number=parcel.tracking_number, _external=True)
    return record


@parcels_api.operation("GET", "/parcels/<number>/label.pdf", scope=P,
                       summary="The parcel's label (PDF)", produces="application/pdf")
def parcel_label(call: Call, number: str) -> Response:
    """The 4×6 inch label to stick on the parcel, with its S10 barcode and QR code."""
    from tracking.labels import render_label

    parcel = svc.owned_parcel(call.owner_id, number)
    with force_locale("ar"):
        pdf = render_label(parcel)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{parcel.tracking_number}.pdf"'})


# -- orders and consignments ------------------------------------------------------------

orders_api = ApiBlueprint("shop_orders_api", __name__, tag="Orders")
ORD = Scope.ORDERS.value


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
    order_id = fields.Integer(load_default=None, allow_none=True)
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


def _view(c: Any) -> dict[str, Any]:
    label = (url_for("shop_parcels_api.parcel_label", number=c.tracking_number,
                     _external=True) if c.tracking_number else None)
    return svc.consignment_view(c, label)


def _order_view(order: Any, merchant_id: int) -> dict[str, Any]:
    return {"id": order.id, "number": order.number, "status": order.status,
            "placed_at": order.placed_at, "paid_at": order.paid_at,
            "consignments": [_view(c) for c in order.consignments
                             if c.merchant_id == merchant_id]}


@orders_api.operation("GET", "/orders", scope=ORD, summary="List orders with your items",
                      query=OrderQuerySchema, response=page_schema(OrderSchema, "OrderPage"))
def list_orders(call: Call) -> dict[str, Any]:
    """Orders holding your consignments, newest first; filter by status or time."""
    from shop.models import Order

    page = paginate(svc.orders_query(call.owner_id, status=call.query.get("status"),
                                     since=call.query.get("since")), Order.id, call.query)
    page["data"] = [_order_view(o, call.owner_id) for o in page["data"]]
    return page


@orders_api.operation("GET", "/orders/<int:order_id>", scope=ORD, summary="Get an order",
                      response=OrderSchema)
def get_order(call: Call, order_id: int) -> dict[str, Any]:
    """One order with your consignments in it."""
    return _order_view(svc.owned_order(call.owner_id, order_id), call.owner_id)


@orders_api.operation("GET", "/consignments", scope=ORD, summary="List your consignments",
                      query=ConsignmentQuerySchema,
                      response=page_schema(ConsignmentSchema, "ConsignmentPage"))
def list_consignments(call: Call) -> dict[str, Any]:
    """Your consignments, newest first. status=open lists what is paid and waits for you."""
    from shop.models import Consignment

    q = call.query
    page = paginate(svc.consignments_query(call.owner_id, status=q.get("status"),
                                           order_id=q.get("order_id"), since=q.get("since")),
                    Consignment.id, q)
    page["data"] = [_view(c) for c in page["data"]]
    return page


@orders_api.operation("GET", "/consignments/<int:consignment_id>", scope=ORD,
                      summary="Get a consignment", response=ConsignmentSchema)
def get_consignment(call: Call, consignment_id: int) -> dict[str, Any]:
    """One of your consignments."""
    return _view(svc.owned_consignment(call.owner_id, consignment_id))


@orders_api.operation("POST", "/consignments/<int:consignment_id>/acknowledge", scope=ORD,
                      summary="Acknowledge a consignment", response=ConsignmentSchema)
def acknowledge(call: Call, consignment_id: int) -> dict[str, Any]:
    """Say you have seen a paid consignment and are preparing it."""
    return _view(svc.acknowledge(call.owner_id, consignment_id))


@orders_api.operation("POST", "/consignments/<int:consignment_id>/ready", scope=ORD,
                      summary="Ready for handover: make the parcel", body=HandoverSchema,
                      response=ConsignmentSchema)
def ready(call: Call, consignment_id: int) -> dict[str, Any]:
    """Create the parcel for a paid consignment. The answer holds its S10
    tracking_number and label_url (a PDF to print and stick on the parcel); bring it to
    your post office. Asking again returns the same parcel."""
    return _view(svc.ready_for_handover(call.owner_id, consignment_id, call.body))


@orders_api.operation("POST", "/consignments/<int:consignment_id>/cancel", scope=ORD,
                      summary="Cancel and refund a consignment", body=CancelSchema,
                      response=ConsignmentSchema)
def cancel(call: Call, consignment_id: int) -> dict[str, Any]:
    """You cannot deliver it: the consignment is cancelled before handover, its stock
    comes back and the shopper is refunded your share (refund.succeeded follows)."""
    return _view(svc.cancel_consignment(call.owner_id, consignment_id,
                                        call.body["reason"]))


BLUEPRINTS = (catalog_api, parcels_api, orders_api)


def init_app(app: Any) -> None:
    """The merchant integration: API blueprints, the portal, webhook events, and the
    shop's answers to the API platform's owner hooks (merchant active? whom to tell?)."""
    from app.api.owners import register_owner_check, register_owner_contact
    from app.extensions import csrf
    from shop import portal, webhook_events  # noqa: F401  (registers the subscriber)

    register_owner_check(svc.merchant_is_active)
    register_owner_contact(svc.merchant_contact)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
        csrf.exempt(bp)
    portal.init_app(app)
