"""Delivery follow-up: parcels left uncollected go back, silent parcels are flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.database import db, utcnow
from tracking.models import Parcel, ParcelEvent
from tracking.services.events import apply_timeline, return_to_sender
from tracking.services.figures import whereabouts


@dataclass
class SweepResult:
    delayed: list[str]
    returned: list[str]


def sweep(now: datetime | None = None) -> SweepResult:
    """Find open parcels that have been silent longer than their status allows.

    Parcels ready for pickup longer than PICKUP_HOLD_DAYS go back to their sender (EDX);
    others silent beyond STALE_AFTER_HOURS[status] are marked `delivery_delayed` (and
    `parcel.status_changed` is published) until their next event. A parcel already
    marked is left alone, so running it twice changes nothing. Flushes; the periodic
    job's unit of work commits.
    """
    now = now or utcnow()
    limits: dict[str, int] = current_app.config["STALE_AFTER_HOURS"]
    pickup_days = int(current_app.config["PICKUP_HOLD_DAYS"])
    result = SweepResult([], [])
    oldest_limit = min(limits.values()) if limits else 24
    candidates = db.scalars(
        select(Parcel).where(Parcel.closed.is_(False),
                             Parcel.last_activity_at < now - timedelta(hours=oldest_limit))
        .order_by(Parcel.id).with_for_update(skip_locked=True)
    ).all()
    for parcel in candidates:
        if parcel.status == "ready_for_pickup" and parcel.last_event_at and (
                parcel.last_event_at < now - timedelta(days=pickup_days)):
            out = return_to_sender(parcel, occurred_at=min(now, utcnow()),
                                   why=f"not collected within {pickup_days} days")
            if out.ok:
                result.returned.append(parcel.tracking_number)
            continue
        if parcel.delayed_at is not None:
            continue
        hours = limits.get(parcel.status)
        if hours is None or parcel.last_activity_at >= now - timedelta(hours=hours):
            continue
        parcel.delayed_at = now
        events = list(db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id)))
        activity = parcel.last_activity_at
        apply_timeline(parcel, events)
        # Marking a parcel late is not activity on it.
        parcel.last_activity_at = activity
        result.delayed.append(parcel.tracking_number)
    db.flush()
    return result


def delayed_parcels(limit: int = 500, *, office_id: int | None = None) -> list[Parcel]:
    """Parcels the sweep flagged and that have had no event since, oldest silence first;
    with `office_id`, only those that went silent at that office."""
    query = select(Parcel).where(Parcel.closed.is_(False), Parcel.delayed_at.is_not(None))
    if office_id is not None:
        query = query.where(whereabouts() == office_id)
    return list(db.scalars(query.order_by(Parcel.last_activity_at).limit(limit)))
