"""The demo data: the tracking page has something to show, and seeding twice adds nothing."""

from __future__ import annotations

from sqlalchemy import select

from app.database import db
from tracking.models import CustomsCase, Parcel, ParcelEvent
from tracking.seed import DEMO_INBOUND_CLEAR, DEMO_INBOUND_HELD


def test_demo_parcels_have_timelines_and_seeding_twice_changes_nothing(app_ctx, client):
    from app.seed import seed_demo

    seed_demo(force=True)
    counts = (db.query(Parcel).count(), db.query(ParcelEvent).count())
    seed_demo(force=True)
    assert (db.query(Parcel).count(), db.query(ParcelEvent).count()) == counts
    assert counts[0] == 4
    statuses = dict(db.execute(select(Parcel.order_ref, Parcel.status)).all())
    assert statuses["demo:order:1"] == "delivered"
    states = {c.parcel.tracking_number: c.state for c in db.scalars(select(CustomsCase))}
    assert states == {DEMO_INBOUND_CLEAR: "released", DEMO_INBOUND_HELD: "held"}
    page = client.get(f"/track/{DEMO_INBOUND_CLEAR}")
    assert page.status_code == 200
