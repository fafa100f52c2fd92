"""Bulk ingest: every row accepted, duplicate or rejected with a reason; runs under rq."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.database import db, unit_of_work
from app.errors import ValidationFailed
from app.events import DomainEvent
from tests.tracking.helpers import at, domestic_draft, make_user, run_jobs
from tracking.models import IngestBatch, Parcel, ParcelEvent
from tracking.services import bulk
from tracking.services import events as ev
from tracking.services.parcels import preadvise


def _csv(rows: list[str], header: str = "tracking_number,code,occurred_at,event_id,"
         "office_code,reason_code,action_code,receiver_name") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _accepted_parcel(offices):
    parcel = preadvise(domestic_draft())
    rows = [f"{parcel.tracking_number},EMA,{at(0).isoformat()},e0,BGD01,,,"]
    batch = bulk.submit_batch(bulk.parse_csv(_csv(rows)), source="csv")
    run_jobs()
    assert db.get(IngestBatch, batch.id).accepted == 1
    return parcel.tracking_number


def test_csv_rows_each_get_an_outcome_and_good_rows_survive_bad_ones(offices):
    # A supervisor's file may name any office; a hand-over is never taken from a file.
    supervisor = make_user("Huda Supervisor", "supervisor", office=offices[0])
    n = _accepted_parcel(offices)
    rows = [
        f"{n},EDD,{at(2).isoformat()},e1,BGD01,,,",
        f"{n},EDD,{at(2).isoformat()},e1,BGD01,,,",            # repeat
        f"{n},XYZ,{at(3).isoformat()},e2,BGD01,,,",            # unknown code
        f"EE123456786IQ,EDD,{at(3).isoformat()},e3,BGD01,,,",  # check digit
        f"EE123456785IQ,EDD,{at(3).isoformat()},e4,BGD01,,,",  # unknown parcel
        f"{n},EDE,yesterday,e5,BGD01,,,",                      # bad time
        f"{n},EDE,{at(4).isoformat()},e6,NOPE,,,",             # unknown office
        f"{n},EMH,{at(5).isoformat()},e7,BSR01,,,",            # no reason/action
        f"{n},EDG,{at(6).isoformat()},e8,BSR01,,,",
        f"{n},EMI,{at(7).isoformat()},e9,BSR01,,,Fatima",      # a hand-over
        f",EDG,{at(8).isoformat()},e10,BSR01,,,",              # empty number
    ]
    batch = bulk.submit_batch(bulk.parse_csv(_csv(rows)), source="csv",
                              submitted_by_id=supervisor.id, filename="pda.csv")
    assert batch.state == "queued"
    run_jobs()
    batch = db.get(IngestBatch, batch.id)
    summary = bulk.batch_summary(batch)
    outcomes = [(r["outcome"], r["reason_code"]) for r in summary["rows"]]
    assert outcomes == [
        ("accepted", None), ("duplicate", None), ("rejected", "unknown_code"),
        ("rejected", "invalid_number"), ("rejected", "unknown_parcel"),
        ("rejected", "bad_time"), ("rejected", "unknown_office"),
        ("rejected", "missing_reason"), ("accepted", None),
        ("rejected", "hand_over_at_counter"), ("rejected", "missing_field"),
    ]
    assert all(r["reason"] for r in summary["rows"] if r["outcome"] == "rejected")
    assert (batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 8)
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == n))
    assert parcel.status != "delivered"
    # Running the job again changes nothing.
    bulk.process_batch(batch.id)
    db.commit()
    assert db.query(ParcelEvent).count() == 3


def test_a_clerks_file_records_scans_at_the_clerks_own_office(offices, clerk):
    n = _accepted_parcel(offices)
    rows = [
        f"{n},EDD,{at(2).isoformat()},c1,,,,",        # no office named: the clerk's
        f"{n},EDE,{at(3).isoformat()},c2,BSR01,,,",   # another office: refused
        f"{n},EDE,{at(4).isoformat()},c3,BGD01,,,",   # the clerk's own, named
    ]
    batch = bulk.submit_batch(bulk.parse_csv(_csv(rows)), source="csv",
                              submitted_by_id=clerk.id, filename="pda.csv")
    run_jobs()
    summary = bulk.batch_summary(db.get(IngestBatch, batch.id))
    assert [(r["outcome"], r["reason_code"]) for r in summary["rows"]] == [
        ("accepted", None), ("rejected", "not_your_office"), ("accepted", None)]
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == n))
    offices_seen = {e.office_id for e in db.scalars(
        select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id,
                                  ParcelEvent.code.in_(["EDD", "EDE"])))}
    assert offices_seen == {clerk.post_office_id}


@pytest.mark.parametrize(("data", "code"), [
    (b"tracking_number,code\nEE123456785IQ,EMA\n", "missing_columns"),
    ("tracking_number,code,occurred_at\nأ,EMA,x\n".encode("cp1256"), "bad_encoding"),
    (b"tracking_number,code,occurred_at\n", "empty"),
])
def test_unusable_files_are_refused_whole_with_a_reason(app_ctx, data, code):
    with pytest.raises(ValidationFailed) as err:
        bulk.parse_csv(data)
    assert err.value.code == code and str(err.value.message)


def test_fifty_thousand_rows_are_refused_with_a_clear_message(app_ctx):
    data = _csv([f"EE123456785IQ,EDD,2025-01-01T10:00:00+03:00,e{i},,,," for i in
                 range(50_000)])
    with pytest.raises(ValidationFailed) as err:
        bulk.parse_csv(data)
    assert err.value.code == "too_many_rows"
    assert "50000" in str(err.value.message) or "50,000" in str(err.value.message)


def test_batch_is_processed_by_an_rq_worker(app, offices, redis_url):
    import redis
    from rq import Queue, SimpleWorker

    n = _accepted_parcel(offices)
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    app.config["REDIS_URL"] = redis_url
    try:
        # submit_batch flushes; the job goes to rq when the caller's unit of work commits.
        with unit_of_work():
            batch = bulk.submit_batch([
                {"tracking_number": n, "code": "EDD", "occurred_at": at(1).isoformat(),
                 "event_id": "r1"},
                {"tracking_number": n, "code": "EDE", "occurred_at": at(2).isoformat(),
                 "event_id": "r2"},
            ], source="api", partner="handheld")
        batch_id = batch.id
        assert Queue("default", connection=conn).count == 1
        SimpleWorker([Queue("default", connection=conn)], connection=conn).work(burst=True)
    finally:
        app.config["REDIS_URL"] = None
        conn.flushdb()
    db.remove()
    batch = db.get(IngestBatch, batch_id)
    assert (batch.state, batch.accepted) == ("done", 2)
    assert db.scalar(select(Parcel.status).where(Parcel.tracking_number == n)) == "in_transit"


def _journey(number: str, offices, tag: str) -> list[tuple[str, ev.EventReport]]:
    """A partner feed for one parcel, as it arrives: out of order, with repeats."""
    bgd, bsr = offices[0].id, offices[1].id

    def report(code, hours, uid=None, office=bgd, **kw):
        return (number, ev.EventReport(code=code, occurred_at=at(hours), office_id=office,
                                       uid=uid and f"{tag}-{uid}", source="partner",
                                       partner="bench", **kw))
    return [
        report("EMA", 0, "a"),
        report("EDG", 6, "g", office=bsr),
        report("EDD", 1, "d1"),                      # arrives late, fits in its place
        report("EDD", 6.5, "d"),                     # stray: sorting centre after delivery
        report("EDD", 6.5, "d"),                     # the same event id again
        report("EDG", 6.05, office=bsr),             # repeat scan, same office, 3 minutes
        report("EMH", 7, "h1", office=bsr, reason_code="no_one_home", action_code="retry"),
        report("EMH", 8, "h2", office=bsr, reason_code="no_one_home", action_code="retry"),
        report("EMH", 9, "h3", office=bsr, reason_code="moved", action_code="retry"),
        report("EDE", 10, "e"),                      # after the return: kept, flagged
        report("XYZ", 10, "x"),
    ]


def test_a_batch_ends_exactly_as_the_same_events_one_by_one(offices):
    """The set-based ingest gives every row the outcome, every event the flags and the
    parcel the status, attempts and published events that recording the rows one at a
    time gives: late events flagged, repeats refused, the return after three failed
    attempts."""
    one = preadvise(domestic_draft()).tracking_number
    many = preadvise(domestic_draft()).tracking_number
    single = [ev.ingest(n, r) for n, r in _journey(one, offices, "one")]
    batch = ev.ingest_many(_journey(many, offices, "many"))
    db.flush()

    def published(number):
        return [(name, payload) for name, payload in db.execute(
            select(DomainEvent.name, DomainEvent.payload).order_by(DomainEvent.occurred_at))
            if payload.get("tracking_number") == number]
    one_events, many_events = published(one), published(many)
    assert one_events and many_events

    def summary(outs):
        return [(o.outcome, o.reason_code, o.out_of_sequence) for o in outs]
    assert summary(batch) == summary(single)
    assert summary(batch)[2:6] == [("accepted", None, False),
                                   ("accepted", "out_of_sequence", True),
                                   ("duplicate", None, False),
                                   ("duplicate", "repeat_scan", False)]

    def state(number):
        parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == number))
        db.refresh(parcel)
        timeline = db.execute(select(ParcelEvent.code, ParcelEvent.after_final,
                                     ParcelEvent.out_of_sequence)
                              .where(ParcelEvent.parcel_id == parcel.id)
                              .order_by(ParcelEvent.occurred_at, ParcelEvent.code)).all()
        return parcel.status, parcel.closed, parcel.failed_attempts, timeline
    assert state(many) == state(one)
    assert state(many)[:3] == ("return_to_sender", True, 3)
    # One status change per parcel for the batch, ending where the single path ends.
    last = {name: payload["status"] for name, payload in one_events}
    assert {name: payload["status"] for name, payload in many_events} == last
    assert [name for name, _ in many_events].count("parcel.status_changed") <= 2
