"""Orders and consignments: their state machines and what moves them.

Each has an explicit table of allowed moves, and one function applies a move, records
who and when (OrderEvent) and publishes the event (`order.paid`, `consignment.ready`,
...). An order becomes paid only from payments' `payment.succeeded`; parcels move
consignments along through tracking's `parcel.status_changed` / `parcel.delivered`
(a parcel made for a consignment carries order_ref "consignment:<id>"). A buy-for-me
request follows its order through shop.services.buy_request_states. Every function
here flushes; whatever started the use case owns the unit of work that commits it.

Locks are taken in one order: the order row, then stock rows (product id order), then
ledger accounts (inside payments).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import Conflict, NotFound
from app.events import DomainEvent, publish
from payments import services as payments
from payments.models import PaymentStatus
from payments.payables import Described
from payments.services import CardPaymentStart
from shop.models import (
    Consignment,
    ConsignmentStatus,
    Order,
    OrderEvent,
    OrderKind,
    OrderStatus,
)
from shop.services import catalog, settlement
from shop.services.buy_request_states import request_order_closed, request_paid
from shop.services.references import ORDER_KIND

O = OrderStatus  # noqa: E741  (as S = PaymentStatus in payments)
C = ConsignmentStatus

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    O.PENDING_PAYMENT: frozenset({O.PAID, O.CANCELLED, O.EXPIRED}),
    # Parcel events come late and out of order, so fulfilment may skip a step.
    O.PAID: frozenset({O.PROCESSING, O.SHIPPED, O.DELIVERED, O.CANCELLED,
                       O.PARTIALLY_REFUNDED, O.REFUNDED}),
    O.PROCESSING: frozenset({O.SHIPPED, O.DELIVERED, O.CANCELLED, O.PARTIALLY_REFUNDED,
                             O.REFUNDED}),
    O.SHIPPED: frozenset({O.DELIVERED, O.PARTIALLY_REFUNDED, O.REFUNDED}),
    O.DELIVERED: frozenset({O.PARTIALLY_REFUNDED, O.REFUNDED}),
    # What is left of a partly refunded order is still fulfilled.
    O.PARTIALLY_REFUNDED: frozenset({O.PROCESSING, O.SHIPPED, O.DELIVERED,
                                     O.PARTIALLY_REFUNDED, O.REFUNDED}),
    O.CANCELLED: frozenset(),
    O.EXPIRED: frozenset(),
    O.REFUNDED: frozenset(),
}
CONSIGNMENT_TRANSITIONS: dict[ConsignmentStatus, frozenset[ConsignmentStatus]] = {
    C.AWAITING_PAYMENT: frozenset({C.OPEN, C.CANCELLED, C.EXPIRED}),
    C.OPEN: frozenset({C.READY, C.SHIPPED, C.DELIVERED, C.CANCELLED}),
    C.READY: frozenset({C.SHIPPED, C.DELIVERED, C.CANCELLED}),
    C.SHIPPED: frozenset({C.DELIVERED}),
    C.DELIVERED: frozenset(),
    C.CANCELLED: frozenset(),
    C.EXPIRED: frozenset(),
}
CLOSED = frozenset({O.CANCELLED, O.EXPIRED, O.REFUNDED})
# The shopper may cancel until a parcel exists for any part of the order.
CANCELLABLE = frozenset({O.PENDING_PAYMENT, O.PAID, O.PROCESSING})
_FULFILMENT_RANK = {O.PAID: 1, O.PROCESSING: 2, O.SHIPPED: 3, O.DELIVERED: 4}
# Parcel statuses that mean the post has the consignment.
_PARCEL_MOVING = frozenset({"picked_up", "in_transit", "on_hold", "out_for_delivery",
                            "ready_for_pickup", "delivery_failed", "delivery_delayed"})


class OrderStateError(Conflict):
    code = "order_state"


class NotCancellable(Conflict):
    code = "not_cancellable"


def order_payload(order: Order, **extra: Any) -> dict[str, Any]:
    return {"order_id": order.id, "number": order.number, "status": order.status,
            "kind": order.kind, "total": order.total, "currency": order.currency,
            "merchant_ids": sorted({c.merchant_id for c in order.consignments
                                    if c.merchant_id is not None}),
            "consignment_ids": [c.id for c in order.consignments], **extra}


def apply_transition(order: Order, to: OrderStatus, *, actor_id: int | None = None,
                     reason: str = "") -> bool:
    """Move `order` to `to`, record it, and publish `order.<to>`. Flushes.

    A move to the status it already has changes nothing (returns False), except
    partially_refunded, which records each further partial refund. Raises
    OrderStateError for a move the table does not allow.
    """
    frm = OrderStatus(order.status)
    if frm == to and to != O.PARTIALLY_REFUNDED:
        return False
    if to not in ORDER_TRANSITIONS[frm]:
        raise OrderStateError(_l("This order cannot go from %(a)s to %(b)s.", a=str(frm),
                                 b=str(to)))
    now = utcnow()
    order.status = to
    order.status_changed_at = now
    if to == O.PAID:
        order.paid_at = now
    if to in CLOSED:
        order.closed_at = now
    db.add(OrderEvent(order_id=order.id, from_status=frm, to_status=to, actor_id=actor_id,
                      reason=reason[:300], occurred_at=now))
    db.flush()
    publish(f"order.{to}", order_payload(order, previous_status=str(frm)))
    return True


def apply_consignment_transition(c: Consignment, to: ConsignmentStatus, *,
                                 actor_id: int | None = None, reason: str = "") -> bool:
    """Move a consignment to `to`, record it, publish `consignment.<to>`. Flushes.
    Returns False when it already is there; raises OrderStateError for a move the table
    does not allow."""
    frm = ConsignmentStatus(c.status)
    if frm == to:
        return False
    if to not in CONSIGNMENT_TRANSITIONS[frm]:
        raise OrderStateError(_l("This consignment cannot go from %(a)s to %(b)s.",
                                 a=str(frm), b=str(to)))
    now = utcnow()
    c.status = to
    c.status_changed_at = now
    stamp = {C.READY: "ready_at", C.SHIPPED: "shipped_at", C.DELIVERED: "delivered_at"}
    if to in stamp and getattr(c, stamp[to]) is None:
        setattr(c, stamp[to], now)
    db.add(OrderEvent(order_id=c.order_id, consignment_id=c.id, from_status=frm,
                      to_status=to, actor_id=actor_id, reason=reason[:300], occurred_at=now))
    db.flush()
    publish(f"consignment.{to}", {
        "consignment_id": c.id, "order_id": c.order_id, "merchant_id": c.merchant_id,
        "status": str(to), "previous_status": str(frm),
        "tracking_number": c.tracking_number})
    return True


def record_placed(order: Order, *, actor_id: int | None) -> None:
    """The first line of an order's history and its order.placed event. Flushes."""
    db.add(OrderEvent(order_id=order.id, from_status=None, to_status=order.status,
                      actor_id=actor_id, reason="placed", occurred_at=order.placed_at))
    db.flush()
    if "consignments" in inspect(order).unloaded:
        # create_order's orders carry theirs in memory; any other is read back.
        db.refresh(order, ["consignments"])
    publish("order.placed", order_payload(order))


def lock_order(order_id: int) -> Order:
    order = db.scalar(select(Order).where(Order.id == order_id).with_for_update(of=Order)
                      .execution_options(populate_existing=True))
    if order is None:
        raise NotFound()
    return order


def _follow_fulfilment(order: Order, *, actor_id: int | None, reason: str) -> None:
    """Bring the order's status in line with its consignments (forward only)."""
    live = [c for c in order.consignments
            if c.status not in (C.CANCELLED, C.EXPIRED)]
    if not live:
        return
    if all(c.status == C.DELIVERED for c in live):
        target = O.DELIVERED
    elif all(c.status in (C.SHIPPED, C.DELIVERED) for c in live):
        target = O.SHIPPED
    elif any(c.status != C.OPEN or c.acknowledged_at for c in live):
        target = O.PROCESSING
    else:
        return
    current = OrderStatus(order.status)
    if current in CLOSED or current == O.PENDING_PAYMENT:
        return
    if current != O.PARTIALLY_REFUNDED and \
            _FULFILMENT_RANK.get(target, 0) <= _FULFILMENT_RANK.get(current, 0):
        return
    apply_transition(order, target, actor_id=actor_id, reason=reason)


# -- payment -------------------------------------------------------------------------------

def _release_stock(order: Order, consignments: list[Consignment]) -> None:
    """Give the units of `consignments` back to stock (`stock = stock + n` in SQL, in
    product id order: catalog.give_back_stock)."""
    ids = {c.id for c in consignments}
    wanted: dict[int, int] = {}
    for line in order.lines:
        if line.consignment_id in ids and line.product_id is not None:
            wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    catalog.give_back_stock(wanted)


def _refund_order_payment(order: Order, amount: int, *, reason: str, key: str,
                          actor_id: int | None) -> None:
    if amount <= 0 or order.payment_id is None:
        return
    payments.refund(order.payment_id, amount, reason, actor_id, f"order:{order.id}:{key}")
    order.refunded_amount = min(order.total, order.refunded_amount + amount)


def _void_or_leave(order: Order, *, actor_id: int | None, reason: str) -> None:
    """Release an unpaid order's post-card hold; a Stripe payment still pending is left
    to Stripe: if it succeeds after all, on_payment_succeeded refunds it."""
    for p in payments.payments_for(ORDER_KIND, str(order.id)):
        if payments.is_open_hold(p):
            payments.void_payment(p.id, actor_id=actor_id, reason=reason)


def _release_other_holds(order: Order, paid_by: int) -> None:
    """Paid another way (a bank card after a post-card hold): the hold goes back now
    rather than when it runs out."""
    for p in payments.payments_for(ORDER_KIND, str(order.id)):
        if p.id != paid_by and payments.is_open_hold(p):
            payments.void_payment(p.id, reason="order paid by another payment")


def start_card_payment(order_id: int, user_id: int) -> CardPaymentStart:
    """Start paying an order awaiting payment with a bank card (Stripe, charged in USD at
    the stored rate). Returns payments' CardPaymentStart for its card page; the order
    becomes paid only when payment.succeeded arrives. Flushes (the payment row). Raises
    NotFound (not theirs), OrderStateError (not awaiting payment),
    CardPaymentsUnavailable, NoExchangeRate."""
    order = owned_order(order_id, user_id)
    order = lock_order(order.id)
    if order.status != O.PENDING_PAYMENT or order.expires_at is None \
            or order.expires_at <= utcnow():
        raise OrderStateError(_l("This order is not waiting for payment."))
    return payments.start_card_payment(
        amount=order.total, currency=order.currency, reference_kind=ORDER_KIND,
        reference_id=str(order.id), purpose=ORDER_KIND, payer_user_id=user_id,
        idempotency_key=f"order:{order.id}:card")


def _locked_order_of(data: dict[str, Any]) -> Order | None:
    """The order a payments event is about, locked; None when it is about something else
    or an order that does not exist."""
    if data.get("reference_kind") != ORDER_KIND:
        return None
    try:
        return lock_order(int(data["reference_id"]))
    except (NotFound, ValueError):
        return None


def _mark_paid(order: Order, pid: int) -> None:
    """The locked, waiting `order` is paid by payment `pid`: its status, its other holds
    released, its consignments open, the merchants' sales booked, a buy-for-me request
    told. Flushes."""
    order.payment_id = pid
    apply_transition(order, O.PAID, reason=f"payment {pid} succeeded")
    _release_other_holds(order, pid)
    for c in order.consignments:
        apply_consignment_transition(c, C.OPEN, reason="paid")
    settlement.book_sales(order)
    if order.kind == OrderKind.BUY_FOR_ME:
        request_paid(order.id)


def on_payment_succeeded(event: DomainEvent) -> None:
    """A payment for an order succeeded: the order becomes paid (once).

    If the order is no longer waiting (it expired, was cancelled, or another payment
    paid it first) the money is given back at once. Flushes; the job commits.
    """
    data = event.payload
    order = _locked_order_of(data)
    if order is None:
        return
    pid = int(data["payment_id"])
    if order.status == O.PENDING_PAYMENT:
        _mark_paid(order, pid)
        return
    if order.payment_id == pid and order.status not in (O.CANCELLED, O.EXPIRED):
        return  # the same news twice
    # Money that arrived for an order already closed, or a second payment of a paid
    # order: give it back (a repeat finds nothing left to refund).
    p = payments.get_payment(pid)
    if p.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED) and p.refundable:
        payments.refund(pid, p.refundable, "order no longer awaiting payment", None,
                        f"order:{order.id}:late:{pid}")
        record_audit("order.late_payment_refunded", object_type="order", object_id=order.id,
                     details={"payment_id": pid, "status": order.status})


def on_refund_succeeded(event: DomainEvent) -> None:
    """A refund of an order's payment (ours, or one made in the Stripe dashboard): the
    order's refunded amount follows the payment's, and a paid order becomes partially
    refunded or refunded. Flushes; the job commits."""
    data = event.payload
    order = _locked_order_of(data)
    if order is None:
        return
    if order.payment_id != int(data["payment_id"]):
        return  # a late duplicate payment given back: not this order's money
    order.refunded_amount = min(order.total, int(data.get("refunded_amount") or 0))
    if order.status in CLOSED or order.status == O.PENDING_PAYMENT \
            or order.refunded_amount <= 0:
        return
    to = O.REFUNDED if order.refunded_amount >= order.total else O.PARTIALLY_REFUNDED
    if to == O.PARTIALLY_REFUNDED and order.status == O.PARTIALLY_REFUNDED:
        return  # recorded when the partial refund was made here
    apply_transition(order, to, reason="refund")


def confirm_order(order_id: int) -> bool:
    """Confirm a placed order: capture the post-card hold taken at checkout and mark the
    order paid in the same transaction (the shopper waits for "paid"; the captured
    payment's payment.succeeded then finds it paid and changes nothing). Does nothing
    for an order that is no longer waiting, or whose payment is not a hold. Flushes; the
    job commits. Returns whether a hold was captured."""
    order = lock_order(order_id)
    if order.status != O.PENDING_PAYMENT or order.payment_id is None:
        return False
    p = payments.get_payment(order.payment_id)
    if not payments.is_open_hold(p):
        return False
    captured = payments.capture_payment(p.id, actor_id=None)
    if captured.status == PaymentStatus.SUCCEEDED:
        _mark_paid(order, captured.id)
    return True


# -- the shopper ---------------------------------------------------------------------------

def orders_of(user_id: int, *, limit: int = 100) -> list[Order]:
    """The shopper's orders, newest first."""
    return list(db.scalars(select(Order).where(Order.user_id == user_id)
                           .order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit)))


def owned_order(order_id: int, user_id: int) -> Order:
    """The shopper's own order; NotFound (404) for anyone else's."""
    order = db.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise NotFound()
    return order


def can_cancel(order: Order) -> bool:
    return order.status in CANCELLABLE and all(
        c.status in (C.AWAITING_PAYMENT, C.OPEN, C.CANCELLED) for c in order.consignments)


def cancel_order(order_id: int, user_id: int, *, reason: str = "") -> Order:
    """The shopper cancels their order before any part of it is handed to the post.

    Gives the stock back, releases a post-card hold, refunds what was paid (to the card
    or bank card it came from), cancels every consignment (and an unpaid buy-for-me
    request with the order), publishes order.cancelled. Flushes. Raises NotFound for
    someone else's order, NotCancellable once a consignment is ready or shipped (or the
    order is already closed).
    """
    owned_order(order_id, user_id)
    order = lock_order(order_id)
    if not can_cancel(order):
        raise NotCancellable(_l("This order can no longer be cancelled: part of it is "
                                "already with the post, or it is closed."))
    live = [c for c in order.consignments if c.status != C.CANCELLED]
    _release_stock(order, live)
    why = reason or "cancelled by the shopper"
    if order.status == O.PENDING_PAYMENT:
        _void_or_leave(order, actor_id=user_id, reason=why)
    else:
        _refund_order_payment(order, order.total - order.refunded_amount, reason=why,
                              key="cancel", actor_id=user_id)
    for c in live:
        apply_consignment_transition(c, C.CANCELLED, actor_id=user_id, reason=why)
        settlement.reverse_sale(c)
    apply_transition(order, O.CANCELLED, actor_id=user_id, reason=why)
    if order.kind == OrderKind.BUY_FOR_ME:
        request_order_closed(order.id, actor_id=user_id, reason=why)
    record_audit("order.cancelled", object_type="order", object_id=order.id,
                 actor_id=user_id, details={"refunded": order.refunded_amount})
    return order


# -- merchants and the post ----------------------------------------------------------------

def cancel_consignment(consignment_id: int, *, actor_id: int | None, reason: str) -> Order:
    """Cancel one consignment of an order (a merchant cannot fulfil it) before it is
    handed over: its stock goes back and, once paid, its share is refunded, so the
    order becomes partially refunded (or cancelled when nothing is left). Flushes; the
    caller's unit of work commits. Raises NotFound, NotCancellable."""
    c = db.get(Consignment, consignment_id)
    if c is None:
        raise NotFound()
    order = lock_order(c.order_id)
    db.refresh(c)
    if c.status not in (C.AWAITING_PAYMENT, C.OPEN):
        raise NotCancellable(_l("This consignment can no longer be cancelled."))
    _release_stock(order, [c])
    apply_consignment_transition(c, C.CANCELLED, actor_id=actor_id, reason=reason)
    # Its sale leaves the merchant's payable account (nothing booked before payment).
    settlement.reverse_sale(c)
    rest = [x for x in order.consignments if x.status not in (C.CANCELLED, C.EXPIRED)]
    if order.status == O.PENDING_PAYMENT:
        if not rest:
            _void_or_leave(order, actor_id=actor_id, reason=reason)
            apply_transition(order, O.CANCELLED, actor_id=actor_id, reason=reason)
        return order
    if not rest:
        _refund_order_payment(order, order.total - order.refunded_amount, reason=reason,
                              key=f"consignment:{c.id}", actor_id=actor_id)
        apply_transition(order, O.CANCELLED, actor_id=actor_id, reason=reason)
        return order
    _refund_order_payment(order, c.total, reason=reason, key=f"consignment:{c.id}",
                          actor_id=actor_id)
    apply_transition(order, O.PARTIALLY_REFUNDED, actor_id=actor_id, reason=reason)
    return order


def acknowledge_consignment(consignment_id: int, *, actor_id: int | None) -> Consignment:
    """The merchant has seen a paid consignment: the order is being processed. Flushes;
    the caller's unit of work commits. Raises NotFound, OrderStateError (not paid yet
    or closed)."""
    c = db.get(Consignment, consignment_id)
    if c is None:
        raise NotFound()
    order = lock_order(c.order_id)
    if c.status != C.OPEN and c.acknowledged_at is None:
        raise OrderStateError(_l("Only a paid consignment can be acknowledged."))
    if c.acknowledged_at is None:
        c.acknowledged_at = utcnow()
        db.flush()
        _follow_fulfilment(order, actor_id=actor_id, reason="acknowledged by the merchant")
    return c


def record_handover(consignment_id: int, *, parcel_id: int, tracking_number: str,
                    actor_id: int | None) -> Consignment:
    """A consignment is ready for handover: the parcel made for it is linked and the
    consignment moves to ready (the order to processing). Idempotent for the same parcel.
    Flushes; the unit of work of the caller (the merchant API, which creates the parcel)
    commits.
    Raises NotFound, OrderStateError (not paid, cancelled, or linked to another parcel)."""
    c = db.get(Consignment, consignment_id)
    if c is None:
        raise NotFound()
    order = lock_order(c.order_id)
    db.refresh(c)
    if c.parcel_id is not None and c.parcel_id != parcel_id:
        raise OrderStateError(_l("This consignment already has a parcel."))
    if c.status not in (C.OPEN, C.READY, C.SHIPPED, C.DELIVERED):
        raise OrderStateError(_l("Only a paid consignment can be handed over."))
    c.parcel_id, c.tracking_number = parcel_id, tracking_number
    if c.status == C.OPEN:
        apply_consignment_transition(c, C.READY, actor_id=actor_id, reason="ready for handover")
    _follow_fulfilment(order, actor_id=actor_id, reason="ready for handover")
    return c


def _consignments_for_ref(order_ref: str | None) -> list[Consignment]:
    kind, _, raw = (order_ref or "").partition(":")
    if not raw.isdigit():
        return []
    if kind == "consignment":
        c = db.get(Consignment, int(raw))
        return [c] if c else []
    if kind == "order":
        order = db.get(Order, int(raw))
        return list(order.consignments) if order else []
    return []


def on_parcel_event(event: DomainEvent) -> None:
    """A parcel linked to a consignment (or an order) moved: the consignment follows it
    (shipped once the post has it, delivered when delivered) and the order follows its
    consignments. Unlinked parcels and repeated news change nothing. Flushes; the job
    commits."""
    data = event.payload
    targets = _consignments_for_ref(data.get("order_ref"))
    if not targets:
        return
    status = data.get("status")
    order = lock_order(targets[0].order_id)
    for c in targets:
        db.refresh(c)
        if c.tracking_number is None and data.get("tracking_number"):
            c.tracking_number = data["tracking_number"]
            c.parcel_id = c.parcel_id or data.get("parcel_id")
        if c.status in (C.AWAITING_PAYMENT, C.CANCELLED, C.EXPIRED):
            continue
        if status == "delivered":
            apply_consignment_transition(c, C.DELIVERED, reason="parcel delivered")
        elif status in _PARCEL_MOVING and c.status in (C.OPEN, C.READY):
            apply_consignment_transition(c, C.SHIPPED, reason=f"parcel {status}")
    _follow_fulfilment(order, actor_id=None, reason=f"parcel {status}")


# -- expiry ----------------------------------------------------------------------------------

def expire_order(order_id: int) -> bool:
    """Expire one unpaid order past its time: stock back, post-card hold released, the
    order and its consignments expired (and a buy-for-me request with it). Does nothing
    if it was paid or closed meanwhile. Flushes; the caller's unit of work commits.
    Returns whether it expired."""
    order = lock_order(order_id)
    if order.status != O.PENDING_PAYMENT or order.expires_at is None \
            or order.expires_at > utcnow():
        return False
    live = [c for c in order.consignments if c.status == C.AWAITING_PAYMENT]
    _release_stock(order, live)
    _void_or_leave(order, actor_id=None, reason="order expired unpaid")
    for c in live:
        apply_consignment_transition(c, C.EXPIRED, reason="not paid in time")
    apply_transition(order, O.EXPIRED, reason="not paid in time")
    if order.kind == OrderKind.BUY_FOR_ME:
        request_order_closed(order.id, actor_id=None, reason="order not paid in time")
    return True


def unpaid_past_due(*, limit: int = 200) -> list[int]:
    """The ids of orders still unpaid after their payment time, the longest overdue
    first. Changes nothing."""
    return list(db.scalars(select(Order.id).where(
        Order.status == O.PENDING_PAYMENT, Order.expires_at < utcnow())
        .order_by(Order.expires_at).limit(limit)))


def order_described(reference_id: str) -> Described | None:
    """Payments' describer: an order payment is named by the order's number and its
    shops on statements and receipts (buy for me: bought by Iraqi Post)."""
    if not (reference_id.isascii() and reference_id.isdigit()) or len(reference_id) > 18:
        return None
    order = db.get(Order, int(reference_id))
    if order is None:
        return None
    shops_ar = "، ".join(dict.fromkeys(
        c.merchant.name_ar if c.merchant else "شراء البريد العراقي لك"
        for c in order.consignments))
    shops_en = ", ".join(dict.fromkeys(
        c.merchant.name_en if c.merchant else "bought for you by Iraqi Post"
        for c in order.consignments))
    return Described(number=order.number,
                     ar=f"الطلب {order.number}" + (f" من {shops_ar}" if shops_ar else ""),
                     en=f"Order {order.number}" + (f" from {shops_en}" if shops_en else ""))
