"""Functions the workers run for the shop. Each reloads its rows and is safe to run twice.

Subscribers run inside the job runner's transaction (it commits the task's effects with
the job's row); the periodic jobs own theirs and open their units of work here.
"""

from __future__ import annotations

from app.database import unit_of_work
from app.events import DomainEvent, subscribe
from app.jobs import periodic
from shop import notices
from shop.services import buyforme, orders
from shop.services.references import ORDER_KIND


@subscribe("payment.succeeded", only_if={"reference_kind": ORDER_KIND})
def order_payment_succeeded(event: DomainEvent) -> None:
    """Subscriber: a payment for an order succeeded, so the order becomes paid (once);
    money for an order no longer waiting is given back. The job runner commits."""
    orders.on_payment_succeeded(event)


@subscribe("refund.succeeded")
def order_refund_succeeded(event: DomainEvent) -> None:
    """Subscriber: a refund of an order's payment moves the order's refunded amount and
    status. The job runner commits."""
    orders.on_refund_succeeded(event)


@subscribe("order.placed", urgent=True)  # the shopper waits for "paid"
def confirm_placed_order(event: DomainEvent) -> None:
    """Subscriber: a placed order is confirmed by capturing the post-card hold taken at
    checkout (its payment.succeeded then marks the order paid). Nothing for other
    payment methods or an order no longer waiting. The job runner commits."""
    orders.confirm_order(int(event.payload["order_id"]))


@subscribe("parcel.status_changed")
def consignment_parcel_moved(event: DomainEvent) -> None:
    """Subscriber: a parcel linked to a consignment moved; the consignment and its order
    follow. The job runner commits."""
    orders.on_parcel_event(event)


@subscribe("parcel.delivered")
def consignment_parcel_delivered(event: DomainEvent) -> None:
    """Subscriber: a parcel linked to a consignment was delivered (the same as its
    status change; whichever runs second changes nothing). The job runner commits."""
    orders.on_parcel_event(event)


@subscribe("customs.released")
def refund_prepaid_customs_excess(event: DomainEvent) -> None:
    """Subscriber: customs released a buy-for-me parcel having assessed less than the
    quote took for duty and fees; the excess goes back to the order's payment (once).
    The job runner commits; a refund error is raised so the job is retried."""
    buyforme.refund_prepaid_excess(int(event.payload["case_id"]))


@subscribe("order.placed")
@subscribe("order.paid")
def tell_shopper_order_news(event: DomainEvent) -> None:
    """Subscriber: the owner of an order is told it was placed, or paid (once per
    channel). The job runner commits."""
    notices.order_news(event)


@subscribe("consignment.shipped")
def tell_shopper_consignment_shipped(event: DomainEvent) -> None:
    """Subscriber: the owner of an order is told a consignment of it shipped, with its
    tracking number (once per channel). The job runner commits."""
    notices.consignment_shipped(event)


@subscribe("buy_request.quoted")
def tell_shopper_quote_ready(event: DomainEvent) -> None:
    """Subscriber: a shopper is told procurement's quote for their buy-for-me request
    is ready (once per channel). The job runner commits."""
    notices.buy_request_quoted(event)


@periodic(every_seconds=60, queue="low")
def expire_unpaid_orders() -> list[int]:
    """Periodic: orders unpaid past SHOP_ORDER_PAYMENT_MINUTES expire; their stock is
    given back and post-card holds released. Each order is its own unit of work, so one
    order's failure does not keep the others' stock (the failure is raised after the
    orders before it committed). Returns the ids expired."""
    with unit_of_work():
        due = orders.unpaid_past_due()
    done = []
    for order_id in due:
        with unit_of_work():
            if orders.expire_order(order_id):
                done.append(order_id)
    return done


@periodic(every_seconds=300, queue="low")
def expire_buy_for_me_quotes() -> list[int]:
    """Periodic: buy-for-me quotes not accepted in time expire, in one unit of work.
    Returns the request ids."""
    with unit_of_work():
        return buyforme.expire_quotes()
