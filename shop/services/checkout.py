"""Checkout: the priced quote of a cart, and placing the order.

Every amount is computed here from the server's prices and the stored exchange rates;
nothing the browser sends is charged. The checkout page shows a quote and carries its
digest; placing recomputes the quote under lock and refuses (PriceChanged, with the new
quote) when it differs, so the shopper sees the new total and confirms again.

Placing belongs to one unit of work (the caller's): the stock rows are locked in
product id order (SELECT ... FOR UPDATE) and checked, and shop.services.placing's
create_order writes the order and one consignment per merchant, takes the stock,
publishes order.placed and, for the post card, holds the money on the card (ledger
accounts are locked after the stock rows: ARCHITECTURE.md mechanism 7). Either all of
it commits or none of it does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.auth.models import User
from app.database import db
from app.errors import NotFound, ValidationFailed
from app.money import convert
from shop.models import (
    HOME_CURRENCY,
    Cart,
    Merchant,
    Order,
    OrderKind,
    Product,
)
from shop.pricing import Rates, rates_for
from shop.services import delivery_fees as fees
from shop.services.placing import (
    ConsignmentDraft,
    Destination,
    LineDraft,
    OrderDraft,
    PaymentChoice,
    PriceChanged,
    SoldOut,
    check_payment_method,
    create_order,
    destination_for,
)
from shop.services.references import ORDER_KIND  # noqa: F401  (re-exported: older callers)


class EmptyCart(ValidationFailed):
    code = "empty_cart"


# -- the quote ----------------------------------------------------------------------------

@dataclass
class QuoteLine:
    product: Product
    quantity: int
    unit_price: int  # merchant's minor units
    currency: str
    rate: str | None
    rate_id: int | None
    unit_price_iqd: int
    line_total_iqd: int
    duty_rate_bps: int = 0
    duty: int = 0
    seen_price_iqd: int | None = None

    @property
    def price_changed(self) -> bool:
        return self.seen_price_iqd is not None and self.seen_price_iqd != self.unit_price_iqd


@dataclass
class QuoteConsignment:
    merchant: Merchant
    lines: list[QuoteLine]
    zone: str
    international: bool
    weight_g: int
    items_total: int
    delivery_fee: int
    shipping_fee: int = 0
    duty_estimate: int = 0
    handling_fee: int = 0

    @property
    def total(self) -> int:
        return (self.items_total + self.delivery_fee + self.shipping_fee
                + self.duty_estimate + self.handling_fee)


@dataclass
class Quote:
    destination: Destination
    consignments: list[QuoteConsignment] = field(default_factory=list)
    rates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _sum(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.consignments)

    @property
    def items_total(self) -> int:
        return self._sum("items_total")

    @property
    def delivery_fee(self) -> int:
        return self._sum("delivery_fee")

    @property
    def shipping_fee(self) -> int:
        return self._sum("shipping_fee")

    @property
    def duty_estimate(self) -> int:
        return self._sum("duty_estimate")

    @property
    def handling_fee(self) -> int:
        return self._sum("handling_fee")

    @property
    def total(self) -> int:
        return self._sum("total")

    @property
    def lines(self) -> list[QuoteLine]:
        return [ln for c in self.consignments for ln in c.lines]

    @property
    def price_changed(self) -> bool:
        return any(ln.price_changed for ln in self.lines)

    @property
    def has_foreign(self) -> bool:
        return any(c.international for c in self.consignments)

    @property
    def digest(self) -> str:
        """A fingerprint of everything the shopper is asked to pay for: any change of a
        price, rate, fee, quantity or destination changes it."""
        body = {
            "to": self.destination.key(),
            "c": [[c.merchant.id, c.zone, c.delivery_fee, c.shipping_fee, c.duty_estimate,
                   c.handling_fee,
                   [[ln.product.id, ln.quantity, ln.unit_price, ln.currency, ln.rate,
                     ln.unit_price_iqd] for ln in c.lines]] for c in self.consignments],
            "total": self.total,
        }
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Want:
    product_id: int
    quantity: int
    seen_price_iqd: int | None


def _cart(user_id: int, *, lock: bool = False) -> tuple[Cart | None, list[_Want]]:
    stmt = select(Cart).where(Cart.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    cart = db.scalar(stmt)
    if cart is None:
        return None, []
    return cart, [_Want(ln.product_id, ln.quantity, ln.seen_price_iqd) for ln in cart.lines]


def _cart_wants(user_id: int, *, lock: bool = False) -> list[_Want]:
    return _cart(user_id, lock=lock)[1]


def _unit_iqd(product: Product, rates: Rates) -> tuple[int, str | None, int | None]:
    currency = product.merchant.currency
    if currency == HOME_CURRENCY:
        return product.price, None, None
    rate = rates.get(currency)
    if rate is None:
        raise SoldOut(_l("%(title)s cannot be priced in dinars right now. Remove it from "
                         "your cart or try later.", title=product.title_en))
    return convert(product.price, currency, HOME_CURRENCY, rate.value), \
        f"{rate.value.normalize():f}", rate.id


def build_quote(wants: list[_Want], products: dict[int, Product], dest: Destination,
                *, locale_title: str = "en") -> Quote:
    """Price `wants` (product, quantity) for `dest` from the products as loaded: unit
    prices in dinars at the current stored rates, then per merchant the domestic
    delivery fee by zone and weight, and for a foreign merchant international shipping,
    estimated duty per line and the handling fee. Raises SoldOut for a product that is
    gone, inactive, short of stock or cannot be priced."""
    rates = rates_for({p.merchant.currency for p in products.values()})
    quote = Quote(destination=dest)
    by_merchant: dict[int, list[QuoteLine]] = {}
    for want in wants:
        product = products.get(want.product_id)
        if product is None or not product.purchasable:
            raise SoldOut(_l("A product in your cart is no longer sold. Remove it from your "
                             "cart first."))
        if product.stock < want.quantity:
            raise SoldOut(
                _l("Sold out: %(title)s.", title=product.title(locale_title))
                if product.stock <= 0 else
                _l("Only %(n)s of %(title)s left. Change the quantity in your cart.",
                   n=product.stock, title=product.title(locale_title)))
        unit_iqd, rate, rate_id = _unit_iqd(product, rates)
        if rate is not None:
            quote.rates[product.merchant.currency] = {"rate": rate, "id": rate_id}
        line = QuoteLine(product, want.quantity, product.price, product.merchant.currency,
                         rate, rate_id, unit_iqd, unit_iqd * want.quantity,
                         seen_price_iqd=want.seen_price_iqd)
        by_merchant.setdefault(product.merchant_id, []).append(line)
    for lines in by_merchant.values():
        merchant = lines[0].product.merchant
        weight = sum(ln.product.weight_g * ln.quantity for ln in lines)
        international = not merchant.is_local
        origin = merchant.governorate if merchant.is_local else None
        zone = fees.zone_for(origin, dest.governorate)
        c = QuoteConsignment(
            merchant=merchant, lines=lines, zone=zone, international=international,
            weight_g=weight, items_total=sum(ln.line_total_iqd for ln in lines),
            delivery_fee=fees.delivery_fee(zone, weight, door=dest.door))
        if international:
            for ln in lines:
                ln.duty_rate_bps = fees.duty_rate_bps(ln.product.hs_code)
                ln.duty = fees.bps_of(ln.line_total_iqd, ln.duty_rate_bps)
            c.shipping_fee = fees.international_shipping(weight)
            c.duty_estimate = sum(ln.duty for ln in lines)
            c.handling_fee = fees.handling_fee()
        quote.consignments.append(c)
    quote.consignments.sort(key=lambda c: c.merchant.id)
    return quote


def _load_products(ids: list[int], *, lock: bool) -> dict[int, Product]:
    stmt = select(Product).where(Product.id.in_(ids)).order_by(Product.id)
    if lock:
        # Only the product rows (not the joined merchant rows), in id order, so two
        # checkouts of overlapping carts queue instead of deadlocking. FOR NO KEY UPDATE
        # (key_share): placing never changes a product's key, so a cart line being added
        # (its foreign key takes KEY SHARE on the product) need not wait for a placing,
        # nor join a cycle with placings of the same product.
        stmt = stmt.with_for_update(of=Product, key_share=True).execution_options(
            populate_existing=True)
    return {p.id: p for p in db.scalars(stmt).unique()}


def quote_cart(user: User, dest: Destination, *, locale: str = "en") -> Quote:
    """The priced quote of the shopper's cart for `dest`. Changes nothing.

    Raises EmptyCart, SoldOut.
    """
    wants = _cart_wants(user.id)
    if not wants:
        raise EmptyCart(_l("Your cart is empty."))
    return build_quote(wants, _load_products([w.product_id for w in wants], lock=False),
                       dest, locale_title=locale)


# -- placing the order --------------------------------------------------------------------

def _draft(quote: Quote) -> OrderDraft:
    """The quote as the order create_order writes."""
    return OrderDraft(
        kind=OrderKind.CATALOG, destination=quote.destination, rates=quote.rates,
        consignments=[ConsignmentDraft(
            merchant_id=qc.merchant.id, zone=qc.zone, international=qc.international,
            weight_g=qc.weight_g, items_total=qc.items_total, delivery_fee=qc.delivery_fee,
            shipping_fee=qc.shipping_fee, duty_estimate=qc.duty_estimate,
            handling_fee=qc.handling_fee,
            lines=[LineDraft(
                product=ql.product, title_ar=ql.product.title_ar,
                title_en=ql.product.title_en, quantity=ql.quantity,
                unit_price=ql.unit_price, currency=ql.currency, rate=ql.rate,
                rate_id=ql.rate_id, unit_price_iqd=ql.unit_price_iqd,
                line_total_iqd=ql.line_total_iqd, weight_g=ql.product.weight_g,
                hs_code=ql.product.hs_code, duty_rate_bps=ql.duty_rate_bps,
                duty_estimate=ql.duty) for ql in qc.lines])
            for qc in quote.consignments])


def place_order(user_id: int, dest_args: dict[str, Any], *, payment: PaymentChoice,
                seen_digest: str, checkout_key: str, locale: str = "en") -> Order:
    """Place the shopper's cart as an order. Flushes; the caller's unit of work commits
    it all or nothing.

    Locks the cart; for the post card, prices the cart without locks and checks the card
    and PIN (or one-time code) for the confirmed total first (shop.services.placing
    check_post_card), so the slow PIN hash holds no stock row. Then locks the products'
    stock rows, recomputes the quote from the server's
    prices and stored rates, and refuses with PriceChanged (carrying the new quote) when
    it differs from the one the shopper confirmed (`seen_digest`). Then create_order
    takes the stock, writes the order, one consignment per merchant and the lines,
    publishes order.placed and holds the total on the post card when paying with one;
    the cart is emptied. A repeated `checkout_key` returns the order already placed with
    it and changes nothing.

    Raises EmptyCart, SoldOut (someone bought the last units first), PriceChanged,
    ValidationFailed / NotFound (bad destination or card choice), and the post card's
    errors (wrong PIN, not enough balance, ...). On any error the caller's unit of work
    rolls everything back.
    """
    # Checked first, before the form key and the destination, as the page always did
    # (create_order checks it again for its other callers).
    check_payment_method(payment)
    checkout_key = (checkout_key or "")[:80]
    if not checkout_key:
        raise ValidationFailed(_l("The form has expired. Please try again."))
    user = db.get(User, user_id)
    if user is None:
        raise NotFound()
    dest = destination_for(user, **dest_args)
    # The cart row lock queues a double click behind the first submission, which then
    # finds the order the first one placed (create_order's replay).
    # The cart is held (not only its lines read) so that emptying it below needs no
    # second read: the session keeps only the rows something refers to.
    cart, wants = _cart(user_id, lock=True)

    def price() -> OrderDraft:
        if not wants:
            raise EmptyCart(_l("Your cart is empty."))
        products = _load_products(sorted(w.product_id for w in wants), lock=True)
        quote = build_quote(wants, products, dest, locale_title=locale)
        if quote.digest != seen_digest:
            raise PriceChanged(quote)
        if quote.total <= 0:
            raise EmptyCart(_l("Your cart is empty."))
        return _draft(quote)

    def confirmed_total() -> int:
        # The total the shopper confirmed, priced without locks, so the post card's PIN
        # (or one-time code, sent for this amount) is checked before any stock row is
        # locked: the slow hash then stalls no other shopper of the same product.
        # price() checks the same digest again under lock and refuses a change.
        if not wants:
            raise EmptyCart(_l("Your cart is empty."))
        products = _load_products(sorted(w.product_id for w in wants), lock=False)
        quote = build_quote(wants, products, dest, locale_title=locale)
        if quote.digest != seen_digest:
            raise PriceChanged(quote)
        if quote.total <= 0:
            raise EmptyCart(_l("Your cart is empty."))
        return quote.total

    placed = create_order(user, payment=payment, checkout_key=checkout_key, price=price,
                          locale=locale, check_first=confirmed_total)
    if not placed.replayed and cart is not None:
        cart.lines.clear()
        db.flush()
    return placed.order
