"""What the merchant API and portal ask of the shop: the caller's merchant, its catalog
and stock, and only its own parcels, orders and consignments.

Another merchant's object is answered exactly like one that does not exist (NotFound),
so ids cannot be probed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError

from app.auth.models import User
from app.database import db, savepoint
from app.errors import Conflict, NotFound, ValidationFailed
from shop.models import (
    Consignment,
    ConsignmentStatus,
    Merchant,
    MerchantStatus,
    Order,
    OrderLine,
    Product,
)
from shop.schemas import MAX_STOCK_ITEMS
from shop.services import catalog, orders
from tracking import s10
from tracking.models import Parcel, Service
from tracking.services import parcels
from tracking.services.parcels import Address, ParcelDraft

PARCEL_NOT_FOUND = _l("There is no such parcel among yours.")


# -- owners (app.api.owners hooks) ----------------------------------------------------------

def merchant_is_active(merchant_id: int) -> bool:
    """Whether the merchant may use its API keys now (active, not pending or suspended)."""
    status = db.scalar(select(Merchant.status).where(Merchant.id == merchant_id))
    return status == MerchantStatus.ACTIVE


def merchant_contact(merchant_id: int) -> tuple[str | None, str | None]:
    """E-mail and phone of the merchant's owner, for notices about its integration."""
    row = db.execute(select(User.email, User.phone).join(Merchant, Merchant.owner_id == User.id)
                     .where(Merchant.id == merchant_id)).first()
    return (row.email, row.phone) if row else (None, None)


def merchant_of_user(user_id: int) -> Merchant | None:
    """The merchant a portal user runs (the first one, if they run several)."""
    return db.scalar(select(Merchant).where(Merchant.owner_id == user_id)
                     .order_by(Merchant.id).limit(1))


# -- catalog -----------------------------------------------------------------------------

def products_query(merchant_id: int, *, active: bool | None = None,
                   merchant_sku: str | None = None) -> Select[Product]:
    """The merchant's products (every state), optionally filtered."""
    stmt = select(Product).where(Product.merchant_id == merchant_id)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    if merchant_sku:
        stmt = stmt.where(Product.merchant_sku == merchant_sku)
    return stmt


def owned_product(merchant_id: int, product_id: int) -> Product:
    """One of the merchant's products; NotFound for another merchant's or none."""
    product = db.get(Product, product_id)
    if product is None or product.merchant_id != merchant_id:
        raise NotFound(_l("This product is not available."))
    return product


def create_product(merchant_id: int, data: dict[str, Any]) -> Product:
    """Add a product through the API (shop.services.catalog.create_product), refusing a
    merchant_sku the merchant already uses. Flushes the new product.

    Raises Conflict for a repeated merchant_sku, and what create_product raises.
    """
    sku = data.get("merchant_sku")
    taken = _l("You already have a product with this merchant_sku.")
    if sku and db.scalar(products_query(merchant_id, merchant_sku=sku).limit(1)):
        raise Conflict(taken, fields={"merchant_sku": ["taken"]})
    try:
        # The insert takes a savepoint: the unique (merchant_id, merchant_sku) index may
        # refuse it, and only the insert is undone while the caller's transaction goes on.
        with savepoint():
            return catalog.create_product(merchant_id, data)
    except IntegrityError as exc:  # the same sku created a moment ago by another request
        raise Conflict(taken, fields={"merchant_sku": ["taken"]}) from exc


def set_stock_levels(merchant_id: int, items: list[dict[str, Any]]) -> list[Product]:
    """Set the stock of several of the merchant's products at once, all or nothing.

    Each item names a product by `product_id` or `merchant_sku` and gives its new
    `stock` (zero or more). The rows are locked in id order (the platform's lock order
    for stock). Flushes the new levels. Raises ValidationFailed for an empty or too long
    list, an item naming no product or both ways, or a repeated product; NotFound when
    any product is not the merchant's (the caller's unit of work then rolls back every
    item, so nothing is changed).
    """
    if not items or len(items) > MAX_STOCK_ITEMS:
        raise ValidationFailed(_l("Send between 1 and %(n)s items.", n=MAX_STOCK_ITEMS),
                               fields={"items": ["length"]})
    ids = [i["product_id"] for i in items if i.get("product_id") is not None]
    skus = [i["merchant_sku"] for i in items if i.get("merchant_sku") is not None]
    for n, item in enumerate(items):
        if (item.get("product_id") is None) == (item.get("merchant_sku") is None):
            raise ValidationFailed(_l("Name each product by product_id or merchant_sku."),
                                   fields={f"items.{n}": ["product_id_or_merchant_sku"]})
    conditions = []
    if ids:
        conditions.append(Product.id.in_(ids))
    if skus:
        conditions.append(Product.merchant_sku.in_(skus))
    rows = list(db.scalars(
        select(Product).where(Product.merchant_id == merchant_id, or_(*conditions))
        .order_by(Product.id).with_for_update(of=Product)).unique())
    by_id = {p.id: p for p in rows}
    by_sku = {p.merchant_sku: p for p in rows if p.merchant_sku}
    seen: set[int] = set()
    levels: dict[int, int] = {}
    changed: list[Product] = []
    for n, item in enumerate(items):
        product = (by_id.get(item["product_id"]) if item.get("product_id") is not None
                   else by_sku.get(item["merchant_sku"]))
        if product is None:
            raise NotFound(_l("This product is not available."),
                           fields={f"items.{n}": ["not_found"]})
        if product.id in seen:
            raise ValidationFailed(_l("A product appears twice."),
                                   fields={f"items.{n}": ["duplicate"]})
        seen.add(product.id)
        levels[product.id] = int(item["stock"])
        changed.append(product)
    # Written in SQL whatever the session had loaded (an old number equal to the new one
    # must not skip the write).
    catalog.set_stock(levels)
    return changed


# -- parcels, via the consignment link --------------------------------------------------

def merchant_ids_of_order_ref(order_ref: str | None) -> list[int]:
    """Merchants behind a parcel's `order_ref` ("consignment:7" or "order:42")."""
    kind, _, raw = (order_ref or "").partition(":")
    if not raw.isdigit():
        return []
    if kind == "consignment":
        stmt = select(Consignment.merchant_id).where(Consignment.id == int(raw))
    elif kind == "order":
        stmt = select(Consignment.merchant_id).where(Consignment.order_id == int(raw))
    else:
        return []
    return sorted({m for m in db.scalars(stmt) if m is not None})


def owned_parcel(merchant_id: int, number: str) -> Parcel:
    """A parcel made for one of the merchant's consignments; NotFound otherwise (also
    for a number that is not a valid S10 or belongs to someone else)."""
    validity = s10.validate(number)
    if not validity:
        raise NotFound(PARCEL_NOT_FOUND)
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == validity.number))
    if parcel is None:
        raise NotFound(PARCEL_NOT_FOUND)
    if merchant_id not in merchant_ids_of_order_ref(parcel.order_ref):
        linked = db.scalar(select(Consignment.id).where(
            Consignment.parcel_id == parcel.id, Consignment.merchant_id == merchant_id))
        if not linked:
            raise NotFound(PARCEL_NOT_FOUND)
    return parcel


# -- orders and consignments --------------------------------------------------------------

CONSIGNMENT_NOT_FOUND = _l("There is no such consignment among yours.")
ORDER_NOT_FOUND = _l("There is no such order among yours.")


def consignments_query(merchant_id: int, *, status: str | None = None,
                       order_id: int | None = None, since: datetime | None = None
                       ) -> Select[Consignment]:
    """The merchant's consignments (never another merchant's), optionally filtered by
    status, order, or placed at or after `since`."""
    stmt = select(Consignment).join(Order, Order.id == Consignment.order_id).where(
        Consignment.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(Consignment.status == status)
    if order_id is not None:
        stmt = stmt.where(Consignment.order_id == order_id)
    if since is not None:
        stmt = stmt.where(Order.placed_at >= since)
    return stmt


def owned_consignment(merchant_id: int, consignment_id: int) -> Consignment:
    """One of the merchant's consignments; NotFound for anyone else's."""
    c = db.get(Consignment, consignment_id)
    if c is None or c.merchant_id != merchant_id:
        raise NotFound(CONSIGNMENT_NOT_FOUND)
    return c


def orders_query(merchant_id: int, *, status: str | None = None,
                 since: datetime | None = None) -> Select[Order]:
    """Orders holding at least one consignment of the merchant."""
    mine = select(Consignment.order_id).where(Consignment.merchant_id == merchant_id)
    stmt = select(Order).where(Order.id.in_(mine))
    if status:
        stmt = stmt.where(Order.status == status)
    if since is not None:
        stmt = stmt.where(Order.placed_at >= since)
    return stmt


def owned_order(merchant_id: int, order_id: int) -> Order:
    """An order holding one of the merchant's consignments; NotFound otherwise."""
    order = db.scalar(orders_query(merchant_id).where(Order.id == order_id))
    if order is None:
        raise NotFound(ORDER_NOT_FOUND)
    return order


def acknowledge(merchant_id: int, consignment_id: int) -> Consignment:
    """The merchant has seen a paid consignment (the order moves to processing).
    Flushes; the caller's unit of work commits. Raises NotFound, and OrderStateError
    (409) before payment or when closed.
    """
    owned_consignment(merchant_id, consignment_id)
    return orders.acknowledge_consignment(consignment_id, actor_id=None)


def cancel_consignment(merchant_id: int, consignment_id: int, reason: str) -> Consignment:
    """The merchant cannot fulfil a consignment: it is cancelled, its stock comes back
    and, if paid, the shopper is refunded its share (refund.succeeded follows). Flushes;
    the caller's unit of work commits. Raises NotFound, and NotCancellable (409) once it
    is handed over.
    """
    owned_consignment(merchant_id, consignment_id)
    orders.cancel_consignment(consignment_id, actor_id=None,
                              reason=f"merchant: {reason}"[:300])
    return owned_consignment(merchant_id, consignment_id)


def _parcel_draft(c: Consignment, merchant: Merchant, dims: dict[str, int]) -> ParcelDraft:
    order = c.order
    owner = merchant.owner
    sender = Address(name=merchant.name_ar, phone=owner.phone or "", email=owner.email,
                     governorate=merchant.governorate, country=merchant.country)
    recipient = Address(name=order.recipient_name, phone=order.phone,
                        governorate=order.governorate, district=order.district or "",
                        landmark=order.landmark or "")
    return ParcelDraft(
        sender=sender, recipient=recipient, service=Service.ECOMMERCE,
        weight_grams=int(dims.get("weight_g") or c.weight_g or 0),
        length_cm=int(dims.get("length_cm") or 0), width_cm=int(dims.get("width_cm") or 0),
        height_cm=int(dims.get("height_cm") or 0),
        pickup_office_id=order.pickup_office_id, order_ref=f"consignment:{c.id}",
        invoice_number=order.number,
    )


def ready_for_handover(merchant_id: int, consignment_id: int, dims: dict[str, int]
                       ) -> Consignment:
    """Make the parcel for a paid consignment: an S10 number and a label, the parcel
    pre-advised to the post (status pending until the counter accepts it), and the
    consignment moved to ready (consignment.ready follows). Asking again returns the
    same parcel.

    Flushes the parcel (tracking's `preadvise`) and the link to it: the caller's one
    unit of work commits both or neither. A parcel already made for the consignment
    (found by its order_ref) is linked rather than made again, so a consignment never
    gets two parcels. Raises NotFound, Conflict for a consignment that is not paid, is
    cancelled, or belongs to a shop abroad (those ship through their own post),
    ValidationFailed for a bad weight.
    """
    c = owned_consignment(merchant_id, consignment_id)
    merchant = c.merchant
    if merchant is None:  # cannot be: owned_consignment matched its merchant_id
        raise NotFound(CONSIGNMENT_NOT_FOUND)
    if c.parcel_id is not None:
        return c
    if c.status != ConsignmentStatus.OPEN:
        raise Conflict(_l("Only a paid, open consignment can be handed over."),
                       code="consignment_state")
    if not merchant.is_local:
        raise Conflict(_l("Shops abroad send parcels through their own post."),
                       code="foreign_shop")
    parcel = db.scalar(select(Parcel).where(Parcel.order_ref == f"consignment:{c.id}"))
    if parcel is None:
        parcel = parcels.preadvise(_parcel_draft(c, merchant, dims))
    return orders.record_handover(consignment_id, parcel_id=parcel.id,
                                  tracking_number=parcel.tracking_number, actor_id=None)


def line_view(line: OrderLine) -> dict[str, Any]:
    """One order line as the merchant sees it (with its merchant_sku)."""
    product = line.product
    return {"product_id": line.product_id,
            "merchant_sku": product.merchant_sku if product is not None else None,
            "title_ar": line.title_ar, "title_en": line.title_en, "options": line.options,
            "quantity": line.quantity, "unit_price": line.unit_price,
            "currency": line.currency, "line_total_iqd": line.line_total_iqd}


def consignment_view(c: Consignment, label_url: str | None) -> dict[str, Any]:
    """What a merchant sees of its consignment: the order's number and delivery
    details, its lines, amounts in dinars, and its parcel."""
    order = c.order
    return {
        "id": c.id, "order_id": order.id, "order_number": order.number,
        "status": c.status, "placed_at": order.placed_at, "paid_at": order.paid_at,
        "acknowledged_at": c.acknowledged_at, "ready_at": c.ready_at,
        "shipped_at": c.shipped_at, "delivered_at": c.delivered_at,
        "items_total": c.items_total, "delivery_fee": c.delivery_fee, "total": c.total,
        "currency": order.currency, "weight_g": c.weight_g,
        "tracking_number": c.tracking_number, "label_url": label_url,
        "delivery": {"method": order.delivery_method, "recipient_name": order.recipient_name,
                     "phone": order.phone, "governorate": order.governorate,
                     "district": order.district, "landmark": order.landmark,
                     "postal_code": order.postal_code,
                     "pickup_office_id": order.pickup_office_id},
        "lines": [line_view(line) for line in c.lines],
    }
