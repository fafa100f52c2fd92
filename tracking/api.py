"""The partner tracking-events API (/api/v1/tracking-events) on the API platform.

Partner posts and handheld fleets authenticate with an API key of their own kind
("partner", issued by `barid tracking partner-key NAME`) holding the
`tracking:events:write` scope. app.api.platform checks the key, limits the rate, parses
JSON strictly, honours Idempotency-Key, answers errors in the one JSON shape and
documents both operations in /api/v1/openapi.json.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, url_for
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.api.owners import register_owner_kind
from app.api.platform import ApiBlueprint, Call
from app.database import unit_of_work
from app.errors import NotFound
from app.extensions import csrf
from tracking.services import bulk, partners

events_api = ApiBlueprint("tracking_ingest_api", __name__, tag="Tracking events")
W = partners.EVENTS_WRITE


def _text(max_length: int, description: str) -> fields.String:
    return fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=max_length),
                         metadata={"description": description})


class TrackingEventSchema(Schema):
    """One UPU event as the partner saw it. Rows are checked one by one when the batch is
    processed: a row with a missing or bad value is rejected with a reason, the others go
    on."""

    tracking_number = _text(60, "the S10 number, e.g. LX123456785CN")
    code = _text(8, "the UPU event code, e.g. EMC")
    occurred_at = _text(40, "when it happened, ISO 8601 with its offset")
    event_id = _text(80, "your id for the event: the same id twice is one event")
    office_code = _text(16, "an Iraqi Post office code, when it happened at one")
    location = _text(120, "your place name")
    reason_code = _text(32, "for EMH: why delivery failed")
    action_code = _text(32, "for EMH: what happens next")
    retention_reason = _text(300, "for EME: why the parcel is held")
    receiver_name = _text(200, "for EMI: who received the parcel")


class TrackingEventsSchema(Schema):
    """A batch of events to record."""

    events = fields.List(fields.Nested(TrackingEventSchema), required=True,
                         metadata={"description": "at most BULK_MAX_ROWS events"})


class BatchQueuedSchema(Schema):
    """The stored batch; poll status_url until its state is done."""

    batch_id = fields.Integer(required=True)
    state = fields.String(required=True)
    status_url = fields.String(required=True)


class BatchRowSchema(Schema):
    row = fields.Integer(required=True)
    outcome = fields.String(required=True,
                            metadata={"description": "accepted, duplicate or rejected"})
    reason_code = fields.String(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)


class BatchSummarySchema(Schema):
    """A batch's counts, and each row's outcome once it is done."""

    id = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "queued or done"})
    total_rows = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    rows = fields.List(fields.Nested(BatchRowSchema))


@events_api.operation("POST", "/tracking-events", scope=W, summary="Report tracking events",
                      body=TrackingEventsSchema, response=BatchQueuedSchema, status=202,
                      max_body_setting="TRACKING_EVENTS_MAX_BODY_BYTES")
def post_events(call: Call) -> dict[str, Any]:
    """Store a batch of events for processing; 202 with the batch to poll. Every row ends
    accepted, duplicate or rejected with a reason."""
    partner = partners.get_partner(call.owner_id)
    with unit_of_work():
        batch = bulk.submit_batch(call.body["events"], source="api", partner=partner.name)
    return {"batch_id": batch.id, "state": batch.state,
            "status_url": url_for("tracking_ingest_api.get_batch", batch_id=batch.id)}


@events_api.operation("GET", "/tracking-events/batches/<int:batch_id>", scope=W,
                      summary="A batch's outcome", response=BatchSummarySchema)
def get_batch(call: Call, batch_id: int) -> dict[str, Any]:
    """The batch's counts and, once processed, each row's outcome. Only your own."""
    partner = partners.get_partner(call.owner_id)
    batch = bulk.get_batch(batch_id)
    if batch.partner != partner.name:
        raise NotFound(_l("No such batch."))
    return bulk.batch_summary(batch)


def init_app(app: Flask) -> None:
    """Partners as a kind of API key owner, and the events API."""
    register_owner_kind(partners.PARTNER_KIND, scopes=partners.PARTNER_SCOPES,
                        check=partners.partner_is_active)
    app.register_blueprint(events_api)
    csrf.exempt(events_api)
