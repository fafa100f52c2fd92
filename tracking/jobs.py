"""Functions the workers run for tracking. Each reloads its rows and is safe to run twice."""

from __future__ import annotations

from app.events import DomainEvent, subscribe
from app.jobs import periodic


def assess_customs(*, parcel_id: int) -> None:
    """Job: assess customs for an inbound parcel that arrived at the office of exchange.

    Releases clear cases (EDC) and holds the others (EME with a reason); does nothing if
    the parcel was already assessed. Commits.
    """
    from tracking.services.customs import assess

    assess(parcel_id)


@subscribe("payment.succeeded")
def duty_payment_succeeded(event: DomainEvent) -> None:
    """Subscriber: a succeeded payment whose reference is a customs case marks its duty
    paid (once; a repeat changes nothing). Flushes; the job runner commits."""
    from tracking.services.customs import on_payment_succeeded

    on_payment_succeeded(event)


def process_ingest_batch(*, batch_id: int) -> None:
    """Job: ingest the rows of an uploaded or posted event batch, recording each row's
    outcome (accepted, duplicate, rejected with a reason). Safe to run again: processed
    rows are skipped. The job runner commits."""
    from tracking.services.bulk import process_batch

    process_batch(batch_id)


@periodic(every_seconds=900)
def sweep_stale_parcels() -> None:
    """Periodic job: flag parcels silent longer than their status allows as
    delivery_delayed and return parcels left uncollected. Commits."""
    from tracking.services.delivery import sweep

    sweep()
