"""What anyone may see about a parcel from its number: status and events, no person.

Names, phones and addresses never leave this module; offices are shown by city.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select

from app.auth.models import PostOffice
from app.database import db
from app.geo import governorate, governorates
from app.i18n import BAGHDAD
from tracking.models import CustomsCase, CustomsState, Direction, Parcel, ParcelEvent
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


# What the shopper may expect next, by the parcel's status (the last step has none).
NEXT_STEP: dict[str, Any] = {
    "pending": _l("Next: the sender hands the parcel to the post."),
    "picked_up": _l("Next: the parcel goes to a sorting centre."),
    "in_transit": _l("Next: the parcel reaches the post office that delivers it."),
    "on_hold": _l("Next: once released, the parcel continues its journey."),
    "out_for_delivery": _l("Next: the postman brings it to the address today."),
    "ready_for_pickup": _l("Next: collect it at the post office with your ID."),
    "delivery_failed": _l("Next: the post tries again or keeps it at the post office "
                          "for you to collect."),
    "delivery_delayed": _l("Next: the parcel continues its journey; we will update this "
                           "page as soon as it moves."),
    "unknown": _l("Next: the parcel continues its journey."),
}
CUSTOMS_NEXT_STEP: dict[str, Any] = {
    "held": _l("Next: customs checks the parcel and says what duty is due."),
    "unpaid": _l("Next: pay the customs duty, then the parcel is delivered."),
}


def next_step(status: str, closed: bool, customs_state: str | None = None,
              duty_unpaid: bool = False) -> str:
    """What happens next to a parcel in `status` (empty once its journey has ended)."""
    if closed:
        return ""
    if duty_unpaid:
        return str(CUSTOMS_NEXT_STEP["unpaid"])
    if customs_state == CustomsState.HELD:
        return str(CUSTOMS_NEXT_STEP["held"])
    return str(NEXT_STEP.get(status, NEXT_STEP["unknown"]))


def _governorate_named(place: str) -> Any:
    """The governorate whose English or Arabic name is `place` (partners write either,
    in any case), or None."""
    wanted = place.strip().casefold()
    return next((g for g in governorates()
                 if wanted in (g.name_en.casefold(), g.name_ar.casefold())), None)


def _city(location: str | None, office_governorate: str | None, locale: str) -> str:
    if office_governorate:
        gov = governorate(office_governorate)
        if gov:
            return gov.name(locale)
    # A partner's place name: ours in the shopper's language when it is one of our
    # governorates, else as the partner wrote it (a foreign city).
    gov = _governorate_named(location or "")
    return gov.name(locale) if gov else (location or "")


@dataclass(frozen=True)
class PublicParcel:
    """The few columns of a parcel (and its customs case) that public tracking shows."""

    id: int
    tracking_number: str
    status: str
    closed: bool
    direction: str
    last_activity_at: datetime | None
    customs_state: str | None = None
    customs_due_iqd: int | None = None
    customs_paid_at: datetime | None = None

    @property
    def international(self) -> bool:
        return self.direction != Direction.DOMESTIC

    def version(self, locale: str) -> str:
        """A validator for HTTP caching: it changes with every event the parcel takes
        (each sets last_activity_at), with its status (the delay sweep) and with its
        customs case, and differs by language."""
        facts = "|".join(str(x) for x in (
            self.id, self.status, self.closed, self.last_activity_at, self.customs_state,
            self.customs_due_iqd, self.customs_paid_at, locale))
        return hashlib.sha256(facts.encode()).hexdigest()[:32]


# The two statements of a public lookup, built once over the tables (Core, not the
# ORM): building them per request and running them through the ORM's execution path
# cost more CPU than the rest of the request (bench/RESULTS.md, P1).
_P, _C = Parcel.__table__.c, CustomsCase.__table__.c
_E, _O = ParcelEvent.__table__.c, PostOffice.__table__.c
_FIND_PUBLIC = (
    select(_P.id, _P.tracking_number, _P.status, _P.closed, _P.direction,
           _P.last_activity_at, _C.state, _C.total_due_iqd, _C.paid_at)
    .select_from(Parcel.__table__.outerjoin(CustomsCase.__table__, _C.parcel_id == _P.id))
    .where(_P.tracking_number == bindparam("number")))
_PUBLIC_EVENTS = (
    select(_E.code, _E.status, _E.occurred_at, _E.location, _O.governorate)
    .select_from(ParcelEvent.__table__.outerjoin(PostOffice.__table__,
                                                 _O.id == _E.office_id))
    # Flagged events (after the final one, out of sequence) do not make the status,
    # so the public timeline leaves them out too; staff see them on the parcel page.
    .where(_E.parcel_id == bindparam("parcel_id"), _E.after_final.is_(False),
           _E.out_of_sequence.is_(False))
    .order_by(_E.occurred_at.desc(), _E.id.desc()))


def find_public(number: str) -> PublicParcel | None:
    """The public columns of the parcel numbered `number` (normalised) and of its customs
    case, in one query; None when there is no such parcel. Loads no entity."""
    row = db.connection().execute(_FIND_PUBLIC, {"number": number}).first()
    return PublicParcel(*row) if row is not None else None


def public_view(parcel: Parcel | PublicParcel, locale: str) -> dict[str, Any]:
    """The public tracking record of `parcel`, events newest first, in `locale`.

    One query for the events with their office's governorate (columns, not entities);
    for a Parcel entity, one more for its customs state (a PublicParcel carries it).
    """
    rows = db.connection().execute(_PUBLIC_EVENTS, {"parcel_id": parcel.id}).all()
    out_events = []
    for code, status, occurred_at, location, office_governorate in rows:
        info = event_code(code)
        out_events.append({
            "code": code,
            "status": status,
            # An unknown code is never shown raw: the status says it in words.
            "description": info.meaning(locale) if info else status_text(status),
            "office_city": _city(location, office_governorate, locale),
            "time": occurred_at.isoformat(),
            "local_time": occurred_at.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M"),
        })
    record: dict[str, Any] = {
        "tracking_number": parcel.tracking_number,
        "status": parcel.status,
        "status_text": status_text(parcel.status),
        "closed": parcel.closed,
        "international": parcel.international,
        "events": out_events,
        "next_step": next_step(parcel.status, parcel.closed),
    }
    if parcel.international:
        if isinstance(parcel, PublicParcel):
            case = (None if parcel.customs_state is None else
                    (parcel.customs_state, parcel.customs_due_iqd, parcel.customs_paid_at))
        else:
            case = db.execute(select(CustomsCase.state, CustomsCase.total_due_iqd,
                                     CustomsCase.paid_at)
                              .where(CustomsCase.parcel_id == parcel.id)).first()
        if case is not None:
            state, due, paid_at = case
            record["customs"] = {
                "state": state,
                "duty_due_iqd": due if state == CustomsState.RELEASED else None,
                "paid": paid_at is not None,
            }
            record["next_step"] = next_step(
                parcel.status, parcel.closed, state,
                duty_unpaid=bool(state == CustomsState.RELEASED and due and paid_at is None))
    return record
