"""What anyone may see about a parcel from its number: status and events, no person.

Names, phones and addresses never leave this module; offices are shown by city.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.auth.models import PostOffice
from app.database import db
from app.geo import governorate
from app.i18n import BAGHDAD
from tracking.models import CustomsCase, CustomsState, Parcel, ParcelEvent
from tracking.upu import event_code

STATUS_TEXT: dict[str, Any] = {
    "pending": _l("Announced, not yet handed to the post"),
    "picked_up": _l("Accepted by the post"),
    "in_transit": _l("On its way"),
    "on_hold": _l("Held"),
    "out_for_delivery": _l("Out for delivery"),
    "ready_for_pickup": _l("Ready for pickup at the post office"),
    "delivery_failed": _l("Delivery attempt failed"),
    "delivered": _l("Delivered"),
    "return_to_sender": _l("Returned to sender"),
    "cancelled": _l("Cancelled"),
    "delivery_delayed": _l("Delayed"),
    "unknown": _l("Unknown"),
}


def status_text(status: str) -> str:
    return str(STATUS_TEXT.get(status, STATUS_TEXT["unknown"]))


def _city(event: ParcelEvent, office_governorate: str | None, locale: str) -> str:
    if office_governorate:
        gov = governorate(office_governorate)
        if gov:
            return gov.name(locale)
    return event.location or ""


def public_view(parcel: Parcel, locale: str) -> dict[str, Any]:
    """The public tracking record of `parcel`, events newest first, in `locale`.

    Two queries: the events with their office's governorate, and the customs state.
    """
    rows = db.execute(
        select(ParcelEvent, PostOffice.governorate)
        .outerjoin(PostOffice, PostOffice.id == ParcelEvent.office_id)
        # Flagged events (after the final one, out of sequence) do not make the status,
        # so the public timeline leaves them out too; staff see them on the parcel page.
        .where(ParcelEvent.parcel_id == parcel.id, ParcelEvent.after_final.is_(False),
               ParcelEvent.out_of_sequence.is_(False))
        .order_by(ParcelEvent.occurred_at.desc(), ParcelEvent.id.desc())).all()
    out_events = []
    for e, office_governorate in rows:
        info = event_code(e.code)
        out_events.append({
            "code": e.code,
            "status": e.status,
            "description": info.meaning(locale) if info else e.code,
            "office_city": _city(e, office_governorate, locale),
            "time": e.occurred_at.isoformat(),
            "local_time": e.occurred_at.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M"),
        })
    record: dict[str, Any] = {
        "tracking_number": parcel.tracking_number,
        "status": parcel.status,
        "status_text": status_text(parcel.status),
        "closed": parcel.closed,
        "international": parcel.international,
        "events": out_events,
    }
    if parcel.international:
        case = db.execute(select(CustomsCase.state, CustomsCase.total_due_iqd,
                                 CustomsCase.paid_at)
                          .where(CustomsCase.parcel_id == parcel.id)).first()
        if case is not None:
            record["customs"] = {
                "state": case.state,
                "duty_due_iqd": case.total_due_iqd
                if case.state == CustomsState.RELEASED else None,
                "paid": case.paid_at is not None,
            }
    return record
