"""Baseline for bench/tracking.py: a bare Flask route doing the same indexed lookup (parcel by
tracking number, then its events by parcel id) on the same database, no Barid around it.

    DATABASE_URL=postgresql+psycopg://... gunicorn -w 2 --chdir bench tracking_bare:app
"""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
app = Flask(__name__)

PARCEL = text("SELECT id, tracking_number, status FROM parcels WHERE tracking_number = :n")
EVENTS = text("SELECT code, status, occurred_at, office_id FROM parcel_events "
              "WHERE parcel_id = :p AND NOT after_final ORDER BY occurred_at DESC, id DESC")


@app.get("/api/v1/tracking/<number>")
def lookup(number: str):
    with engine.connect() as conn:
        parcel = conn.execute(PARCEL, {"n": number.upper()}).first()
        if parcel is None:
            abort(404)
        events = conn.execute(EVENTS, {"p": parcel.id}).all()
    return jsonify({"tracking_number": parcel.tracking_number, "status": parcel.status,
                    "events": [{"code": e.code, "status": e.status,
                                "time": e.occurred_at.isoformat(), "office_id": e.office_id}
                               for e in events]})
