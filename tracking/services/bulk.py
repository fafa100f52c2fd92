"""Bulk event ingest from partner posts and handheld devices (JSON API or CSV upload).

A batch is stored first, row by row, and processed by a worker job; every row ends
accepted, duplicate or rejected with a reason, so nothing is silently dropped.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.auth.models import PostOffice, Role, User
from app.database import db, savepoint, utcnow
from app.errors import NotFound, ValidationFailed
from app.events import enqueue_after_commit
from tracking.models import IngestBatch, IngestRow
from tracking.services.events import REASONS, EventReport, Outcome, ingest, ingest_many
from tracking.status import HANDOVER_CODES

PROCESS_BATCH_JOB = "tracking.jobs:process_ingest_batch"
REQUIRED_COLUMNS = ("tracking_number", "code", "occurred_at")
OPTIONAL_COLUMNS = ("event_id", "office_code", "location", "reason_code", "action_code",
                    "retention_reason", "receiver_name")
ROW_REASONS: dict[str, Any] = {
    "missing_field": _l("A required value is empty."),
    "bad_time": _l("The time is not in ISO 8601 form, e.g. 2025-03-01T14:30:00+03:00."),
    "unknown_office": _l("There is no post office with this code."),
    "not_your_office": _l("You record scans at your own office only; a supervisor may "
                          "upload another office's."),
    "hand_over_at_counter": _l("A hand-over to the addressee is recorded at the counter, "
                               "with the receiver's identity document, not from a file."),
    "error": _l("This row could not be processed."),
}


def _too_many(n: int) -> ValidationFailed:
    limit = int(current_app.config["BULK_MAX_ROWS"])
    return ValidationFailed(
        _l("The file has %(n)s rows; at most %(limit)s rows are accepted at once. Split it "
           "into smaller files.", n=n, limit=limit), code="too_many_rows")


def parse_csv(data: bytes) -> list[dict[str, str]]:
    """The rows of an events CSV as dicts. Raises ValidationFailed (with a reason people
    can act on) for a file that is not UTF-8, lacks a required column or is too long."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            _l("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and upload it again."),
            code="bad_encoding") from exc
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValidationFailed(_l("Missing column(s): %(cols)s. The first line must name "
                                  "the columns.", cols=", ".join(missing)),
                               code="missing_columns")
    limit = int(current_app.config["BULK_MAX_ROWS"])
    rows: list[dict[str, str]] = []
    for row in reader:
        if len(rows) >= limit:
            raise _too_many(len(rows) + 1 + sum(1 for _ in reader))
        rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items()
                     if k is not None})
    if not rows:
        raise ValidationFailed(_l("The file has no rows."), code="empty")
    return rows


def submit_batch(rows: list[dict[str, Any]], *, source: str, partner: str | None = None,
                 submitted_by_id: int | None = None, filename: str = "") -> IngestBatch:
    """Store a batch of event rows and stage the job that processes them after commit.
    Flushes; the caller's unit of work commits.

    Raises ValidationFailed for an empty batch, one over BULK_MAX_ROWS, or rows that are
    not objects.
    """
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed(_l("Send a list of events."), code="empty")
    if len(rows) > int(current_app.config["BULK_MAX_ROWS"]):
        raise _too_many(len(rows))
    if not all(isinstance(r, dict) for r in rows):
        raise ValidationFailed(_l("Each event must be an object."), code="bad_rows")
    batch = IngestBatch(source=source, partner=partner, submitted_by_id=submitted_by_id,
                        filename=filename[:200], total_rows=len(rows))
    db.add(batch)
    db.flush()
    stored = ({k: (None if v is None else str(v)) for k, v in row.items()} for row in rows)
    if db.get_bind().dialect.name == "postgresql":
        # COPY: thousands of rows cost a fraction of an executemany's round of binds.
        cursor = db.connection().connection.driver_connection.cursor()
        with cursor.copy("COPY event_ingest_rows (batch_id, row_no, data) FROM STDIN") as copy:
            for i, data in enumerate(stored, start=1):
                copy.write_row((batch.id, i, json.dumps(data, ensure_ascii=False)))
    else:
        db.execute(IngestRow.__table__.insert(), [
            {"batch_id": batch.id, "row_no": i, "data": data}
            for i, data in enumerate(stored, start=1)])
    # By dotted path: the jobs module imports the services, not the reverse.
    enqueue_after_commit(PROCESS_BATCH_JOB, batch_id=batch.id)
    record_audit("tracking.batch_submitted", object_type="ingest_batch", object_id=batch.id,
                 actor_id=submitted_by_id, details={"rows": len(rows), "source": source,
                                                    "partner": partner})
    return batch


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def _own_office(batch: IngestBatch) -> int | None:
    """For a file a clerk uploaded in the back office, the clerk's office: their rows
    are scans at that office, as at the scanning page. None for partners' batches (they
    name the office of each event) and for supervisors and administrators."""
    if batch.source != "csv" or batch.submitted_by_id is None:
        return None
    clerk = db.get(User, batch.submitted_by_id)
    if clerk is None or clerk.has_role(Role.SUPERVISOR, Role.ADMIN):
        return None
    return clerk.post_office_id or -1  # a clerk with no office scans nowhere


def _report(data: dict[str, Any], batch: IngestBatch, offices: dict[str, int | None],
            own_office: int | None = None) -> tuple[EventReport | None, str | None]:
    for name in REQUIRED_COLUMNS:
        if not (data.get(name) or "").strip():
            return None, "missing_field"
    occurred = _parse_time(data.get("occurred_at"))
    if occurred is None:
        return None, "bad_time"
    if batch.source == "csv" and data["code"].strip().upper() in HANDOVER_CODES:
        # The hand-over's rules (destination office or a supervisor, the receiver's ID)
        # are the counter's (events.hand_over); a file carries no approval.
        return None, "hand_over_at_counter"
    office_id = None
    code = (data.get("office_code") or "").strip()
    if code:
        if code not in offices:
            offices[code] = db.scalar(select(PostOffice.id).where(PostOffice.code == code))
        office_id = offices[code]
        if office_id is None:
            return None, "unknown_office"
    if own_office is not None:
        if office_id not in (None, own_office):
            return None, "not_your_office"
        office_id = own_office
    return EventReport(
        code=data["code"], occurred_at=occurred, uid=(data.get("event_id") or None),
        office_id=office_id, location=(data.get("location") or ""),
        partner=batch.partner, source="partner" if batch.source == "api" else "csv",
        actor_id=batch.submitted_by_id, reason_code=data.get("reason_code") or None,
        action_code=data.get("action_code") or None,
        retention_reason=data.get("retention_reason") or None,
        receiver_name=data.get("receiver_name") or None,
    ), None


def process_batch(batch_id: int) -> IngestBatch | None:
    """Job body: ingest every unprocessed row of a batch and record each row's outcome.

    Rows already processed are skipped, so running it again finishes an interrupted batch
    and changes nothing in a finished one. The rows go through `ingest_many` together
    (set-based: a few statements for the whole batch, each parcel's status derived
    once); should that fail as a whole (another process stored one of the same event ids
    meanwhile), they are recorded one by one, each in its own savepoint, so a row that
    fails undoes only itself. Flushes; the job's unit of work commits.
    """
    batch = db.scalar(select(IngestBatch).where(IngestBatch.id == batch_id).with_for_update())
    if batch is None or batch.state == "done":
        return batch
    # Plain tuples, not ORM rows: outcomes are written in one executemany at the end.
    rows = db.execute(select(IngestRow.id, IngestRow.data).where(
        IngestRow.batch_id == batch.id, IngestRow.outcome.is_(None))
        .order_by(IngestRow.row_no)).all()
    offices = _offices(rows)
    own_office = _own_office(batch)
    outcomes: list[dict[str, Any]] = []
    items: list[tuple[int, dict[str, Any], EventReport]] = []
    for row_id, data in rows:
        report, problem = _report(data, batch, offices, own_office)
        if problem or report is None:
            outcomes.append(_rejected(row_id, problem or "error"))
        else:
            items.append((row_id, data, report))
    try:
        with savepoint(), _collector_paused():
            results = ingest_many([(data["tracking_number"], report)
                                   for _, data, report in items])
    except IntegrityError:
        results = None
    if results is not None:
        for (row_id, _, _), out in zip(items, results, strict=True):
            outcomes.append(_outcome(row_id, out))
    else:
        for row_id, data, _ in items:
            try:
                with savepoint():
                    # A fresh report: ingest_many may have normalised the first.
                    report, _problem = _report(data, batch, offices, own_office)
                    assert report is not None
                    out = ingest(data["tracking_number"], report)
            except Exception:  # one bad row must not sink the batch
                outcomes.append(_rejected(row_id, "error"))
                continue
            outcomes.append(_outcome(row_id, out))
    db.flush()
    _write_outcomes(outcomes)
    counts = dict(db.execute(select(IngestRow.outcome, func.count()).where(
        IngestRow.batch_id == batch.id).group_by(IngestRow.outcome)).all())
    batch.accepted = counts.get("accepted", 0)
    batch.duplicates = counts.get("duplicate", 0)
    batch.rejected = counts.get("rejected", 0)
    batch.state = "done"
    batch.finished_at = utcnow()
    return batch


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch builds its tens of thousands
    of short-lived tuples: each full collection walks every object of the process (the
    app, SQLAlchemy's metadata), which cost more than the batch's own work. Nothing the
    batch makes is cyclic garbage; reference counting frees it all the same."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _write_outcomes(outcomes: list[dict[str, Any]]) -> None:
    """Record every row's outcome: on PostgreSQL one UPDATE ... FROM unnest(arrays)
    (five parameters, not a bound statement per row); elsewhere an executemany."""
    if not outcomes:
        return
    if db.get_bind().dialect.name != "postgresql":
        db.execute(update(IngestRow), outcomes)
        return
    cursor = db.connection().connection.driver_connection.cursor()
    cursor.execute(
        "UPDATE event_ingest_rows AS r SET outcome = v.outcome, reason_code = v.reason_code, "
        "reason = v.reason, event_id = v.event_id FROM unnest(%s::bigint[], %s::text[], "
        "%s::text[], %s::text[], %s::bigint[]) AS v(id, outcome, reason_code, reason, "
        "event_id) WHERE r.id = v.id",
        [[o["id"] for o in outcomes], [o["outcome"] for o in outcomes],
         [o["reason_code"] for o in outcomes], [o["reason"] for o in outcomes],
         [o["event_id"] for o in outcomes]])


def _offices(rows: Sequence[Any]) -> dict[str, int | None]:
    """The ids of the offices the rows name, by code, in one query."""
    codes = {(data.get("office_code") or "").strip() for _, data in rows} - {""}
    if not codes:
        return {}
    found = dict(db.execute(select(PostOffice.code, PostOffice.id)
                            .where(PostOffice.code.in_(codes))).all())
    return {code: found.get(code) for code in codes}


def _rejected(row_id: int, problem: str) -> dict[str, Any]:
    return {"id": row_id, "outcome": "rejected", "reason_code": problem,
            "reason": str(ROW_REASONS[problem]), "event_id": None}


def _outcome(row_id: int, out: Outcome) -> dict[str, Any]:
    return {"id": row_id, "outcome": out.outcome, "reason_code": out.reason_code,
            "reason": (out.reason or None) and str(out.reason)[:300],
            "event_id": out.event_id}


def get_batch(batch_id: int) -> IngestBatch:
    batch = db.get(IngestBatch, batch_id)
    if batch is None:
        raise NotFound(_l("No such batch."))
    return batch


def batch_rows(batch_id: int, *, only_rejected: bool = False, limit: int = 1000
               ) -> list[IngestRow]:
    stmt = select(IngestRow).where(IngestRow.batch_id == batch_id)
    if only_rejected:
        stmt = stmt.where(IngestRow.outcome == "rejected")
    return list(db.scalars(stmt.order_by(IngestRow.row_no).limit(limit)))


def batch_summary(batch: IngestBatch, *, with_rows: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": batch.id, "state": batch.state, "total_rows": batch.total_rows,
        "accepted": batch.accepted, "duplicates": batch.duplicates,
        "rejected": batch.rejected,
    }
    if with_rows and batch.state == "done":
        out["rows"] = [{"row": r.row_no, "outcome": r.outcome, "reason_code": r.reason_code,
                        "reason": r.reason} for r in batch_rows(batch.id)]
    return out


def reason_text(code: str | None) -> str:
    if code in ROW_REASONS:
        return str(ROW_REASONS[code])
    if code in REASONS:
        return str(REASONS[code])
    return _("Rejected")
