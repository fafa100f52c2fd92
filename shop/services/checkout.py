"""Checkout: the priced quote of a cart, and placing the order.

Every amount is computed here from the server's prices and the stored exchange rates;
nothing the browser sends is charged. The checkout page shows a quote and carries its
digest; placing recomputes the quote under lock and refuses (PriceChanged, with the new
quote) when it differs, so the shopper sees the new total and confirms again.

Placing is one transaction: the stock rows are locked in product id order (SELECT ...
FOR UPDATE), checked and decremented, the order and one consignment per merchant are
written, order.placed is published and, for the post card, the money is held on the
card (ledger accounts are locked after the stock rows: ARCHITECTURE.md mechanism 7).
Either all of it commits or none of it does.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.identifiers import normalise_phone
from app.auth.models import PostOffice, User
from app.database import db, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.money import convert
from shop.models import (
    HOME_CURRENCY,
    Cart,
    Consignment,
    DeliveryMethod,
    Merchant,
    Order,
    OrderKind,
    OrderLine,
    Product,
)
from shop.pricing import Rates, rates_for
from shop.services import delivery_fees as fees
from shop.services.addresses import owned_address, pickup_office

PAYMENT_METHODS = ("post_card", "stripe")
ORDER_KIND = "shop_order"  # the payments reference kind and purpose of an order


class SoldOut(Conflict):
    """Someone else bought the last units first (or the product went away)."""

    code = "sold_out"


class PriceChanged(Conflict):
    """A price, a rate or a fee changed since the shopper saw the quote."""

    code = "price_changed"

    def __init__(self, quote: Quote) -> None:
        super().__init__(_l("Prices changed since you looked. Check the new total and "
                            "confirm again."))
        self.quote = quote


class EmptyCart(ValidationFailed):
    code = "empty_cart"


# -- where it goes ------------------------------------------------------------------------

@dataclass(frozen=True)
class Destination:
    """Where the order is delivered: a copy of an address, or a pickup post office."""

    method: str
    governorate: str
    recipient_name: str
    phone: str
    district: str = ""
    landmark: str = ""
    postal_code: str | None = None
    address_id: int | None = None
    office: PostOffice | None = None

    @property
    def door(self) -> bool:
        return self.method == DeliveryMethod.DOOR

    def key(self) -> list[Any]:
        return [self.method, self.governorate, self.address_id,
                self.office.id if self.office else None]


def destination_for(user: User, *, method: str, address_id: int | None = None,
                    office_id: int | None = None, recipient_name: str = "",
                    phone: str = "") -> Destination:
    """The delivery choice of a checkout, checked: the shopper's own address for the
    door, or a post office (and who collects, with a mobile number) for pickup.

    Raises NotFound for another shopper's address, ValidationFailed for a missing choice
    or a malformed phone.
    """
    if method == DeliveryMethod.DOOR:
        if not address_id:
            raise ValidationFailed(_l("Choose the address to deliver to."),
                                   fields={"address_id": _l("Choose an address.")})
        a = owned_address(address_id, user.id)
        return Destination(DeliveryMethod.DOOR, a.governorate, a.recipient_name, a.phone,
                           a.district, a.landmark, a.postal_code, address_id=a.id)
    if method == DeliveryMethod.PICKUP:
        if not office_id:
            raise ValidationFailed(_l("Choose a post office to collect from."),
                                   fields={"office_id": _l("Choose a post office.")})
        office = pickup_office(office_id)
        name = " ".join((recipient_name or user.full_name or "").split())[:200]
        if not name:
            raise ValidationFailed(_l("Write the name of the person who collects it."),
                                   fields={"recipient_name": _l("Write a name.")})
        phone = normalise_phone(phone or user.phone or "", "phone")
        return Destination(DeliveryMethod.PICKUP, office.governorate, name, phone,
                           office=office)
    raise ValidationFailed(_l("Choose delivery to the door or pickup at a post office."),
                           fields={"method": _l("Choose one.")})


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


def _cart_wants(user_id: int, *, lock: bool = False) -> list[_Want]:
    stmt = select(Cart).where(Cart.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    cart = db.scalar(stmt)
    if cart is None:
        return []
    return [_Want(ln.product_id, ln.quantity, ln.seen_price_iqd) for ln in cart.lines]


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
        # checkouts of overlapping carts queue instead of deadlocking.
        stmt = stmt.with_for_update(of=Product).execution_options(populate_existing=True)
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

@dataclass(frozen=True)
class PaymentChoice:
    """How the shopper pays: a post card (number and PIN, or one of their own cards by
    id, and the PIN) or a bank card through Stripe."""

    method: str
    card_number: str = ""
    card_id: int | None = None
    pin: str = ""


def new_number(prefix: str) -> str:
    """A public reference such as BR48213907: not a row count, not guessable in order."""
    return f"{prefix}{secrets.randbelow(10**8):08d}"


def _card_number(choice: PaymentChoice, user: User) -> str:
    if choice.card_id:
        from payments.cards import cards_of

        card = next((c for c in cards_of(user.id) if c.id == choice.card_id), None)
        if card is None:
            raise NotFound()
        return card.number
    if not choice.card_number.strip():
        raise ValidationFailed(_l("Enter the post card number."),
                               fields={"card_number": _l("Enter the card number.")})
    return choice.card_number


def take_post_card_payment(order: Order, choice: PaymentChoice, user: User) -> None:
    """Hold (or, with SHOP_POST_CARD_HOLD off, take at once) the order's total on a post
    card after checking the PIN. Flushes. Raises the post card's errors (wrong PIN,
    locked, not enough balance, ...)."""
    from payments import services as payments

    if not choice.pin:
        raise ValidationFailed(_l("Enter the card's PIN."), fields={"pin": _l("Enter the PIN.")})
    args = dict(card_number=_card_number(choice, user), pin=choice.pin, amount=order.total,
                currency=order.currency, reference_kind=ORDER_KIND,
                reference_id=str(order.id), purpose=ORDER_KIND, actor_id=user.id)
    if fees.setting("SHOP_POST_CARD_HOLD"):
        minutes = int(fees.setting("SHOP_ORDER_PAYMENT_MINUTES"))
        p = payments.authorize_post_card(idempotency_key=f"order:{order.id}:hold",
                                         hold_minutes=minutes + 5, **args)
    else:
        p = payments.pay_with_post_card(idempotency_key=f"order:{order.id}:post-card", **args)
    order.payment_id = p.id


def _existing_order(user_id: int, checkout_key: str) -> Order | None:
    return db.scalar(select(Order).where(Order.checkout_key == checkout_key,
                                         Order.user_id == user_id))


def _write_order(user: User, quote: Quote, payment: str, checkout_key: str) -> Order:
    from shop.services.orders import record_placed

    dest = quote.destination
    order = Order(
        number=new_number("BR"), user_id=user.id, kind=OrderKind.CATALOG,
        checkout_key=checkout_key, delivery_method=dest.method,
        pickup_office_id=dest.office.id if dest.office else None,
        recipient_name=dest.recipient_name, phone=dest.phone, governorate=dest.governorate,
        district=dest.district, landmark=dest.landmark, postal_code=dest.postal_code,
        items_total=quote.items_total, delivery_fee=quote.delivery_fee,
        shipping_fee=quote.shipping_fee, duty_estimate=quote.duty_estimate,
        handling_fee=quote.handling_fee, total=quote.total, rates=quote.rates,
        payment_method=payment,
        expires_at=utcnow() + timedelta(minutes=int(fees.setting("SHOP_ORDER_PAYMENT_MINUTES"))),
    )
    db.add(order)
    db.flush()
    for qc in quote.consignments:
        c = Consignment(order_id=order.id, merchant_id=qc.merchant.id, zone=qc.zone,
                        international=qc.international, weight_g=qc.weight_g,
                        items_total=qc.items_total, delivery_fee=qc.delivery_fee,
                        shipping_fee=qc.shipping_fee, duty_estimate=qc.duty_estimate,
                        handling_fee=qc.handling_fee, total=qc.total)
        db.add(c)
        db.flush()
        for ql in qc.lines:
            p = ql.product
            db.add(OrderLine(
                order_id=order.id, consignment_id=c.id, product_id=p.id,
                title_ar=p.title_ar, title_en=p.title_en, quantity=ql.quantity,
                unit_price=ql.unit_price, currency=ql.currency, rate=ql.rate,
                rate_id=ql.rate_id, unit_price_iqd=ql.unit_price_iqd,
                line_total_iqd=ql.line_total_iqd, weight_g=p.weight_g, hs_code=p.hs_code,
                duty_rate_bps=ql.duty_rate_bps, duty_estimate=ql.duty))
            # The CHECK constraint (stock >= 0) backs the check build_quote made.
            p.stock -= ql.quantity
    db.flush()
    record_placed(order, actor_id=user.id)
    return order


def place_order(user_id: int, dest_args: dict[str, Any], *, payment: PaymentChoice,
                seen_digest: str, checkout_key: str, locale: str = "en") -> Order:
    """Place the shopper's cart as an order, in one transaction, and commit.

    Locks the cart and the products' stock rows, recomputes the quote from the server's
    prices and stored rates, and refuses with PriceChanged (carrying the new quote) when
    it differs from the one the shopper confirmed (`seen_digest`). Then takes the stock,
    writes the order, one consignment per merchant and the lines, publishes order.placed,
    holds the total on the post card when paying with one, empties the cart and commits.
    A repeated `checkout_key` returns the order already placed with it.

    Raises EmptyCart, SoldOut (someone bought the last units first), PriceChanged,
    ValidationFailed / NotFound (bad destination or card choice), and the post card's
    errors (wrong PIN, not enough balance, ...). On any error nothing is written.
    """
    if payment.method not in PAYMENT_METHODS:
        raise ValidationFailed(_l("Choose how to pay."), fields={"payment": _l("Choose one.")})
    checkout_key = (checkout_key or "")[:80]
    if not checkout_key:
        raise ValidationFailed(_l("The form has expired. Please try again."))
    user = db.get(User, user_id)
    if user is None:
        raise NotFound()
    try:
        dest = destination_for(user, **dest_args)
        # The cart row lock queues a double click behind the first submission, which then
        # finds the order the first one placed.
        wants = _cart_wants(user_id, lock=True)
        found = _existing_order(user_id, checkout_key)
        if found is not None:
            db.rollback()
            return found
        if not wants:
            raise EmptyCart(_l("Your cart is empty."))
        products = _load_products(sorted(w.product_id for w in wants), lock=True)
        quote = build_quote(wants, products, dest, locale_title=locale)
        if quote.digest != seen_digest:
            raise PriceChanged(quote)
        if quote.total <= 0:
            raise EmptyCart(_l("Your cart is empty."))
        order = _write_order(user, quote, payment.method, checkout_key)
        if payment.method == "post_card":
            take_post_card_payment(order, payment, user)
        cart = db.scalar(select(Cart).where(Cart.user_id == user_id))
        if cart is not None:
            cart.lines.clear()
        db.commit()
    except IntegrityError:
        db.rollback()
        found = _existing_order(user_id, checkout_key)
        if found is not None:
            return found
        # The stock check constraint: another checkout took the units between our read
        # and write (cannot happen under the row locks, but the database has the last word).
        raise SoldOut(_l("Sorry, someone bought the last one first.")) from None
    except Exception:
        db.rollback()
        raise
    return order
