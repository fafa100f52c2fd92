"""What the merchant API and portal ask of the shop: the caller's merchant, its catalog
and stock, and only its own parcels, orders and consignments.

Another merchant's object is answered exactly like one that does not exist (NotFound),
so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from app.auth.models import User
from app.database import db
from app.errors import NotFound, ValidationFailed
from shop.models import Merchant, MerchantStatus, Product

PARCEL_NOT_FOUND = _l("There is no such parcel among yours.")
MAX_STOCK_ITEMS = 1000


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
                   merchant_sku: str | None = None) -> Select[tuple[Product]]:
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
    """Add a product through the API (shop.services.catalog.create_product, which
    commits), refusing a merchant_sku the merchant already uses.

    Raises Conflict for a repeated merchant_sku, and what create_product raises.
    """
    from sqlalchemy.exc import IntegrityError

    from app.errors import Conflict
    from shop.services import catalog

    sku = data.get("merchant_sku")
    taken = _l("You already have a product with this merchant_sku.")
    if sku and db.scalar(products_query(merchant_id, merchant_sku=sku).limit(1)):
        raise Conflict(taken, fields={"merchant_sku": ["taken"]})
    try:
        return catalog.create_product(merchant_id, data)
    except IntegrityError as exc:  # the same sku created a moment ago by another request
        db.rollback()
        raise Conflict(taken, fields={"merchant_sku": ["taken"]}) from exc


def set_stock_levels(merchant_id: int, items: list[dict[str, Any]]) -> list[Product]:
    """Set the stock of several of the merchant's products at once, all or nothing.

    Each item names a product by `product_id` or `merchant_sku` and gives its new
    `stock` (zero or more). The rows are locked in id order (the platform's lock order
    for stock). Commits. Raises ValidationFailed for an empty or too long list, an item
    naming no product or both ways, or a repeated product; NotFound when any product is
    not the merchant's (nothing is changed then).
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
    from sqlalchemy import or_

    rows = list(db.scalars(
        select(Product).where(Product.merchant_id == merchant_id, or_(*conditions))
        .order_by(Product.id).with_for_update(of=Product)).unique())
    by_id = {p.id: p for p in rows}
    by_sku = {p.merchant_sku: p for p in rows if p.merchant_sku}
    seen: set[int] = set()
    changed: list[Product] = []
    for n, item in enumerate(items):
        product = (by_id.get(item["product_id"]) if item.get("product_id") is not None
                   else by_sku.get(item["merchant_sku"]))
        if product is None:
            db.rollback()
            raise NotFound(_l("This product is not available."),
                           fields={f"items.{n}": ["not_found"]})
        if product.id in seen:
            db.rollback()
            raise ValidationFailed(_l("A product appears twice."),
                                   fields={f"items.{n}": ["duplicate"]})
        seen.add(product.id)
        product.stock = int(item["stock"])
        changed.append(product)
    db.commit()
    return changed


# -- parcels, via the consignment link --------------------------------------------------

def _consignment_model() -> Any:
    import shop.models as models

    return getattr(models, "Consignment", None)


def merchant_ids_of_order_ref(order_ref: str | None) -> list[int]:
    """Merchants behind a parcel's `order_ref` ("consignment:7" or "order:42")."""
    consignment = _consignment_model()
    kind, _, raw = (order_ref or "").partition(":")
    if consignment is None or not raw.isdigit():
        return []
    if kind == "consignment":
        stmt = select(consignment.merchant_id).where(consignment.id == int(raw))
    elif kind == "order":
        stmt = select(consignment.merchant_id).where(consignment.order_id == int(raw))
    else:
        return []
    return sorted({m for m in db.scalars(stmt) if m is not None})


def owned_parcel(merchant_id: int, number: str) -> Any:
    """A parcel made for one of the merchant's consignments; NotFound otherwise (also
    for a number that is not a valid S10 or belongs to someone else)."""
    from tracking import s10
    from tracking.models import Parcel

    validity = s10.validate(number)
    if not validity:
        raise NotFound(PARCEL_NOT_FOUND)
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == validity.number))
    if parcel is None or merchant_id not in merchant_ids_of_order_ref(parcel.order_ref):
        consignment = _consignment_model()
        linked = consignment is not None and parcel is not None and db.scalar(
            select(consignment.id).where(consignment.parcel_id == parcel.id,
                                         consignment.merchant_id == merchant_id))
        if not linked:
            raise NotFound(PARCEL_NOT_FOUND)
    return parcel
