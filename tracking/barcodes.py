"""What tracking's barcodes open, and what the back-office search finds in tracking.

A parcel's label (and declaration) QR opens the parcel: at a counter its back-office page
(hand over, take duty), for anyone else the public tracking page. A duty receipt's QR
opens the same parcel. The search box finds a parcel by its S10 number however it was
typed: spaces, lower case, Arabic-Indic digits.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.backoffice import SearchHit, SearchQuery
from app.barcodes import Opened, Page
from app.database import db
from app.numbers import MAX_BIGINT
from tracking import s10
from tracking.models import CustomsCase, Parcel
from tracking.services.lookup import status_text


def _parcel_opened(parcel: Parcel, what: object) -> Opened:
    number = parcel.tracking_number
    return Opened(Page("tracking_bo.parcel", {"number": number}), what=what,
                  public=Page("tracking.track_number", {"number": number}))


def open_parcel(reference: str) -> Opened | None:
    """A label's reference is the parcel's S10 number."""
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == reference))
    return _parcel_opened(parcel, _l("A parcel label")) if parcel else None


def open_duty_receipt(reference: str) -> Opened | None:
    """A duty receipt's reference is its customs case's id (signed, so not guessable)."""
    if not reference.isdigit() or int(reference) > MAX_BIGINT:
        return None
    case = db.get(CustomsCase, int(reference))
    return _parcel_opened(case.parcel, _l("A customs duty receipt")) if case else None


def find_parcels(query: SearchQuery) -> Iterable[SearchHit]:
    """The parcel whose S10 number is the query (any spelling), if there is one."""
    validity = s10.validate(query.text)
    if not validity:
        return []
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == validity.number))
    if parcel is None:
        return []
    return [SearchHit(_l("Parcel"), parcel.tracking_number, "tracking_bo.parcel",
                      {"number": parcel.tracking_number}, str(status_text(parcel.status)))]
