"""Functions the workers run for tracking. Each reloads its rows and is safe to run twice.

Each opens the unit of work of its use case (joining the job runner's, when the runner
has one open), so what it flushes commits together or not at all. Services name these
jobs by dotted path ("tracking.jobs:assess_customs") rather than importing this module,
which imports them.
"""

from __future__ import annotations

from app.database import unit_of_work
from app.events import DomainEvent, subscribe
from app.jobs import periodic
from tracking import notices
from tracking.services import bulk, customs, delivery


def assess_customs(*, parcel_id: int) -> None:
    """Job: assess customs for an inbound parcel that arrived at the office of exchange.

    Releases clear cases (EDC) and holds the others (EME with a reason); does nothing if
    the parcel was already assessed. Commits its unit of work; raises Conflict (the job
    is retried) if the parcel refuses the customs event.
    """
    with unit_of_work():
        customs.assess(parcel_id)


@subscribe("payment.succeeded", only_if={"reference_kind": customs.DUTY_REFERENCE_KIND})
def duty_payment_succeeded(event: DomainEvent) -> None:
    """Subscriber: a succeeded payment whose reference is a customs case marks its duty
    paid (once; a repeat changes nothing), or refunds a payment that was not needed.
    Commits its unit of work; raises payments' refund errors (the job is retried)."""
    with unit_of_work():
        customs.on_payment_succeeded(event)


@subscribe("parcel.status_changed")
def tell_recipient_parcel_moved(event: DomainEvent) -> None:
    """Subscriber: the recipient is told their parcel is out for delivery, ready for
    pickup or could not be delivered (once per channel). The job runner commits."""
    notices.parcel_moved(event)


@subscribe("customs.released")
def tell_recipient_duty_due(event: DomainEvent) -> None:
    """Subscriber: the recipient of a released parcel with duty outstanding is told how
    much and where to pay (once per channel). The job runner commits."""
    notices.duty_due(event)


@subscribe("customs.duty_paid")
def tell_recipient_duty_paid(event: DomainEvent) -> None:
    """Subscriber: the recipient is told their duty was received (once per channel).
    The job runner commits."""
    notices.duty_paid(event)


def process_ingest_batch(*, batch_id: int) -> None:
    """Job: ingest the rows of an uploaded or posted event batch, recording each row's
    outcome (accepted, duplicate, rejected with a reason). Safe to run again: processed
    rows are skipped. Commits its unit of work."""
    with unit_of_work():
        bulk.process_batch(batch_id)


@periodic(every_seconds=900)
def sweep_stale_parcels() -> None:
    """Periodic job: flag parcels silent longer than their status allows as
    delivery_delayed and return parcels left uncollected. Commits its unit of work."""
    with unit_of_work():
        delivery.sweep()
