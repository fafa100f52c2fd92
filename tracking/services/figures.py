"""Counts of parcels for the supervisor's dashboard and the lists behind them.

Every figure is one aggregate query (GROUP BY in the database, no parcel rows loaded).
Where a parcel is, for these counts, is the office of its latest event that counts (not
flagged after-final or out of sequence): `whereabouts()`. Accepted and delivered are
counted where the counter or the hand-over happened (the EMA or EMI event's office).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true

from app.dashboard import DAYS, Scope, baghdad_day, epoch_seconds
from app.database import db
from app.i18n import BAGHDAD
from tracking.models import CustomsCase, CustomsState, Parcel, ParcelEvent

ACCEPTED, DELIVERED = "EMA", "EMI"
# The customs backlog by how long a parcel has been held: under a day, up to three,
# up to a week, longer (days).
AGE_BUCKETS = (1, 3, 7)
MAX_LIST = 500


def whereabouts() -> Any:
    """The office of a parcel's latest counting event (a correlated scalar subquery on
    Parcel; uses the (parcel_id, occurred_at) index)."""
    return (select(ParcelEvent.office_id)
            .where(ParcelEvent.parcel_id == Parcel.id, ParcelEvent.after_final.is_(False),
                   ParcelEvent.out_of_sequence.is_(False))
            .order_by(ParcelEvent.occurred_at.desc(), ParcelEvent.id.desc())
            .limit(1).correlate(Parcel).scalar_subquery())


def _counting_events() -> Any:
    return and_(ParcelEvent.after_final.is_(False), ParcelEvent.out_of_sequence.is_(False))


def accepted_and_delivered(scope: Scope) -> dict[str, dict[date, int]]:
    """Parcels accepted (EMA) and handed over (EMI) per day in Baghdad, at the scope's
    offices, over the scope's days: {"EMA": {day: n}, "EMI": {day: n}}."""
    day = baghdad_day(ParcelEvent.occurred_at)
    rows = db.execute(
        select(day, ParcelEvent.code, func.count())
        .where(ParcelEvent.code.in_((ACCEPTED, DELIVERED)), _counting_events(),
               ParcelEvent.occurred_at >= scope.start, scope.covers(ParcelEvent.office_id))
        .group_by(day, ParcelEvent.code))
    out: dict[str, dict[date, int]] = {ACCEPTED: {}, DELIVERED: {}}
    for text, code, n in rows:
        out[code][date.fromisoformat(text)] = int(n)
    return out


def _in_scope(scope: Scope) -> Any:
    return true() if scope.whole_post else scope.covers(whereabouts())


def by_status(scope: Scope) -> dict[str, int]:
    """Parcels still open, or closed within the scope's days, by status, at the scope's
    offices."""
    rows = db.execute(
        select(Parcel.status, func.count())
        .where(or_(Parcel.closed.is_(False), Parcel.last_activity_at >= scope.start),
               _in_scope(scope))
        .group_by(Parcel.status))
    return {status: int(n) for status, n in rows}


@dataclass(frozen=True)
class Backlog:
    """Parcels customs holds now: how many by age (AGE_BUCKETS), and the mean age."""

    by_age: list[int]
    total: int
    average_hours: float | None


def customs_backlog(scope: Scope) -> Backlog:
    """The customs cases waiting for an officer (held), by how long since they opened, and
    their average age, at the scope's offices."""
    now = scope.now
    bucket = case(*[(CustomsCase.created_at >= now - timedelta(days=d), i)
                    for i, d in enumerate(AGE_BUCKETS)], else_=len(AGE_BUCKETS))
    rows = db.execute(
        select(bucket, func.count(), func.sum(epoch_seconds(CustomsCase.created_at)))
        .join(Parcel, Parcel.id == CustomsCase.parcel_id)
        .where(CustomsCase.state == CustomsState.HELD, _in_scope(scope))
        .group_by(bucket))
    counts = [0] * (len(AGE_BUCKETS) + 1)
    total, seconds = 0, 0.0
    for i, n, summed in rows:
        counts[int(i)] = int(n)
        total += int(n)
        seconds += float(summed or 0)
    average = None
    if total:
        average = max(0.0, (now.timestamp() - seconds / total) / 3600)
    return Backlog(counts, total, average)


def stale_by_office(scope: Scope) -> dict[int | None, int]:
    """Open parcels the sweep flagged as delayed, by the office where they went silent."""
    where = whereabouts()
    rows = db.execute(
        select(where.label("office"), func.count())
        .where(Parcel.closed.is_(False), Parcel.delayed_at.is_not(None),
               true() if scope.whole_post else scope.covers(where))
        .group_by("office"))
    return {office: int(n) for office, n in rows}


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), BAGHDAD)
    return start, start + timedelta(days=1)


def list_parcels(*, status: str | None = None, office_id: int | None = None,
                 accepted: date | None = None, delivered: date | None = None,
                 limit: int = MAX_LIST) -> list[Parcel]:
    """Parcels for the back-office list, newest activity first (see parcels_query)."""
    query = parcels_query(status=status, office_id=office_id, accepted=accepted,
                          delivered=delivered)
    return list(db.scalars(query.order_by(Parcel.last_activity_at.desc(), Parcel.id.desc())
                           .limit(limit)))


def parcels_query(*, status: str | None = None, office_id: int | None = None,
                  accepted: date | None = None, delivered: date | None = None) -> Any:
    """The query of the parcels behind a dashboard figure (unordered, for app.listing).

    `status`: only that status (open, or closed in the last DAYS days, as the dashboard
    counts); `office_id`: only parcels at that office (`whereabouts`), or accepted /
    delivered there when a day is given; `accepted` / `delivered`: the EMA / EMI event
    happened that day in Baghdad. Reads only.
    """
    query = select(Parcel)
    for code, day in ((ACCEPTED, accepted), (DELIVERED, delivered)):
        if day is None:
            continue
        start, end = _day_bounds(day)
        event = select(ParcelEvent.id).where(
            ParcelEvent.parcel_id == Parcel.id, ParcelEvent.code == code, _counting_events(),
            ParcelEvent.occurred_at >= start, ParcelEvent.occurred_at < end)
        if office_id is not None:
            event = event.where(ParcelEvent.office_id == office_id)
        query = query.where(event.exists())
    if status:
        today = datetime.now(BAGHDAD).date()
        since = datetime.combine(today - timedelta(days=DAYS - 1), time(), BAGHDAD)
        query = query.where(Parcel.status == status,
                            or_(Parcel.closed.is_(False), Parcel.last_activity_at >= since))
    if office_id is not None and accepted is None and delivered is None:
        query = query.where(whereabouts() == office_id)
    return query
