"""Delivery follow-up: the stale-parcel sweep and parcels left uncollected."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.database import db, utcnow
from app.events import DomainEvent
from tests.tracking.helpers import domestic_draft, run_jobs
from tracking.models import Parcel
from tracking.services import events as ev
from tracking.services.delivery import delayed_parcels, sweep
from tracking.services.parcels import preadvise


def _scanned(offices, clerk, *codes):
    parcel = preadvise(domestic_draft())
    for code in codes:
        out = ev.record_scan(number=parcel.tracking_number, code=code,
                             office_id=offices[0].id, actor_id=clerk.id)
        assert out.outcome == "accepted", out.reason
    return parcel.tracking_number


def _parcel(number):
    db.expire_all()
    return db.scalar(select(Parcel).where(Parcel.tracking_number == number))


def test_silent_parcels_are_flagged_delayed_once_until_their_next_event(offices, clerk):
    moving = _scanned(offices, clerk, "EMA", "EDD")        # in transit: 120 h allowed
    out_for_delivery = _scanned(offices, clerk, "EMA", "EDG")  # 24 h allowed
    later = utcnow() + timedelta(hours=30)
    result = sweep(now=later)
    assert result.delayed == [out_for_delivery]
    assert _parcel(out_for_delivery).status == "delivery_delayed"
    assert _parcel(moving).status == "in_transit"
    assert [p.tracking_number for p in delayed_parcels()] == [out_for_delivery]
    changed = db.scalars(select(DomainEvent).where(
        DomainEvent.name == "parcel.status_changed")).all()
    assert any(e.payload["status"] == "delivery_delayed" for e in changed)

    assert sweep(now=later + timedelta(minutes=15)).delayed == []  # already flagged

    out = ev.record_scan(number=out_for_delivery, code="EMH", office_id=offices[0].id,
                         actor_id=clerk.id, reason_code="no_one_home",
                         action_code="held_at_office")
    assert out.status == "delivery_failed"
    assert delayed_parcels() == []


def test_parcel_not_collected_in_time_goes_back_to_its_sender(offices, clerk, app):
    waiting = _scanned(offices, clerk, "EMA", "EDH")
    assert sweep(now=utcnow() + timedelta(days=3)).returned == []
    result = sweep(now=utcnow() + timedelta(days=app.config["PICKUP_HOLD_DAYS"], hours=1))
    assert result.returned == [waiting]
    parcel = _parcel(waiting)
    assert parcel.status == "return_to_sender" and parcel.closed
    assert db.query(DomainEvent).filter_by(name="parcel.returned").count() == 1


def test_sweep_runs_as_a_periodic_job(offices, clerk):
    from app.jobs import periodic_jobs, run_periodic

    job = next(j for j in periodic_jobs() if j.task.endswith(":sweep_stale_parcels"))
    assert job.every_seconds == 900
    _scanned(offices, clerk, "EMA")
    run_periodic(job.task)  # nothing is stale yet: it must simply succeed
    run_jobs()
