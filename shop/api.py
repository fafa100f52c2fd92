"""The merchant REST API (/api/v1): catalog and stock, parcels, orders and consignments.

Every operation is declared with app.api.platform, which authenticates the key, checks
its scope, limits the rate, parses JSON strictly, honours Idempotency-Key and documents
the operation in /api/v1/openapi.json. Views parse nothing themselves and call one
service each; a merchant only ever sees its own objects.

An operation that changes something is one unit of work (`@transactional`, under the
operation's declaration): it commits before the platform keeps the answer for
Idempotency-Key replays (in its own connection), and a DomainError rolls it back before
the platform turns it into the JSON error (and keeps that answer). Reading operations
open none: they write nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from app.api.models import Scope
from app.api.owners import register_owner_check, register_owner_contact
from app.api.platform import ApiBlueprint, Call, page_schema, paginate
from app.database import transactional
from app.extensions import csrf
from app.i18n import current_locale

# The portal's pages add their routes to its blueprint when imported.
from shop import (  # noqa: F401
    images,
    pictures_portal,
    portal,
    portal_catalog,
    portal_money,
    portal_orders,
    webhook_events,
)
from shop.models import Consignment, Order, Product
from shop.schemas import (
    CancelSchema,
    ConsignmentQuerySchema,
    ConsignmentSchema,
    HandoverSchema,
    ImageUploadSchema,
    OrderQuerySchema,
    OrderSchema,
    ParcelSchema,
    ProductCreateSchema,
    ProductImageListSchema,
    ProductImageSchema,
    ProductOutSchema,
    ProductQuerySchema,
    ProductUpdateSchema,
    StockResultSchema,
    StockUpdateSchema,
)
from shop.services import catalog
from shop.services import merchant_api as svc
from tracking.labels import label_for
from tracking.services.lookup import public_view

catalog_api = ApiBlueprint("shop_catalog_api", __name__, tag="Catalog")
parcels_api = ApiBlueprint("shop_parcels_api", __name__, tag="Parcels")


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
@transactional
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
@transactional
def update_product(call: Call, product_id: int) -> Product:
    """Change any of the product's fields."""
    return catalog.update_product(call.owner_id, product_id, call.body)


@catalog_api.operation("POST", "/products/stock", scope=C, summary="Set stock levels",
                       body=StockUpdateSchema, response=StockResultSchema)
@transactional
def update_stock(call: Call) -> dict[str, Any]:
    """Set the stock of up to 1,000 products in one request, all or nothing. Name each
    product by product_id or merchant_sku."""
    return {"data": svc.set_stock_levels(call.owner_id, call.body["items"])}


@catalog_api.operation("GET", "/products/<int:product_id>/images", scope=C,
                       summary="List a product's pictures", response=ProductImageListSchema)
def list_images(call: Call, product_id: int) -> dict[str, Any]:
    """The product's pictures, first (the one listings show) first."""
    return {"data": [images.image_view(i)
                     for i in images.list_images(call.owner_id, product_id)]}


@catalog_api.operation("POST", "/products/<int:product_id>/images", scope=C,
                       summary="Upload a picture", body=ImageUploadSchema,
                       response=ProductImageSchema, status=201,
                       consumes="multipart/form-data",
                       max_body_setting="SHOP_IMAGE_MAX_BODY_BYTES")
@transactional
def add_image(call: Call, product_id: int) -> dict[str, Any]:
    """Add a picture after the product's others (multipart/form-data, field `file`).
    422 with error `not_an_image`, `too_large`, `too_many_pixels`, `broken` or
    `too_many_images` says why one is refused; nothing is stored then."""
    upload = call.body["file"]
    if not hasattr(upload, "stream"):
        raise images.ImageRefused(_l("Send the picture as a file in the field `file`."),
                                  code="not_an_image", fields={"file": ["Not a file."]})
    limit = int(current_app.config["SHOP_IMAGE_MAX_BYTES"])
    image = images.add_image(call.owner_id, product_id, upload.stream.read(limit + 1),
                             alt_ar=call.body["alt_ar"], alt_en=call.body["alt_en"])
    return images.image_view(image)


@catalog_api.operation("DELETE", "/products/<int:product_id>/images/<int:image_id>", scope=C,
                       summary="Delete a picture", status=204)
@transactional
def delete_image(call: Call, product_id: int, image_id: int) -> tuple[None, int]:
    """Delete one of the product's pictures; the others move up."""
    images.delete_image(call.owner_id, product_id, image_id)
    return None, 204


# -- parcels -----------------------------------------------------------------------------

P = Scope.PARCELS.value


@parcels_api.operation("GET", "/parcels/<number>", scope=P, summary="Get a parcel",
                       response=ParcelSchema)
def get_parcel(call: Call, number: str) -> dict[str, Any]:
    """A parcel made for one of your consignments, with its tracking events."""
    parcel = svc.owned_parcel(call.owner_id, number)
    record = public_view(parcel, current_locale())
    record["label_url"] = url_for("shop_parcels_api.parcel_label",
                                  number=parcel.tracking_number, _external=True)
    return record


@parcels_api.operation("GET", "/parcels/<number>/label.pdf", scope=P,
                       summary="The parcel's label (PDF)", produces="application/pdf")
def parcel_label(call: Call, number: str) -> Response:
    """The 4×6 inch label to stick on the parcel, with its S10 barcode and QR code."""
    parcel = svc.owned_parcel(call.owner_id, number)
    with force_locale("ar"):
        pdf = label_for(parcel)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{parcel.tracking_number}.pdf"'})


# -- orders and consignments ------------------------------------------------------------

orders_api = ApiBlueprint("shop_orders_api", __name__, tag="Orders")
ORD = Scope.ORDERS.value


def _view(c: Consignment) -> dict[str, Any]:
    label = (url_for("shop_parcels_api.parcel_label", number=c.tracking_number,
                     _external=True) if c.tracking_number else None)
    return svc.consignment_view(c, label)


def _order_view(order: Order, merchant_id: int) -> dict[str, Any]:
    return {"id": order.id, "number": order.number, "status": order.status,
            "placed_at": order.placed_at, "paid_at": order.paid_at,
            "consignments": [_view(c) for c in order.consignments
                             if c.merchant_id == merchant_id]}


@orders_api.operation("GET", "/orders", scope=ORD, summary="List orders with your items",
                      query=OrderQuerySchema, response=page_schema(OrderSchema, "OrderPage"))
def list_orders(call: Call) -> dict[str, Any]:
    """Orders holding your consignments, newest first; filter by status or time."""
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
@transactional
def acknowledge(call: Call, consignment_id: int) -> dict[str, Any]:
    """Say you have seen a paid consignment and are preparing it."""
    return _view(svc.acknowledge(call.owner_id, consignment_id))


@orders_api.operation("POST", "/consignments/<int:consignment_id>/ready", scope=ORD,
                      summary="Ready for handover: make the parcel", body=HandoverSchema,
                      response=ConsignmentSchema)
@transactional
def ready(call: Call, consignment_id: int) -> dict[str, Any]:
    """Create the parcel for a paid consignment. The answer holds its S10
    tracking_number and label_url (a PDF to print and stick on the parcel); bring it to
    your post office. Asking again returns the same parcel."""
    return _view(svc.ready_for_handover(call.owner_id, consignment_id, call.body))


@orders_api.operation("POST", "/consignments/<int:consignment_id>/cancel", scope=ORD,
                      summary="Cancel and refund a consignment", body=CancelSchema,
                      response=ConsignmentSchema)
@transactional
def cancel(call: Call, consignment_id: int) -> dict[str, Any]:
    """You cannot deliver it: the consignment is cancelled before handover, its stock
    comes back and the shopper is refunded your share (refund.succeeded follows)."""
    return _view(svc.cancel_consignment(call.owner_id, consignment_id,
                                        call.body["reason"]))


BLUEPRINTS = (catalog_api, parcels_api, orders_api)


def init_app(app: Flask) -> None:
    """The merchant integration: API blueprints, the portal, webhook events, and the
    shop's answers to the API platform's owner hooks (merchant active? whom to tell?)."""
    register_owner_check(svc.merchant_is_active)
    register_owner_contact(svc.merchant_contact)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
        csrf.exempt(bp)
    portal.init_app(app)
    pictures_portal.init_app(app)
    webhook_events.init_app(app)
