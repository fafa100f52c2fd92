"""Functions the workers run for payments. Each reloads its rows and is safe to run twice."""

from __future__ import annotations

from app.database import unit_of_work
from app.events import DomainEvent, subscribe
from app.jobs import periodic
from payments import notices, services
from payments.models import TOPUP


@subscribe("refund.succeeded")
def tell_payer_refund_made(event: DomainEvent) -> None:
    """Subscriber: the payer is told a refund was made (once per channel). The job
    runner commits."""
    notices.refund_made(event)


@subscribe("payment.succeeded", only_if={"reference_kind": "post_card", "purpose": TOPUP})
def tell_holder_card_topped_up(event: DomainEvent) -> None:
    """Subscriber: a post card's holder is told of a top-up and the balance now (once
    per channel); other payments are left alone. The job runner commits."""
    notices.card_topped_up(event)


@periodic(every_seconds=60, queue="low")
def expire_stale_holds() -> list[int]:
    """Void every post-card hold past its expiry (the money goes back to the card).

    Periodic; runs as one unit of work (the holds, their payments and the card
    balances change together). Returns the payment ids released.
    """
    with unit_of_work():
        return services.expire_holds()
