"""The parcel state machine: events arriving late, twice and out of order."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.database import db
from app.events import DomainEvent
from tests.tracking.helpers import at, domestic_draft
from tracking.models import Parcel, ParcelEvent
from tracking.services import events as ev
from tracking.services.parcels import preadvise
from tracking.status import derive


@dataclass
class E:
    code: str
    occurred_at: datetime


DOMESTIC_JOURNEY = ["EMA", "EDD", "EDE", "EMG", "EDG", "EMH", "EDG", "EMI"]


def test_derived_status_does_not_depend_on_arrival_order():
    events = [E(c, at(i)) for i, c in enumerate(DOMESTIC_JOURNEY)]
    events.append(E("EDG", at(20)))  # a late handheld upload after delivery
    rng = random.Random(4)
    for _ in range(50):
        shuffled = events[:]
        rng.shuffle(shuffled)
        d = derive(shuffled)
        assert d.status == "delivered" and d.closed and d.failed_attempts == 1
        assert [shuffled[i].occurred_at for i in d.after_final] == [at(20)]


def test_customs_hold_lasts_until_release_in_time_order():
    events = [E("EMC", at(0)), E("EMD", at(5)), E("EME", at(6)), E("EDC", at(30))]
    assert derive(events[:3]).held_by_customs
    assert derive(events[:3]).status == "on_hold"
    rng = random.Random(1)
    rng.shuffle(events)
    d = derive(events)
    assert not d.held_by_customs and d.status == "in_transit"


def test_no_events_is_pending_and_delay_mark_shows_until_next_event():
    assert derive([]).status == "pending"
    evs = [E("EMA", at(0)), E("EDD", at(1))]
    assert derive(evs, delayed_at=at(50)).status == "delivery_delayed"
    assert derive(evs + [E("EDE", at(60))], delayed_at=at(50)).status == "in_transit"


def _parcel():
    return preadvise(domestic_draft())


def _count(model, **where):
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return db.scalar(stmt)


def test_delivered_before_accepted_is_refused(offices, clerk):
    parcel = _parcel()
    out = ev.record_scan(number=parcel.tracking_number, code="EMI", office_id=offices[1].id,
                         actor_id=clerk.id, receiver_name="Fatima",
                         receiver_id_number="A1234567")
    assert out.outcome == "rejected" and out.reason_code == "not_accepted_yet"
    assert _count(ParcelEvent) == 0
    assert db.get(Parcel, parcel.id).status == "pending"


def test_repeated_events_change_nothing_and_shuffled_feed_gives_same_status(offices):
    parcel = _parcel()
    number = parcel.tracking_number
    first = ev.record_partner_event(number=number, code="EMA", occurred_at=at(0),
                                    uid="pda-1", office_id=offices[0].id)
    assert first.outcome == "accepted"
    feed = [
        dict(code="EDD", occurred_at=at(2), uid="pda-2"),
        dict(code="EDE", occurred_at=at(4), uid="pda-3"),
        dict(code="EMG", occurred_at=at(8), uid="pda-4"),
        dict(code="EDG", occurred_at=at(9), uid="pda-5"),
        dict(code="EMI", occurred_at=at(10), uid="pda-6", receiver_name="فاطمة"),
        dict(code="EDG", occurred_at=at(11), uid="pda-7"),  # after the final event
    ]
    doubled = feed + feed[:3]
    random.Random(7).shuffle(doubled)
    outcomes = [ev.record_partner_event(number=number, **row).outcome for row in doubled]
    assert outcomes.count("accepted") == len(feed)
    assert outcomes.count("duplicate") == 3
    assert _count(ParcelEvent, parcel_id=parcel.id) == 7
    db.expire_all()
    parcel = db.get(Parcel, parcel.id)
    assert parcel.status == "delivered" and parcel.closed
    flagged = db.scalars(select(ParcelEvent.uid).where(ParcelEvent.after_final)).all()
    assert flagged == ["pda-7"]
    assert _count(DomainEvent, name="parcel.delivered") == 1


def test_status_changes_are_published(offices, clerk):
    parcel = _parcel()
    ev.record_scan(number=parcel.tracking_number, code="EMA", office_id=offices[0].id,
                   actor_id=clerk.id)
    ev.record_scan(number=parcel.tracking_number, code="EDD", office_id=offices[0].id,
                   actor_id=clerk.id)
    changes = db.scalars(select(DomainEvent).where(DomainEvent.name == "parcel.status_changed")
                         .order_by(DomainEvent.occurred_at)).all()
    assert [(c.payload["previous_status"], c.payload["status"]) for c in changes] == [
        ("pending", "picked_up"), ("picked_up", "in_transit")]
    assert changes[0].payload["tracking_number"] == parcel.tracking_number


def test_a_scan_after_delivery_is_refused_at_the_counter(offices, clerk):
    parcel = _parcel()
    n = parcel.tracking_number
    for code, extra in [("EMA", {}), ("EDG", {}), ("EMI", {"receiver_name": "Fatima",
                                                            "receiver_id_number": "A12"})]:
        assert ev.record_scan(number=n, code=code, office_id=offices[1].id,
                              actor_id=clerk.id, **extra).outcome == "accepted"
    out = ev.record_scan(number=n, code="EDG", office_id=offices[1].id, actor_id=clerk.id)
    assert out.outcome == "rejected" and out.reason_code == "closed"


def test_bad_reports_are_refused_with_reasons(offices, clerk):
    parcel = _parcel()
    n = parcel.tracking_number
    ev.record_scan(number=n, code="EMA", office_id=offices[0].id, actor_id=clerk.id)
    cases = [
        (dict(number=n, code="ZZZ"), "unknown_code"),
        (dict(number=n, code="EMH"), "missing_reason"),
        (dict(number=n, code="EMI"), "missing_receiver"),
        (dict(number=n, code="EMB"), "not_for_direction"),
        (dict(number="EE123456785IQ", code="EDD"), "unknown_parcel"),
        (dict(number="EE123456786IQ", code="EDD"), "invalid_number"),
        (dict(number=n, code="EDD", occurred_at=at(24 * 10)), "future_time"),
    ]
    for kwargs, reason in cases:
        out = ev.record_scan(office_id=offices[0].id, actor_id=clerk.id, **kwargs)
        assert (out.outcome, out.reason_code) == ("rejected", reason), kwargs
        assert out.reason
    assert _count(ParcelEvent) == 1


def test_three_failed_attempts_return_the_parcel_to_its_sender(offices, clerk):
    parcel = _parcel()
    n = parcel.tracking_number
    ev.record_scan(number=n, code="EMA", office_id=offices[0].id, actor_id=clerk.id,
                   occurred_at=at(0))
    for i in range(3):
        ev.record_scan(number=n, code="EDG", office_id=offices[1].id, actor_id=clerk.id,
                       occurred_at=at(10 + 24 * i))
        out = ev.record_scan(number=n, code="EMH", office_id=offices[1].id, actor_id=clerk.id,
                             reason_code="no_one_home", action_code="retry",
                             occurred_at=at(11 + 24 * i))
        assert out.outcome == "accepted"
    db.expire_all()
    parcel = db.get(Parcel, parcel.id)
    assert parcel.status == "return_to_sender" and parcel.closed
    assert parcel.failed_attempts == 3
    assert _count(DomainEvent, name="parcel.returned") == 1
    last = db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id)
                      .order_by(ParcelEvent.occurred_at.desc())).first()
    assert last.code == "EDX" and last.source == "system"
