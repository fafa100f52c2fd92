"""Functions the workers run for the shop. Each reloads its rows and is safe to run twice."""

from __future__ import annotations

from app.events import DomainEvent, subscribe
from app.jobs import periodic


@subscribe("payment.succeeded")
def order_payment_succeeded(event: DomainEvent) -> None:
    """Subscriber: a payment for an order succeeded, so the order becomes paid (once);
    money for an order no longer waiting is given back. The job runner commits."""
    from shop.services.orders import on_payment_succeeded

    on_payment_succeeded(event)


@subscribe("refund.succeeded")
def order_refund_succeeded(event: DomainEvent) -> None:
    """Subscriber: a refund of an order's payment moves the order's refunded amount and
    status. The job runner commits."""
    from shop.services.orders import on_refund_succeeded

    on_refund_succeeded(event)


@subscribe("order.placed")
def confirm_placed_order(event: DomainEvent) -> None:
    """Subscriber: a placed order is confirmed by capturing the post-card hold taken at
    checkout (its payment.succeeded then marks the order paid). Nothing for other
    payment methods or an order no longer waiting. The job runner commits."""
    from shop.services.orders import confirm_order

    confirm_order(int(event.payload["order_id"]))


@subscribe("parcel.status_changed")
def consignment_parcel_moved(event: DomainEvent) -> None:
    """Subscriber: a parcel linked to a consignment moved; the consignment and its order
    follow. The job runner commits."""
    from shop.services.orders import on_parcel_event

    on_parcel_event(event)


@subscribe("parcel.delivered")
def consignment_parcel_delivered(event: DomainEvent) -> None:
    """Subscriber: a parcel linked to a consignment was delivered (the same as its
    status change; whichever runs second changes nothing). The job runner commits."""
    from shop.services.orders import on_parcel_event

    on_parcel_event(event)


@periodic(every_seconds=60, queue="low")
def expire_unpaid_orders() -> list[int]:
    """Periodic: orders unpaid past SHOP_ORDER_PAYMENT_MINUTES expire; their stock is
    given back and post-card holds released. Commits per order. Returns the ids."""
    from shop.services.orders import expire_unpaid_orders as expire

    return expire()


@periodic(every_seconds=300, queue="low")
def expire_buy_for_me_quotes() -> list[int]:
    """Periodic: buy-for-me quotes not accepted in time expire. Commits."""
    from shop.services.buyforme import expire_quotes

    return expire_quotes()
