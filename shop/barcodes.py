"""What shop's barcodes open, and what the back-office search finds in the shop.

An order's QR (on its receipt and on the citizen's phone) opens the order: at a counter
its back-office page (its parcels to hand over, its payments to refund), for its owner
their own order page, for anyone else only "a valid Barid document". The search box
finds an order or a buy-for-me request by number, and a merchant by name.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from app.backoffice import MAX_HITS, SearchHit, SearchQuery
from app.barcodes import Opened, Page
from app.database import db
from app.numbers import MAX_BIGINT
from shop.models import BuyRequest, Merchant, Order

# The kind of signed reference an order's QR code carries.
ORDER_BARCODE = "order"
# A merchant's name is searched from this many characters (fewer would list them all).
MIN_NAME = 2


def open_order(reference: str) -> Opened | None:
    """An order's reference is its id (signed, so not guessable)."""
    if not reference.isdigit() or int(reference) > MAX_BIGINT:
        return None
    order = db.get(Order, int(reference))
    if order is None:
        return None
    return Opened(Page("shop_orders_bo.order", {"order_id": order.id}), what=_l("An order"),
                  owner_id=order.user_id,
                  owner=Page("shop_orders.order_detail", {"order_id": order.id}))


def find_orders(query: SearchQuery) -> Iterable[SearchHit]:
    """An order or a buy-for-me request whose number is the query (any case, spaces)."""
    number = query.compact
    if not number or len(number) > 16:
        return []
    hits = [SearchHit(_l("Order"), o.number, "shop_orders_bo.order", {"order_id": o.id},
                      o.recipient_name)
            for o in db.scalars(select(Order).where(Order.number == number))]
    hits += [SearchHit(_l("Buy-for-me request"), r.number, "shop_procurement.buy_request",
                       {"request_id": r.id}, r.title[:80])
             for r in db.scalars(select(BuyRequest).where(BuyRequest.number == number))]
    return hits


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def find_merchants(query: SearchQuery) -> Iterable[SearchHit]:
    """Merchants whose Arabic or English name contains the query."""
    text = query.raw.strip()
    if len(text) < MIN_NAME:
        return []
    pattern = _like(text)
    found = db.scalars(select(Merchant).where(or_(
        func.lower(Merchant.name_ar).like(pattern, escape="\\"),
        func.lower(Merchant.name_en).like(pattern, escape="\\"))).order_by(Merchant.id)
        .limit(MAX_HITS))
    return [SearchHit(_l("Merchant"), f"{m.name_ar} · {m.name_en}", "shop_admin.merchant",
                      {"merchant_id": m.id}, m.status) for m in found]
