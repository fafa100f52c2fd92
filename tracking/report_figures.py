"""The parcels' figures for the platform's reports (app.reports), from the parcel events.

A parcel counts once per figure and period: accepted (EMA, at the accepting office),
delivered (EMI, at the delivering office) and returned to its sender (EDX). Events kept
only for the record (after the final one, or out of sequence) do not count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from app.database import db
from app.reports import Figure
from tracking.models import ParcelEvent

COUNTED = (
    ("EMA", "parcels.accepted", "الطرود المقبولة", "Parcels accepted"),
    ("EMI", "parcels.delivered", "الطرود المسلّمة", "Parcels delivered"),
    ("EDX", "parcels.returned", "الطرود المعادة إلى المرسل", "Parcels returned to sender"),
)


def parcel_figures(office_id: int | None, start: datetime, end: datetime) -> list[Figure]:
    """Parcels accepted, delivered and returned in [start, end) at `office_id` (None:
    anywhere)."""
    q = (select(ParcelEvent.code, func.count(func.distinct(ParcelEvent.parcel_id)))
         .where(ParcelEvent.code.in_([c for c, *_ in COUNTED]),
                ParcelEvent.occurred_at >= start, ParcelEvent.occurred_at < end,
                ParcelEvent.after_final.is_(False), ParcelEvent.out_of_sequence.is_(False))
         .group_by(ParcelEvent.code))
    if office_id is not None:
        q = q.where(ParcelEvent.office_id == office_id)
    counts = dict(db.execute(q).all())
    return [Figure(key, ar, en, int(counts.get(code, 0))) for code, key, ar, en in COUNTED]
