"""Buy for me: the post buys an article from any foreign web shop for a shopper.

The shopper pastes the link with what to buy; Barid shows an estimated landed cost in
dinars (the item at the stored exchange rate, international shipping by weight,
estimated duty by customs category, customs' inspection and stamp fees, the service fee,
each its own line). Procurement approves with a final quote (price, weight or shipping
adjusted) or rejects with a reason. The shopper accepts the quote, which places an order
awaiting payment (the same payment options as checkout), or lets it expire. After
payment procurement records the purchase abroad.

Duty and customs fees are charged once: the parcel registered for the purchase carries
what the quote took for them (tracking credits it at assessment, so the shopper pays
only a difference), and when customs releases the parcel having assessed less, the
excess goes back to the order's payment (`refund_prepaid_excess`, on customs.released).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select

from app.audit import record_audit
from app.auth.models import User
from app.database import db, utcnow
from app.errors import NotFound, ValidationFailed
from app.money import convert, to_minor
from payments import services as payments
from payments.errors import NoExchangeRate
from payments.rates import rate_at
from shop.models import (
    BuyRequest,
    BuyRequestStatus,
    Consignment,
    Order,
    OrderKind,
)
from shop.schemas import BuyRequestSchema, QuoteSchema
from shop.services import delivery_fees as fees
from shop.services.buy_request_states import (
    BuyRequestStateError,
    check_move,
    move_request,
    record_submitted,
)
from shop.services.orders import acknowledge_consignment, lock_order
from shop.services.placing import (
    ConsignmentDraft,
    Destination,
    LineDraft,
    OrderDraft,
    PaymentChoice,
    PriceChanged,
    create_order,
    destination_for,
)
from shop.services.references import new_number
from tracking import s10
from tracking.models import (
    SERVICE_INDICATORS,
    ContentsCategory,
    CustomsCase,
    CustomsState,
    Parcel,
    Service,
)
from tracking.services.customs import customs_fees_iqd, record_prepaid_customs
from tracking.services.lookup import public_view
from tracking.services.parcels import Address, Article, ParcelDraft, register_inbound

B = BuyRequestStatus
IQD = "IQD"


@dataclass(frozen=True)
class Landed:
    """A landed cost in dinars, line by line."""

    rate: str
    rate_id: int | None
    unit_price_iqd: int
    items_iqd: int
    shipping_fee: int
    duty_rate_bps: int
    duty_estimate: int
    service_fee: int
    customs_fees: int = 0  # customs' inspection and stamp fees, their own line

    @property
    def total(self) -> int:
        return (self.items_iqd + self.shipping_fee + self.duty_estimate + self.customs_fees
                + self.service_fee)


def _rate(currency: str) -> tuple[Decimal, int]:
    try:
        row = rate_at(currency, IQD)
    except NoExchangeRate:
        raise ValidationFailed(
            _l("We cannot price this currency right now. Choose another or try later."),
            fields={"currency": _l("No exchange rate is set for it.")}) from None
    return Decimal(row.rate), row.id


def landed_cost(*, unit_price: int, currency: str, quantity: int, weight_g: int,
                category: str, shipping_fee: int | None = None) -> Landed:
    """The landed cost of `quantity` items at `unit_price` (minor units of `currency`)
    weighing `weight_g` each, at today's stored rate. Changes nothing. Raises
    ValidationFailed for an unknown category or a currency without a rate."""
    cat = fees.customs_category(category)
    if cat is None:
        raise ValidationFailed(_l("Choose a customs category."),
                               fields={"customs_category": _l("Choose one.")})
    rate, rate_id = _rate(currency)
    unit_iqd = convert(unit_price, currency, IQD, rate)
    items = unit_iqd * quantity
    duty_bps = fees.category_duty_bps(cat)
    return Landed(
        rate=f"{rate.normalize():f}", rate_id=rate_id, unit_price_iqd=unit_iqd,
        items_iqd=items,
        shipping_fee=fees.international_shipping(weight_g * quantity)
        if shipping_fee is None else shipping_fee,
        duty_rate_bps=duty_bps, duty_estimate=fees.bps_of(items, duty_bps),
        customs_fees=customs_fees_iqd(), service_fee=fees.service_fee(items))


def _load(data: dict[str, Any]) -> dict[str, Any]:
    try:
        values = BuyRequestSchema().load(data)
    except ValidationError as exc:
        fields = {k: v if isinstance(v, list) else [v] for k, v in exc.messages.items()}
        first = next(iter(fields.values()))[0]
        raise ValidationFailed(first, fields=fields) from None
    values["unit_price"] = to_minor(values.pop("price"), values["currency"])
    if values["unit_price"] <= 0:
        raise ValidationFailed(_l("Write the price, above zero."),
                               fields={"price": [_l("Write the price, above zero.")]})
    values["options"] = " ".join(values["options"].split())
    values["title"] = " ".join(values["title"].split())
    return values


def estimate(data: dict[str, Any]) -> tuple[dict[str, Any], Landed]:
    """Check a request's fields and estimate its landed cost. Changes nothing. Raises
    ValidationFailed (a link that is not http(s), a price that is not a number, ...)."""
    values = _load(data)
    return values, landed_cost(unit_price=values["unit_price"], currency=values["currency"],
                               quantity=values["quantity"], weight_g=values["weight_g"],
                               category=values["customs_category"])


def _apply(req: BuyRequest, cost: Landed) -> None:
    req.rate, req.rate_id = cost.rate, cost.rate_id
    req.items_iqd, req.shipping_fee = cost.items_iqd, cost.shipping_fee
    req.duty_estimate, req.service_fee = cost.duty_estimate, cost.service_fee
    req.customs_fees = cost.customs_fees
    req.total = cost.total


def submit_request(user_id: int, data: dict[str, Any]) -> BuyRequest:
    """A shopper asks the post to buy an article abroad: the request is stored with its
    estimate for procurement to review, the first step of its history is recorded and
    buy_request.submitted published. Flushes. Raises ValidationFailed."""
    values, cost = estimate(data)
    req = BuyRequest(number=new_number("BF"), user_id=user_id, created_at=utcnow(), **values)
    _apply(req, cost)
    req.estimate_total = cost.total
    db.add(req)
    record_submitted(req, actor_id=user_id)
    return req


class RequestAlreadyPriced(BuyRequestStateError):
    """The shopper tried to change or withdraw a request procurement already answered."""

    code = "buy_request_priced"


def _changeable(request_id: int, user_id: int) -> BuyRequest:
    """The shopper's own request, locked, while it still waits for our price (procurement
    quoting takes the same lock, so an edit and a quote never cross). Raises NotFound,
    RequestAlreadyPriced."""
    req = _lock(request_id)
    if req.user_id != user_id:
        raise NotFound()
    if req.status != B.SUBMITTED:
        raise RequestAlreadyPriced(
            _l("This request can no longer be changed or cancelled: we have already "
               "answered it. You can accept the price or let it expire.")
            if req.status == B.QUOTED else
            _l("This request can no longer be changed or cancelled."))
    return req


def edit_request(request_id: int, user_id: int, data: dict[str, Any]) -> BuyRequest:
    """The shopper corrects a request that waits for our price: its fields and estimate
    are replaced (checked as when it was sent), and the change is audited. Flushes.
    Raises NotFound (not theirs), RequestAlreadyPriced (quoted, rejected, cancelled...),
    ValidationFailed (nothing is changed)."""
    values, cost = estimate(data)
    req = _changeable(request_id, user_id)
    before = {"title": req.title, "quantity": req.quantity, "unit_price": req.unit_price,
              "currency": req.currency, "total": req.total}
    for name, value in values.items():
        setattr(req, name, value)
    _apply(req, cost)
    req.estimate_total = cost.total
    record_audit("buy_request.edited", object_type="buy_request", object_id=req.id,
                 actor_id=user_id, details={"before": before, "after": {
                     "title": req.title, "quantity": req.quantity,
                     "unit_price": req.unit_price, "currency": req.currency,
                     "total": req.total}})
    db.flush()
    return req


def cancel_request(request_id: int, user_id: int) -> BuyRequest:
    """The shopper withdraws a request that waits for our price: it moves to cancelled
    (buy_request.cancelled) and procurement no longer sees it waiting. Flushes. Raises
    NotFound, RequestAlreadyPriced."""
    req = _changeable(request_id, user_id)
    move_request(req, B.CANCELLED, actor_id=user_id, reason="withdrawn by the shopper")
    return req


def expected_answer(req: BuyRequest) -> Any:
    """When the shopper may expect our price for a request that waits for it (UTC), or
    None once it is answered."""
    if req.status != B.SUBMITTED:
        return None
    return req.created_at + timedelta(hours=int(current_app.config["SHOP_QUOTE_ANSWER_HOURS"]))


def open_requests_of(user_id: int) -> list[BuyRequest]:
    """The shopper's requests not yet an order (an accepted one appears as its order)."""
    return [r for r in requests_of(user_id) if r.order_id is None]


def requests_of(user_id: int) -> list[BuyRequest]:
    return list(db.scalars(select(BuyRequest).where(BuyRequest.user_id == user_id)
                           .order_by(BuyRequest.id.desc())))


def owned_request(request_id: int, user_id: int) -> BuyRequest:
    """The shopper's own request; NotFound (404) for anyone else's."""
    req = db.get(BuyRequest, request_id)
    if req is None or req.user_id != user_id:
        raise NotFound()
    return req


def _lock(request_id: int) -> BuyRequest:
    req = db.scalar(select(BuyRequest).where(BuyRequest.id == request_id)
                    .with_for_update(of=BuyRequest).execution_options(populate_existing=True))
    if req is None:
        raise NotFound()
    return req


# -- procurement ---------------------------------------------------------------------------

def requests_for_review(status: str | None = None, *, limit: int = 200) -> list[BuyRequest]:
    """Requests for the procurement queue, oldest waiting first."""
    stmt = select(BuyRequest).order_by(BuyRequest.created_at, BuyRequest.id).limit(limit)
    if status:
        stmt = stmt.where(BuyRequest.status == status)
    return list(db.scalars(stmt))


def get_request(request_id: int) -> BuyRequest:
    req = db.get(BuyRequest, request_id)
    if req is None:
        raise NotFound()
    return req


def approve_request(request_id: int, *, reviewer_id: int, data: dict[str, Any]) -> BuyRequest:
    """Procurement approves a submitted request with a final quote: the price, the
    weight and the international shipping may be adjusted; the landed cost is
    recomputed at today's stored rate and stays open for SHOP_QUOTE_VALID_HOURS.
    Audited; the request moves to quoted (buy_request.quoted). Flushes. Raises NotFound,
    ValidationFailed, BuyRequestStateError (not waiting for review)."""
    try:
        values = QuoteSchema().load(data)
    except ValidationError as exc:
        raise ValidationFailed(_l("Check the quote."), fields=exc.messages) from None
    req = _lock(request_id)
    # Refuse a request not waiting for review before anything is recomputed.
    check_move(req, B.QUOTED)
    before = {"unit_price": req.unit_price, "weight_g": req.weight_g, "total": req.total}
    if values["price"] is not None:
        req.unit_price = to_minor(values["price"], req.currency)
    if values["weight_g"] is not None:
        req.weight_g = values["weight_g"]
    _apply(req, landed_cost(unit_price=req.unit_price, currency=req.currency,
                            quantity=req.quantity, weight_g=req.weight_g,
                            category=req.customs_category,
                            shipping_fee=values["shipping_fee"]))
    req.quote_note = values["note"]
    req.reviewer_id, req.reviewed_at = reviewer_id, utcnow()
    hours = int(current_app.config["SHOP_QUOTE_VALID_HOURS"])
    req.quote_expires_at = utcnow() + timedelta(hours=hours)
    record_audit("buy_request.quoted", object_type="buy_request", object_id=req.id,
                 actor_id=reviewer_id, details={"before": before, "total": req.total,
                                                "note": req.quote_note})
    move_request(req, B.QUOTED, actor_id=reviewer_id, reason=req.quote_note,
                 total=req.total)
    return req


def reject_request(request_id: int, *, reviewer_id: int, reason: str) -> BuyRequest:
    """Procurement rejects a submitted request, saying why (the shopper sees it).
    Audited; the request moves to rejected (buy_request.rejected). Flushes. Raises
    NotFound, ValidationFailed (no reason), BuyRequestStateError."""
    reason = " ".join((reason or "").split())[:500]
    if not reason:
        raise ValidationFailed(_l("Say why the request is rejected."),
                               fields={"reason": [_l("Write a reason.")]})
    req = _lock(request_id)
    req.reject_reason = reason
    req.reviewer_id, req.reviewed_at = reviewer_id, utcnow()
    move_request(req, B.REJECTED, actor_id=reviewer_id, reason=reason)
    record_audit("buy_request.rejected", object_type="buy_request", object_id=req.id,
                 actor_id=reviewer_id, details={"reason": reason})
    return req


# Where a web shop most likely ships from when the clerk does not say: its country
# domain first (shop.com.tr), else its currency. The euro names no one country.
_ORIGIN_BY_CURRENCY = {"USD": "US", "TRY": "TR", "AED": "AE", "CNY": "CN", "GBP": "GB",
                       "JPY": "JP", "SAR": "SA", "JOD": "JO", "KWD": "KW", "IRR": "IR"}
_NOT_COUNTRY_DOMAINS = {"com", "net", "org", "shop", "store", "io", "co", "info", "biz"}


def likely_origin(req: BuyRequest) -> str | None:
    """The country a request's web shop probably ships from (ISO code), or None."""
    host = (urlsplit(req.url).hostname or "").lower()
    tld = host.rsplit(".", 1)[-1] if "." in host else ""
    if len(tld) == 2 and tld.isalpha() and tld not in _NOT_COUNTRY_DOMAINS:
        code = "GB" if tld == "uk" else tld.upper()
        if code != "IQ":
            return code
    return _ORIGIN_BY_CURRENCY.get(req.currency)


def _shop_host(req: BuyRequest) -> str:
    host = (urlsplit(req.url).hostname or "").lower()
    return host.removeprefix("www.") or req.url[:200]


def _inbound_number(foreign_tracking_number: str, order_ref: str) -> str:
    """The S10 number the parcel is followed under: the carrier's own when it is an S10
    of a post abroad (that post's events then arrive under it), else a new Iraqi one."""
    validity = s10.validate(foreign_tracking_number) if foreign_tracking_number else None
    if validity and not validity.number.endswith(s10.COUNTRY):
        taken = db.scalar(select(Parcel.order_ref)
                          .where(Parcel.tracking_number == validity.number))
        if taken is not None and taken != order_ref:
            raise ValidationFailed(
                _l("Another parcel already has this tracking number. Check it."),
                fields={"foreign_tracking_number": [_l("Already used.")]})
        return validity.number
    return s10.next_identifier(SERVICE_INDICATORS[Service.PARCEL])


def _inbound_draft(req: BuyRequest, order: Order, ships_from: str,
                   hs_code: str) -> ParcelDraft:
    """The parcel tracking expects from abroad: the web shop sends, the shopper's
    delivery choice receives, the article declared as bought (value in the shop's
    currency, for customs)."""
    description = req.title if not req.options else f"{req.title} ({req.options})"
    weight = req.weight_g * req.quantity
    return ParcelDraft(
        sender=Address(name=_shop_host(req), country=ships_from, address=req.url[:300]),
        recipient=Address(name=order.recipient_name, phone=order.phone,
                          governorate=order.governorate, district=order.district or "",
                          landmark=order.landmark or ""),
        weight_grams=weight, service=Service.PARCEL,
        articles=[Article(description=description[:300], quantity=req.quantity,
                          net_weight_grams=weight, value_amount=req.unit_price * req.quantity,
                          value_currency=req.currency, hs_code=hs_code,
                          origin_country=ships_from)],
        customs_category=ContentsCategory.SALE_OF_GOODS,
        pickup_office_id=order.pickup_office_id,
        invoice_number=req.foreign_order_number[:64], importer_reference=req.number)


def _hs_code(req: BuyRequest, given: str) -> str:
    code = "".join((given or "").split()).replace(".", "")
    if not code:
        cat = fees.customs_category(req.customs_category)
        code = cat.hs.ljust(6, "0") if cat and cat.hs else ""
    if not (code.isdigit() and 6 <= len(code) <= 10):
        raise ValidationFailed(_l("Write the 6-digit HS tariff number of the article."),
                               fields={"hs_code": [_l("6 to 10 digits.")]})
    return code


def record_purchase(request_id: int, *, clerk_id: int, foreign_order_number: str,
                    foreign_tracking_number: str = "", ships_from: str = "",
                    hs_code: str = "") -> BuyRequest:
    """Procurement bought the article abroad: the foreign shop's order number (and
    carrier tracking number, if any) are kept, the order is being processed, and an
    inbound international parcel is registered in tracking for the shopper to follow.

    The parcel carries order_ref "consignment:<id>" (the request's one consignment), so
    its events move the consignment and order like any shop parcel (arrival in Iraq:
    shipped; delivery: delivered). Tracking's `register_inbound` needs an S10 number:
    a carrier number that is an S10 of a post abroad is used as it is (the partner
    post's events arrive under it); any other (a courier's, or none) gets a new Iraqi
    S10 now, which the office of exchange puts on the parcel when it arrives and which
    the shopper can follow from today; the carrier's number stays on the request. The
    declaration: the web shop in `ships_from` (ISO code; guessed from the link or the
    currency when empty) sends the article as bought (title and options, quantity,
    price times quantity in the shop's currency, weight, `hs_code` or the category's)
    to the shopper's delivery choice; invoice = the foreign order number.

    All of it - the request, the consignment's acknowledgement and its link to the
    parcel, the audit record, the event and tracking's parcel - belongs to the caller's
    one unit of work (tracking's `register_inbound` only flushes). The request moves to
    purchased (buy_request.purchased). Flushes. Raises NotFound, ValidationFailed (no
    order number, unknown origin, no HS code, a carrier S10 that belongs to another
    parcel, a declaration tracking refuses), BuyRequestStateError (not paid).
    """
    number = " ".join((foreign_order_number or "").split())[:80]
    if not number:
        raise ValidationFailed(_l("Write the foreign shop's order number."),
                               fields={"foreign_order_number": [_l("Required.")]})
    req = _lock(request_id)
    # Refuse a request that is not paid before reading the rest of the form.
    check_move(req, B.PURCHASED)
    req.foreign_order_number = number
    req.foreign_tracking_number = " ".join((foreign_tracking_number or "").split())[:80]
    origin = (ships_from or "").strip().upper() or likely_origin(req) or ""
    if len(origin) != 2 or not origin.isalpha() or origin == "IQ" \
            or origin not in Locale("en").territories:
        raise ValidationFailed(_l("Choose the country the parcel ships from."),
                               fields={"ships_from": [_l("Choose a country.")]})
    order = db.get(Order, req.order_id) if req.order_id else None
    if order is None or not order.consignments:
        raise BuyRequestStateError(_l("This request has no paid order."))
    c = order.consignments[0]
    order_ref = f"consignment:{c.id}"
    acknowledge_consignment(c.id, actor_id=clerk_id)
    draft = _inbound_draft(req, order, origin, _hs_code(req, hs_code))
    parcel_number = _inbound_number(req.foreign_tracking_number, order_ref)
    record_audit("buy_request.purchased", object_type="buy_request", object_id=req.id,
                 actor_id=clerk_id, details={"foreign_order_number": number,
                                             "tracking_number": parcel_number})
    move_request(req, B.PURCHASED, actor_id=clerk_id, reason=number,
                 tracking_number=parcel_number)
    parcel = register_inbound(parcel_number, draft, order_ref=order_ref)
    # What the quote took for duty and fees is credited by customs on arrival.
    record_prepaid_customs(parcel.id, duty_iqd=c.duty_estimate, fees_iqd=c.customs_fees,
                           actor_id=clerk_id, reference=order_ref)
    linked = db.get(Consignment, c.id)
    if linked is not None and linked.parcel_id is None:
        linked.parcel_id, linked.tracking_number = parcel.id, parcel.tracking_number
        db.flush()
    return req


def refund_prepaid_excess(case_id: int) -> int:
    """Customs released a buy-for-me parcel having assessed less duty and fees than the
    quote took: the excess goes back to the order's payment, to where it came from (the
    post card through the ledger, a bank card through a Stripe refund). Audited; the
    order's refunded amount follows through refund.succeeded.

    Safe to run twice: the refund's idempotency key names the case, so a repeat finds
    the refund already made and changes nothing. Returns the dinars refunded now (0
    when nothing is owed, the parcel is not a buy-for-me purchase, or it was refunded
    already). Flushes. Raises payments' refund errors (the job is retried).
    """
    case = db.get(CustomsCase, case_id)
    if case is None or case.state != CustomsState.RELEASED or case.prepaid_excess_iqd <= 0:
        return 0
    kind, _, raw = (case.parcel.order_ref or "").partition(":")
    c = db.get(Consignment, int(raw)) if kind == "consignment" and raw.isdigit() else None
    if c is None or c.order.kind != OrderKind.BUY_FOR_ME:
        return 0
    order = lock_order(c.order_id)
    if order.payment_id is None:
        return 0
    key = f"order:{order.id}:customs-excess:{case.id}"
    if payments.refund_made_with(key) is not None:
        return 0
    # Never more than is left of the payment (part of it may have gone back already).
    excess = min(case.prepaid_excess_iqd, payments.get_payment(order.payment_id).refundable)
    if excess <= 0:
        return 0
    refund = payments.refund(order.payment_id, excess,
                             "customs assessed less duty and fees than the quote", None, key)
    record_audit("order.customs_excess_refunded", object_type="order", object_id=order.id,
                 details={"case_id": case.id, "prepaid_iqd": case.prepaid_iqd,
                          "assessed_iqd": case.assessed_total_iqd, "amount": excess,
                          "payment_id": order.payment_id, "refund_id": refund.id})
    return excess


def request_parcel(req: BuyRequest, locale: str) -> dict[str, Any] | None:
    """What the shopper may see of the parcel bought for `req` (tracking's public view:
    number, status, events newest first), or None before it is registered."""
    if req.order_id is None:
        return None
    number = db.scalar(select(Consignment.tracking_number)
                       .where(Consignment.order_id == req.order_id,
                              Consignment.tracking_number.is_not(None)))
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == number)) \
        if number else None
    return public_view(parcel, locale) if parcel is not None else None


# -- the shopper accepts -------------------------------------------------------------------

@dataclass
class AcceptQuote:
    """The quote as the shopper accepts it: the quoted landed cost plus delivery in Iraq."""

    request: BuyRequest
    destination: Destination
    zone: str
    delivery_fee: int

    @property
    def total(self) -> int:
        return self.request.total + self.delivery_fee

    @property
    def digest(self) -> str:
        raw = f"{self.request.id}|{self.request.total}|{self.destination.key()}|" \
              f"{self.zone}|{self.delivery_fee}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _check_open(req: BuyRequest) -> None:
    if req.status != B.QUOTED:
        raise BuyRequestStateError(_l("This quote is not open for acceptance."))
    if req.quote_expires_at is None or req.quote_expires_at <= utcnow():
        raise BuyRequestStateError(_l("This quote has expired. Send a new request."))


def quote_for(req: BuyRequest, dest: Destination) -> AcceptQuote:
    """What accepting `req` for delivery to `dest` costs. Changes nothing."""
    zone = fees.zone_for(None, dest.governorate)
    weight = req.weight_g * req.quantity
    return AcceptQuote(req, dest, zone, fees.delivery_fee(zone, weight, door=dest.door))


def _draft(req: BuyRequest, q: AcceptQuote) -> OrderDraft:
    """The accepted quote as the order create_order writes: one consignment with no
    merchant (the post buys it) and one line, the article as quoted."""
    cat = fees.customs_category(req.customs_category)
    return OrderDraft(
        kind=OrderKind.BUY_FOR_ME, destination=q.destination,
        rates={req.currency: {"rate": req.rate, "id": req.rate_id}},
        consignments=[ConsignmentDraft(
            merchant_id=None, zone=q.zone, international=True,
            weight_g=req.weight_g * req.quantity, items_total=req.items_iqd,
            delivery_fee=q.delivery_fee, shipping_fee=req.shipping_fee,
            duty_estimate=req.duty_estimate, customs_fees=req.customs_fees,
            service_fee=req.service_fee,
            lines=[LineDraft(
                product=None, title_ar=req.title, title_en=req.title, options=req.options,
                quantity=req.quantity, unit_price=req.unit_price, currency=req.currency,
                rate=req.rate, rate_id=req.rate_id,
                unit_price_iqd=req.items_iqd // req.quantity,
                line_total_iqd=req.items_iqd, weight_g=req.weight_g,
                hs_code=(cat.hs.ljust(6, "0") if cat and cat.hs else None),
                duty_rate_bps=fees.category_duty_bps(cat) if cat else 0,
                duty_estimate=req.duty_estimate)])])


def accept_quote(request_id: int, user_id: int, dest_args: dict[str, Any], *,
                 payment: PaymentChoice, seen_digest: str, checkout_key: str) -> Order:
    """The shopper accepts procurement's quote: create_order places an order awaiting
    payment for the quoted amounts plus delivery in Iraq (order.placed), with the post
    card held when paying with one (as at checkout), and the request moves to accepted
    (audited). A repeated `checkout_key` returns the order already placed with it.
    Flushes.

    Raises NotFound (not theirs), BuyRequestStateError (not quoted, or expired),
    PriceChanged (the delivery choice priced differently from what they saw),
    ValidationFailed, and the post card's errors.
    """
    owned_request(request_id, user_id)
    user = db.get(User, user_id)
    if user is None:
        raise NotFound()
    # The request row lock queues a double click behind the first submission, which
    # then finds the order the first one placed (create_order's replay).
    req = _lock(request_id)

    def price() -> OrderDraft:
        _check_open(req)
        q = quote_for(req, destination_for(user, **dest_args))
        if q.digest != seen_digest:
            raise PriceChanged(q)
        return _draft(req, q)

    placed = create_order(user, payment=payment, checkout_key=checkout_key, price=price)
    if placed.replayed:
        return placed.order
    order = placed.order
    req.order_id = order.id
    move_request(req, B.ACCEPTED, actor_id=user_id, reason=order.number)
    record_audit("buy_request.accepted", object_type="buy_request", object_id=req.id,
                 actor_id=user_id, details={"order_id": order.id, "total": order.total})
    return order


def expire_quotes(*, now: Any = None) -> list[int]:
    """Quotes the shopper let run out become expired (each step recorded, and
    buy_request.expired published). Flushes. Returns the ids."""
    now = now or utcnow()
    rows = list(db.scalars(select(BuyRequest).where(
        BuyRequest.status == B.QUOTED, BuyRequest.quote_expires_at < now)
        .with_for_update(skip_locked=True)))
    for req in rows:
        move_request(req, B.EXPIRED, reason="quote not accepted in time")
    return [r.id for r in rows]
