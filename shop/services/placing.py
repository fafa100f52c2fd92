"""Placing an order: the one way an order is written, for checkout and buy for me alike.

A use case prices what the shopper buys (checkout: the cart; buy for me: procurement's
quote) as an OrderDraft - where it goes, one ConsignmentDraft per merchant (a buy-for-me
order has one, with no merchant), their lines and the rates used - and hands it to
`create_order`, which writes the order, its consignments and lines, takes the stock of
catalog lines, records and publishes order.placed and, for the post card, holds the
total on the card. A repeated checkout key returns the order already placed with it.

Also here, because both use cases need them: the delivery choice (Destination) and the
payment choice (PaymentChoice), and the errors they share (SoldOut, PriceChanged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.identifiers import normalise_phone
from app.auth.models import PostOffice, User
from app.database import db, savepoint, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from payments import services as payments
from payments.cards import cards_of
from shop.models import HOME_CURRENCY, Consignment, DeliveryMethod, Order, OrderLine, Product
from shop.services import catalog
from shop.services.addresses import owned_address, pickup_office
from shop.services.orders import record_placed
from shop.services.references import ORDER_KIND, new_number

PAYMENT_METHODS = ("post_card", "stripe")


class SoldOut(Conflict):
    """Someone else bought the last units first (or the product went away)."""

    code = "sold_out"


class PriceChanged(Conflict):
    """A price, a rate or a fee changed since the shopper saw the quote.

    `quote` is the new one (checkout's Quote or buy for me's AcceptQuote: anything with
    a `digest` and a `total`), for the page to show before the shopper confirms again.
    """

    code = "price_changed"

    def __init__(self, quote: Any) -> None:
        super().__init__(_l("Prices changed since you looked. Check the new total and "
                            "confirm again."))
        self.quote = quote


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
    Changes nothing.

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


# -- how it is paid -----------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentChoice:
    """How the shopper pays: a post card (number and PIN, or one of their own cards by
    id, and the PIN) or a bank card through Stripe."""

    method: str
    card_number: str = ""
    card_id: int | None = None
    pin: str = ""
    # The code payments sent to the card's holder, on the try after the PIN (a card
    # that is not the shopper's own; see payments.otp). It stands for the PIN.
    one_time_code: str = ""


def check_payment_method(choice: PaymentChoice) -> None:
    """Raises ValidationFailed unless `choice` names a way to pay an order."""
    if choice.method not in PAYMENT_METHODS:
        raise ValidationFailed(_l("Choose how to pay."), fields={"payment": _l("Choose one.")})


def _card_number(choice: PaymentChoice, user: User) -> str:
    if choice.card_id:
        card = next((c for c in cards_of(user.id) if c.id == choice.card_id), None)
        if card is None:
            raise NotFound()
        return card.number
    if not choice.card_number.strip():
        raise ValidationFailed(_l("Enter the post card number."),
                               fields={"card_number": _l("Enter the card number.")})
    return choice.card_number


def check_post_card(choice: PaymentChoice, user: User, *, amount: int,
                    currency: str) -> payments.VerifiedCard:
    """Check the post card and PIN (or one-time code) of `choice` for an order of
    `amount` before anything is locked: the slow PIN hash then holds no stock row.
    Pays nothing; take_post_card_payment spends the result for that order in the same
    transaction. Raises NotFound (someone else's card chosen by id), ValidationFailed
    (no card number or PIN) and the post card's errors (wrong PIN, locked, a code sent,
    ...); a wrong PIN is counted even though the caller's unit of work then rolls back,
    and a right one costs no try (payments records both apart)."""
    if not choice.pin and not choice.one_time_code:
        raise ValidationFailed(_l("Enter the card's PIN."), fields={"pin": _l("Enter the PIN.")})
    return payments.check_card_for_payment(
        card_number=_card_number(choice, user), pin=choice.pin, amount=amount,
        currency=currency, purpose=ORDER_KIND, actor_id=user.id,
        one_time_code=choice.one_time_code)


def take_post_card_payment(order: Order, choice: PaymentChoice, user: User,
                           verified: payments.VerifiedCard | None = None) -> None:
    """Hold (or, with SHOP_POST_CARD_HOLD off, take at once) the order's total on a post
    card: the card `verified` (check_post_card, for exactly this total), else after
    checking the PIN here. Flushes. Raises NotFound (someone else's card chosen by id),
    ValidationFailed (no card number or PIN), IdempotencyConflict
    when `verified` was for another amount or card, and the post card's errors (wrong PIN,
    locked, not enough balance, ...); a wrong PIN is counted even though the caller's
    unit of work then rolls back (payments records it apart)."""
    hold = bool(current_app.config["SHOP_POST_CARD_HOLD"])
    minutes = int(current_app.config["SHOP_ORDER_PAYMENT_MINUTES"])
    if verified is not None:
        args: dict[str, Any] = dict(
            amount=order.total, currency=order.currency, reference_kind=ORDER_KIND,
            reference_id=str(order.id), purpose=ORDER_KIND, actor_id=user.id)
        p = (payments.hold_verified(verified, idempotency_key=f"order:{order.id}:hold",
                                    hold_minutes=minutes + 5, **args) if hold else
             payments.pay_verified(verified, idempotency_key=f"order:{order.id}:post-card",
                                   **args))
        order.payment_id = p.id
        return
    if not choice.pin and not choice.one_time_code:
        raise ValidationFailed(_l("Enter the card's PIN."), fields={"pin": _l("Enter the PIN.")})
    args = dict(
        card_number=_card_number(choice, user), pin=choice.pin, amount=order.total,
        currency=order.currency, reference_kind=ORDER_KIND, reference_id=str(order.id),
        purpose=ORDER_KIND, actor_id=user.id, one_time_code=choice.one_time_code)
    if hold:
        p = payments.authorize_post_card(idempotency_key=f"order:{order.id}:hold",
                                         hold_minutes=minutes + 5, **args)
    else:
        p = payments.pay_with_post_card(idempotency_key=f"order:{order.id}:post-card", **args)
    order.payment_id = p.id


# -- the order ----------------------------------------------------------------------------

@dataclass
class LineDraft:
    """One article as priced: for a catalog product `product` is its (locked) row, whose
    stock the order takes; a buy-for-me article has none."""

    product: Product | None
    title_ar: str
    title_en: str
    quantity: int
    unit_price: int  # minor units of `currency`
    currency: str
    rate: str | None
    rate_id: int | None
    unit_price_iqd: int
    line_total_iqd: int
    weight_g: int  # per unit
    hs_code: str | None = None
    duty_rate_bps: int = 0
    duty_estimate: int = 0
    options: str = ""


@dataclass
class ConsignmentDraft:
    """The part of the order one merchant fulfils (no merchant: the post buys it)."""

    merchant_id: int | None
    zone: str
    international: bool
    weight_g: int
    items_total: int
    delivery_fee: int
    shipping_fee: int = 0
    duty_estimate: int = 0
    customs_fees: int = 0
    handling_fee: int = 0
    service_fee: int = 0
    lines: list[LineDraft] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (self.items_total + self.delivery_fee + self.shipping_fee
                + self.duty_estimate + self.customs_fees + self.handling_fee
                + self.service_fee)


@dataclass
class OrderDraft:
    """An order as priced on the server: its amounts are the sums of its consignments'."""

    kind: str
    destination: Destination
    consignments: list[ConsignmentDraft]
    rates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sum(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.consignments)


class Placement(NamedTuple):
    """What create_order did: the order, and whether it was only found again."""

    order: Order
    replayed: bool  # True: the checkout key had placed it already; nothing was written


def placed_with(user_id: int, checkout_key: str) -> Order | None:
    """The shopper's order placed with `checkout_key`, if any."""
    return db.scalar(select(Order).where(Order.checkout_key == checkout_key,
                                         Order.user_id == user_id))


def _write(user: User, draft: OrderDraft, payment: str, checkout_key: str | None) -> Order:
    dest = draft.destination
    minutes = int(current_app.config["SHOP_ORDER_PAYMENT_MINUTES"])
    order = Order(
        number=new_number("BR"), user_id=user.id, kind=draft.kind,
        checkout_key=checkout_key, delivery_method=dest.method,
        pickup_office_id=dest.office.id if dest.office else None,
        recipient_name=dest.recipient_name, phone=dest.phone, governorate=dest.governorate,
        district=dest.district, landmark=dest.landmark, postal_code=dest.postal_code,
        items_total=draft.sum("items_total"), delivery_fee=draft.sum("delivery_fee"),
        shipping_fee=draft.sum("shipping_fee"), duty_estimate=draft.sum("duty_estimate"),
        customs_fees=draft.sum("customs_fees"),
        handling_fee=draft.sum("handling_fee"), service_fee=draft.sum("service_fee"),
        total=draft.sum("total"), rates=draft.rates, payment_method=payment,
        expires_at=utcnow() + timedelta(minutes=minutes),
        # Started empty before the first flush and filled below, so the order carries
        # its consignments in memory and record_placed need not read them back.
        consignments=[],
    )
    db.add(order)
    db.flush()
    for dc in draft.consignments:
        c = Consignment(order_id=order.id, merchant_id=dc.merchant_id, zone=dc.zone,
                        international=dc.international, weight_g=dc.weight_g,
                        items_total=dc.items_total, delivery_fee=dc.delivery_fee,
                        shipping_fee=dc.shipping_fee, duty_estimate=dc.duty_estimate,
                        customs_fees=dc.customs_fees,
                        handling_fee=dc.handling_fee, service_fee=dc.service_fee,
                        total=dc.total)
        order.consignments.append(c)
        db.flush()
        for ln in dc.lines:
            db.add(OrderLine(
                order_id=order.id, consignment_id=c.id,
                product_id=ln.product.id if ln.product is not None else None,
                title_ar=ln.title_ar, title_en=ln.title_en, options=ln.options,
                quantity=ln.quantity, unit_price=ln.unit_price, currency=ln.currency,
                rate=ln.rate, rate_id=ln.rate_id, unit_price_iqd=ln.unit_price_iqd,
                line_total_iqd=ln.line_total_iqd, weight_g=ln.weight_g, hs_code=ln.hs_code,
                duty_rate_bps=ln.duty_rate_bps, duty_estimate=ln.duty_estimate))
    db.flush()
    return order


def _take_stock(draft: OrderDraft, locale: str) -> None:
    """Take the units of the draft's catalog lines out of stock. Raises SoldOut when
    another order took them first: the pricing read the stock, but only the conditional
    UPDATE decides (see shop.services.catalog)."""
    wanted: dict[int, int] = {}
    products: dict[int, Product] = {}
    for dc in draft.consignments:
        for ln in dc.lines:
            if ln.product is not None:
                wanted[ln.product.id] = wanted.get(ln.product.id, 0) + ln.quantity
                products[ln.product.id] = ln.product
    short = catalog.take_stock(wanted)
    if short:
        raise SoldOut(_l("Sold out: %(title)s.",
                         title=products[short[0]].title(locale)))


def create_order(user: User, *, payment: PaymentChoice, checkout_key: str | None,
                 price: Callable[[], OrderDraft], locale: str = "en",
                 check_first: Callable[[], int] | None = None) -> Placement:
    """Place an order: the one way checkout and buy for me write one. Flushes.

    A `checkout_key` that already placed an order of this shopper returns that order
    (replayed) and writes nothing: the caller takes its own lock first (the cart, the
    request), so a double click queues behind the first submission and finds its order.
    Otherwise `price()` prices the order (raising whatever refuses it), and the order,
    its consignments and lines are written, the stock of catalog lines taken, the order
    recorded as placed (order.placed published) and, when paying with a post card, the
    total held on the card (taken at once with SHOP_POST_CARD_HOLD off).

    With `check_first` (the total the shopper confirmed, priced without locks; raising
    what refuses it) a post card and its PIN are checked for that total before `price()`
    takes any lock, so the slow PIN hash holds no stock row; the hold is then of exactly
    that total (a price that moved in between is refused by `price()` first).

    Raises ValidationFailed (no way to pay), whatever `price` raises, SoldOut (someone
    took the last units first; `locale` names the product), NotFound / ValidationFailed for the card
    choice and the post card's errors (wrong PIN, not enough balance, ...).
    """
    check_payment_method(payment)
    key = (checkout_key or "")[:80] or None
    if key is not None:
        found = placed_with(user.id, key)
        if found is not None:
            return Placement(found, True)
    verified = None
    if check_first is not None and payment.method == "post_card":
        verified = check_post_card(payment, user, amount=check_first(),
                                   currency=HOME_CURRENCY)
    draft = price()
    try:
        # A savepoint, so that losing a race on the checkout key or the last unit (the
        # database's constraints have the last word) leaves the transaction usable to
        # look up the order the other submission placed.
        with savepoint():
            # Stock first: stock rows are the first locks taken (before the post card's
            # ledger accounts), and a sold-out order writes nothing.
            _take_stock(draft, locale)
            order = _write(user, draft, payment.method, key)
            record_placed(order, actor_id=user.id)
            if payment.method == "post_card":
                take_post_card_payment(order, payment, user, verified)
    except (IntegrityError, SoldOut) as exc:
        # The same key's first submission may have taken the last unit a moment ago.
        found = placed_with(user.id, key) if key is not None else None
        if found is not None:
            return Placement(found, True)
        if isinstance(exc, SoldOut):
            raise
        raise SoldOut(_l("Sorry, someone bought the last one first.")) from None
    return Placement(order, False)
