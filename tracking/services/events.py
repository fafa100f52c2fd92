"""Recording UPU events on parcels: the one ingest path every source goes through.

Counter acceptance, scans, partner feeds, customs decisions and delivery all call
`ingest_for_parcel`, which checks the event, ignores a repeat (the same reported event, or
the same event at the same place within SCAN_REPEAT_WINDOW_SECONDS), stores it, re-derives
the parcel's status from the whole timeline (tracking.status.derive, which flags events
out of sequence) and publishes what changed. A hand-over to the addressee (EMI) from the
back office goes through `hand_over`: only at the parcel's destination office or with a
supervisor's approval, and only with the receiver's name and identity document.
Everything here flushes; whatever started the use case (a view, the API, a job, a
command) owns the unit of work that commits it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.auth.models import PostOffice, Role, User
from app.database import db, savepoint, utcnow
from app.events import enqueue_after_commit, publish, publish_many
from app.i18n import BAGHDAD
from app.numbers import ascii_digits
from tracking import s10
from tracking.models import CustomsCase, CustomsState, Direction, Parcel, ParcelEvent
from tracking.services.customs_state import open_case
from tracking.status import (
    CUSTOMS_DECISION_CODES,
    CUSTOMS_HOLD_CODES,
    DELIVERY_OFFICE_CODES,
    HANDOVER_CODES,
    Derivation,
    derive,
    refusal,
    timeline_order,
)
from tracking.upu import event_code

# Sources where a person is scanning now and should be told "no" rather than have a late
# or impossible event quietly flagged.
INTERACTIVE_SOURCES = frozenset({"counter", "scan"})
# Sources allowed to record Barid's own import-customs decisions.
CUSTOMS_SOURCES = frozenset({"customs", "system"})
# Sources whose events a person or a device scanned at a place: scanning the same event
# there again a moment later is a repeat, not news. Customs decisions and Barid's own
# events are not scans.
SCANNED_SOURCES = frozenset({"counter", "scan", "partner", "csv"})
# Who may approve a hand-over away from the parcel's destination office.
OVERRIDE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
ASSESS_CUSTOMS_JOB = "tracking.jobs:assess_customs"

NON_DELIVERY_REASONS: dict[str, Any] = {
    "no_one_home": _l("Nobody at the address"),
    "address_incomplete": _l("Address incomplete or not found"),
    "refused": _l("Recipient refused the parcel"),
    "moved": _l("Recipient moved"),
    "phone_unreachable": _l("Recipient's phone not answering"),
    "duty_unpaid": _l("Customs duty not paid"),
    "other": _l("Other reason"),
}
DELIVERY_ACTIONS: dict[str, Any] = {
    "retry": _l("Will try again"),
    "held_at_office": _l("Kept at the post office for pickup"),
    "return_to_sender": _l("Returned to sender"),
}

REASONS: dict[str, Any] = {
    "unknown_code": _l("There is no such event code."),
    "unknown_parcel": _l("No parcel has this number."),
    "naive_time": _l("The event time has no time zone."),
    "future_time": _l("The event time is in the future."),
    "missing_reason": _l("A failed delivery needs a reason and an action."),
    "missing_retention_reason": _l("A customs hold needs a reason."),
    "missing_receiver": _l("Delivery needs the name of who received the parcel."),
    "not_for_direction": _l("This event does not apply to this kind of parcel."),
    "not_accepted_yet": _l("This parcel has not been accepted at a post office yet."),
    "closed": _l("This parcel's journey is already finished."),
    "customs_only": _l("Only customs can hold or release an inbound parcel."),
    "held_by_customs": _l("Customs has not released this parcel yet."),
    "duty_unpaid": _l("Customs duty must be paid before hand-over."),
    "missing_receiver_id": _l("Hand-over needs the number of the receiver's identity "
                              "document."),
    "already_delivered": _l("This parcel has already been handed over."),
    "wrong_office": _l("This parcel is not handed over at your office. A supervisor may "
                       "approve the hand-over here."),
    "no_destination": _l("This parcel has not arrived at the office that delivers it. A "
                         "supervisor may approve the hand-over here."),
    "bad_approver": _l("Only a supervisor other than you may approve this hand-over."),
    "no_office": _l("Your account is not attached to a post office. Ask an "
                    "administrator."),
}
OUT_OF_SEQUENCE = _l("Saved, but out of sequence: the parcel had already gone further. "
                     "It is flagged on the parcel page and does not change the status.")


@dataclass
class EventReport:
    """What someone says happened to a parcel."""

    code: str
    occurred_at: datetime | None = None
    uid: str | None = None
    office_id: int | None = None
    location: str = ""
    actor_id: int | None = None
    partner: str | None = None
    source: str = "scan"
    reason_code: str | None = None
    action_code: str | None = None
    retention_reason: str | None = None
    receiver_name: str | None = None
    receiver_id_number: str | None = None
    note: str = ""


@dataclass
class Outcome:
    outcome: str  # accepted, duplicate, rejected
    number: str
    code: str
    reason_code: str | None = None
    reason: str | None = None
    event_id: int | None = None
    status: str | None = None
    after_final: bool = False
    out_of_sequence: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome != "rejected"

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "tracking_number": self.number, "code": self.code,
                "reason_code": self.reason_code, "reason": self.reason,
                "status": self.status, "after_final": self.after_final,
                "out_of_sequence": self.out_of_sequence}


def _reject(number: str, code: str, reason_code: str, reason: Any = None) -> Outcome:
    return Outcome("rejected", number, code, reason_code, str(reason or REASONS[reason_code]))


def event_uid(number: str, report: EventReport, occurred: datetime) -> str:
    """A reporter's own id, or a digest of the facts: the same report twice is one event."""
    if report.uid:
        return report.uid.strip()[:80]
    facts = "|".join([number, report.code.upper(), occurred.astimezone(UTC).isoformat(),
                      str(report.office_id or ""), report.location.strip().lower()])
    return "d:" + hashlib.sha256(facts.encode()).hexdigest()[:64]


def find_parcel(number: str, *, lock: bool = False) -> Parcel | None:
    """The parcel numbered `number` (already normalised), row-locked when `lock`: then it
    is re-read under the lock, not taken from what the session loaded before."""
    stmt = select(Parcel).where(Parcel.tracking_number == number)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.scalar(stmt)


def ingest(number: str, report: EventReport) -> Outcome:
    """Record `report` on the parcel numbered `number` (as typed). Flushes, never raises
    for a refused event: the Outcome says why."""
    validity = s10.validate(number)
    if not validity:
        return _reject(validity.number, report.code, "invalid_number", validity.reason)
    parcel = find_parcel(validity.number, lock=True)
    if parcel is None:
        return _reject(validity.number, report.code, "unknown_parcel")
    return ingest_for_parcel(parcel, report)


def ingest_for_parcel(parcel: Parcel, report: EventReport) -> Outcome:
    """Check, de-duplicate, store `report` and re-derive the parcel's status. Flushes.

    The caller holds the parcel's row lock (or just created the parcel).
    """
    number = parcel.tracking_number
    checked = _check_report(number, report)
    if isinstance(checked, Outcome):
        return checked
    info, occurred = checked
    code = report.code
    uid = event_uid(number, report, occurred)
    if db.scalar(select(ParcelEvent.id).where(ParcelEvent.uid == uid)) is not None:
        return Outcome("duplicate", number, code, status=parcel.status)

    existing = list(db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id)))
    refused = _check_against_timeline(parcel, report, occurred, existing,
                                      closed=parcel.closed)
    if refused is not None:
        return refused

    event = ParcelEvent(**_event_values(parcel.id, report, uid, info.status, occurred))
    try:
        with savepoint():
            db.add(event)
            db.flush()
    except IntegrityError:
        # Another process stored the same event id a moment ago.
        return Outcome("duplicate", number, code, status=parcel.status)
    existing.append(event)
    parcel.delayed_at = None
    derivation = apply_timeline(parcel, existing, new_event=event)
    out = Outcome("accepted", number, code, event_id=event.id, status=parcel.status,
                  after_final=event.after_final, out_of_sequence=event.out_of_sequence)
    if event.out_of_sequence:
        out.reason_code, out.reason = "out_of_sequence", str(OUT_OF_SEQUENCE)
    if not (event.after_final or event.out_of_sequence):
        _after_event(parcel, event, derivation, report)
        out.status = parcel.status
    # The re-derived status is written now, so the caller's unit of work (and anything
    # it reads next) sees the parcel as the event left it.
    db.flush()
    return out


def _check_report(number: str, report: EventReport) -> Outcome | tuple[Any, datetime]:
    """The checks that need nothing but the report: a refusal, or (code info, time).
    Normalises the report's code and drops details that do not belong to it."""
    code = (report.code or "").strip().upper()
    report.code = code
    info = event_code(code)
    if info is None:
        return _reject(number, code, "unknown_code")
    occurred = report.occurred_at or utcnow()
    if occurred.tzinfo is None:
        return _reject(number, code, "naive_time")
    if occurred > utcnow() + timedelta(minutes=15):
        return _reject(number, code, "future_time")
    if code == "EMH" and not (report.reason_code and report.action_code):
        return _reject(number, code, "missing_reason")
    if code == "EME" and not (report.retention_reason or "").strip():
        return _reject(number, code, "missing_retention_reason")
    if code == "EMI" and not (report.receiver_name or "").strip():
        return _reject(number, code, "missing_receiver")
    _keep_only_what_belongs(report)
    return info, occurred


def _check_against_timeline(parcel: Any, report: EventReport, occurred: datetime,
                            existing: Sequence[Any], *, closed: bool,
                            window: int | None = None) -> Outcome | None:
    """The checks against the parcel's events so far: a refusal or repeat, or None.
    `window` is SCAN_REPEAT_WINDOW_SECONDS when the caller has read it already."""
    number, code = parcel.tracking_number, report.code
    why = refusal(parcel.direction, existing, code)
    if why:
        return _reject(number, code, why)
    if report.source in INTERACTIVE_SOURCES and closed:
        return _reject(number, code, "closed")
    earlier = _repeated_scan(report, occurred, existing, window)
    if earlier is not None:
        return Outcome("duplicate", number, code, "repeat_scan", _already_scanned(earlier),
                       status=parcel.status)
    inbound = parcel.direction == Direction.INBOUND
    if inbound and code in CUSTOMS_DECISION_CODES and report.source not in CUSTOMS_SOURCES:
        return _reject(number, code, "customs_only")
    if code in HANDOVER_CODES and inbound:
        why = _customs_blocks_handover(parcel, existing)
        if why:
            return _reject(number, code, why)
    return None


def _event_values(parcel_id: int, report: EventReport, uid: str, status: str,
                  occurred: datetime) -> dict[str, Any]:
    return {
        "uid": uid, "parcel_id": parcel_id, "code": report.code, "status": status,
        "occurred_at": occurred,
        "occurred_utc_offset": int((occurred.utcoffset() or timedelta()).total_seconds()
                                   // 60),
        "office_id": report.office_id, "location": report.location.strip()[:120],
        "actor_id": report.actor_id, "partner": report.partner, "source": report.source,
        "reason_code": report.reason_code, "action_code": report.action_code,
        "retention_reason": (report.retention_reason or None),
        "receiver_name": (report.receiver_name or None),
        "receiver_id_number": (report.receiver_id_number or None),
        "note": (report.note or "")[:500],
    }


def _keep_only_what_belongs(report: EventReport) -> None:
    """Drop the details that do not belong to the report's event: a scanning page or a
    feed that sends the last failed-delivery reason, receiver or hold reason along with
    every scan must not have them repeated on later events."""
    if report.code != "EMH":
        report.reason_code = report.action_code = None
    if report.code not in HANDOVER_CODES:
        report.receiver_name = report.receiver_id_number = None
    if report.code not in CUSTOMS_HOLD_CODES:
        report.retention_reason = None


def _repeated_scan(report: EventReport, occurred: datetime,
                   existing: Sequence[Any], window: int | None = None) -> Any | None:
    """The earlier event that `report` repeats: the same code at the same office (or the
    same partner place) within SCAN_REPEAT_WINDOW_SECONDS of it, or None."""
    if window is None:
        window = int(current_app.config["SCAN_REPEAT_WINDOW_SECONDS"])
    place = (report.location or "").strip().lower()
    if window <= 0 or report.source not in SCANNED_SOURCES or not (report.office_id or place):
        return None
    for e in existing:
        if e.code != report.code:
            continue
        same_place = (e.office_id == report.office_id if report.office_id
                      else e.office_id is None and (e.location or "").strip().lower() == place)
        if same_place and abs((e.occurred_at - occurred).total_seconds()) <= window:
            return e
    return None


def _already_scanned(earlier: Any) -> str:
    at = earlier.occurred_at.astimezone(BAGHDAD).strftime("%H:%M")
    return str(_l("Already scanned here at %(time)s; nothing changed.", time=at))


def _customs_blocks_handover(parcel: Any, existing: Sequence[Any]) -> str | None:
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
    if derive(existing).held_by_customs:
        return "held_by_customs"
    if case is None or case.state != CustomsState.RELEASED:
        return "held_by_customs"
    if case.duty_outstanding:
        return "duty_unpaid"
    return None


def apply_timeline(parcel: Parcel, events: list[ParcelEvent], *,
                   new_event: ParcelEvent | None = None) -> Derivation:
    """Re-derive the parcel's cached status from `events` (all of its events) and publish
    the change. Flushes nothing by itself; the caller's flush or commit writes it."""
    d = derive(events, delayed_at=parcel.delayed_at)
    flagged = set(d.after_final)
    stray = set(d.out_of_sequence)
    for i, ev in enumerate(events):
        if ev.after_final != (i in flagged):
            ev.after_final = i in flagged
        if ev.out_of_sequence != (i in stray):
            ev.out_of_sequence = i in stray
    old = parcel.status
    parcel.status = d.status
    parcel.closed = d.closed
    parcel.failed_attempts = d.failed_attempts
    parcel.last_event_at = d.last_event_at
    parcel.last_activity_at = utcnow()
    payload = {"parcel_id": parcel.id, "tracking_number": parcel.tracking_number,
               "order_ref": parcel.order_ref, "status": d.status}
    if old != d.status:
        publish("parcel.status_changed", {**payload, "previous_status": old})
        if d.status == "delivered":
            publish("parcel.delivered", {**payload, "receiver_name":
                                         new_event.receiver_name if new_event else None})
        elif d.status == "return_to_sender":
            publish("parcel.returned", payload)
    if new_event is not None and new_event.code in CUSTOMS_HOLD_CODES and d.held_by_customs:
        publish("parcel.held_by_customs",
                {**payload, "reason": new_event.retention_reason or ""})
    return d


def _after_event(parcel: Parcel, event: ParcelEvent, derivation: Derivation,
                 report: EventReport) -> None:
    """What an accepted event sets in motion: customs on arrival, return after failures."""
    if event.code == "EMD" and parcel.direction == Direction.INBOUND:
        case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
        if case is None:
            open_case(parcel.id, actor_id=event.actor_id)
            # By dotted path: the jobs module imports the services, not the reverse.
            enqueue_after_commit(ASSESS_CUSTOMS_JOB, parcel_id=parcel.id)
    if event.code == "EMH" and not parcel.closed and (
        event.action_code == "return_to_sender"
        or derivation.failed_attempts >= int(current_app.config["DELIVERY_MAX_ATTEMPTS"])
    ):
        return_to_sender(parcel, occurred_at=event.occurred_at + timedelta(seconds=1),
                         why=f"{derivation.failed_attempts} failed delivery attempts",
                         office_id=event.office_id)


def return_to_sender(parcel: Parcel, *, occurred_at: datetime, why: str,
                     office_id: int | None = None, actor_id: int | None = None) -> Outcome:
    """Close the parcel as returned to its sender (EDX), publishing parcel.returned. Flushes."""
    return ingest_for_parcel(parcel, EventReport(
        code="EDX", occurred_at=occurred_at, source="system", office_id=office_id,
        actor_id=actor_id, note=f"return to sender: {why}"[:500],
    ))


def record_scan(*, number: str, code: str, office_id: int | None, actor_id: int | None,
                reason_code: str | None = None, action_code: str | None = None,
                receiver_name: str | None = None, receiver_id_number: str | None = None,
                note: str = "", occurred_at: datetime | None = None,
                source: str = "scan") -> Outcome:
    """One scan in the back office: record event `code` at `office_id` (the scanning
    clerk's own office, which the caller takes from the clerk, never from the browser)
    on parcel `number`.

    A final delivery (EMI) is a hand-over and goes through `hand_over`'s rules. Flushes
    the event and, when accepted, an audit record of the custody change; a refused or
    repeated scan changes nothing and its Outcome carries the reason (never raises).
    """
    if office_id is None:
        return _reject(s10.normalise(number), code, "no_office")
    if (code or "").strip().upper() in HANDOVER_CODES:
        return hand_over(number=number, office_id=office_id, clerk_id=actor_id,
                         receiver_name=receiver_name or "",
                         receiver_id_number=receiver_id_number or "",
                         occurred_at=occurred_at, source=source)
    if reason_code is not None and reason_code not in NON_DELIVERY_REASONS:
        return _reject(s10.normalise(number), code, "missing_reason")
    if action_code is not None and action_code not in DELIVERY_ACTIONS:
        return _reject(s10.normalise(number), code, "missing_reason")
    out = ingest(number, EventReport(
        code=code, occurred_at=occurred_at, office_id=office_id, actor_id=actor_id,
        source=source, reason_code=reason_code, action_code=action_code, note=note,
    ))
    if out.outcome == "accepted":
        record_audit("parcel.event", object_type="parcel", object_id=out.number,
                     actor_id=actor_id, details={"code": out.code, "office_id": office_id,
                                                 "out_of_sequence": out.out_of_sequence})
    return out


def destination_office_id(parcel: Parcel, events: list[ParcelEvent]) -> int | None:
    """The office where `parcel` is handed to its addressee, or None while unknown.

    The pickup office the recipient chose, when there is one. Otherwise the office that
    last took the parcel in for delivery (arrival at the delivery office, held at the
    depot, out for delivery, ready for pickup, a failed attempt), counting only offices
    in the recipient's governorate, so that a parcel scanned into the wrong town is not
    thereby delivered there. Flagged events do not count.
    """
    if parcel.pickup_office_id:
        return parcel.pickup_office_id
    ids = {e.office_id for e in events if e.office_id and e.code in DELIVERY_OFFICE_CODES}
    if not ids:
        return None
    governorates = dict(db.execute(select(PostOffice.id, PostOffice.governorate)
                                   .where(PostOffice.id.in_(ids))).all())
    wanted = parcel.recipient_governorate if parcel.recipient_country == "IQ" else None
    for i in reversed(timeline_order(events)):
        e = events[i]
        if (e.code in DELIVERY_OFFICE_CODES and e.office_id and not e.after_final
                and not e.out_of_sequence
                and (wanted is None or governorates.get(e.office_id) == wanted)):
            return e.office_id
    return None


def _id_number(raw: str | None) -> str:
    """An identity document number as typed: Arabic-Indic digits read, spaces squeezed."""
    return " ".join(ascii_digits(raw or "").split()).upper()[:40]


def hand_over(*, number: str, office_id: int | None, clerk_id: int | None,
              receiver_name: str, receiver_id_number: str, approver_id: int | None = None,
              occurred_at: datetime | None = None, source: str = "counter") -> Outcome:
    """The clerk at `office_id` hands parcel `number` to its addressee (EMI).

    Allowed only at the parcel's destination office (`destination_office_id`), or
    elsewhere when `approver_id` (a supervisor or administrator, not the clerk, whom the
    caller has authenticated) approves; both are written to the audit log. Needs the
    receiver's name and identity document number, which are kept on the delivery event;
    refused while customs holds the parcel or its duty is unpaid. The parcel row is
    locked first, so of two clerks handing over one parcel at once, one succeeds and the
    other is told it is already handed over.

    Flushes the event and its audit records when accepted; a refusal changes nothing and
    its Outcome says why (never raises for it).
    """
    validity = s10.validate(number)
    if not validity:
        return _reject(validity.number, "EMI", "invalid_number", validity.reason)
    number = validity.number
    if office_id is None:
        return _reject(number, "EMI", "no_office")
    name = " ".join((receiver_name or "").split())[:200]
    id_number = _id_number(receiver_id_number)
    if not name:
        return _reject(number, "EMI", "missing_receiver")
    if not any(c.isalnum() for c in id_number):
        return _reject(number, "EMI", "missing_receiver_id")
    parcel = find_parcel(number, lock=True)
    if parcel is None:
        return _reject(number, "EMI", "unknown_parcel")
    if parcel.closed:
        return _reject(number, "EMI",
                       "already_delivered" if parcel.status == "delivered" else "closed")
    events = list(db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id)))
    why = refusal(parcel.direction, events, "EMI")
    if why is None and parcel.direction == Direction.INBOUND:
        why = _customs_blocks_handover(parcel, events)
    if why:
        return _reject(number, "EMI", why)
    destination = destination_office_id(parcel, events)
    override = destination != office_id
    if override:
        approver = db.get(User, approver_id) if approver_id else None
        if approver_id is None:
            return _reject(number, "EMI",
                           "no_destination" if destination is None else "wrong_office")
        if (approver is None or not approver.active or approver.id == clerk_id
                or not approver.has_role(*OVERRIDE_ROLES)):
            return _reject(number, "EMI", "bad_approver")
    out = ingest_for_parcel(parcel, EventReport(
        code="EMI", occurred_at=occurred_at, office_id=office_id, actor_id=clerk_id,
        source=source, receiver_name=name, receiver_id_number=id_number,
        note="hand-over approved by a supervisor" if override else "",
    ))
    if out.outcome != "accepted":
        return out
    details = {"office_id": office_id, "destination_office_id": destination,
               "event_id": out.event_id, "receiver_name": name}
    if override:
        record_audit("parcel.handover_override", object_type="parcel", object_id=number,
                     actor_id=approver_id, details={**details, "clerk_id": clerk_id})
    record_audit("parcel.handover", object_type="parcel", object_id=number,
                 actor_id=clerk_id, details={**details, "approved_by_id": approver_id
                                             if override else None})
    return out


def record_partner_event(*, number: str, code: str, occurred_at: datetime,
                         uid: str | None = None, location: str = "",
                         partner: str | None = None, office_id: int | None = None,
                         reason_code: str | None = None, action_code: str | None = None,
                         retention_reason: str | None = None,
                         receiver_name: str | None = None) -> Outcome:
    """One event reported by a partner post or device feed. Flushes when accepted; a
    refused event changes nothing and its Outcome says why.

    Late and repeated events are expected here: a repeat is a duplicate, an event after
    the final one is kept and flagged.
    """
    out = ingest(number, EventReport(
        code=code, occurred_at=occurred_at, uid=uid, location=location, partner=partner,
        office_id=office_id, source="partner", reason_code=reason_code,
        action_code=action_code, retention_reason=retention_reason,
        receiver_name=receiver_name,
    ))
    return out


# --- Many events at once (partner feeds, uploaded files) ------------------------------


class _Timeline:
    """One event of a parcel's timeline as the batch path holds it: only the columns
    the state machine and the repeat-scan rule read, and the two flags it may change."""

    __slots__ = ("id", "code", "occurred_at", "office_id", "location", "after_final",
                 "out_of_sequence", "row", "values")

    def __init__(self, id: int, code: str, occurred_at: datetime, office_id: int | None,
                 location: str, after_final: bool, out_of_sequence: bool,
                 row: int | None = None, values: dict[str, Any] | None = None) -> None:
        self.id, self.code, self.occurred_at = id, code, occurred_at
        self.office_id, self.location = office_id, location
        self.after_final, self.out_of_sequence = after_final, out_of_sequence
        self.row, self.values = row, values  # set for the batch's own new events


@dataclass
class _ParcelState:
    id: int
    tracking_number: str
    direction: str
    status: str
    closed: bool
    delayed_at: datetime | None
    order_ref: str | None
    events: list[_Timeline] = field(default_factory=list)
    new: list[_Timeline] = field(default_factory=list)


# Placeholder ids for the batch's new events until the database numbers them: above any
# real id and in arrival order, so timeline ties break exactly as they will afterwards.
_NEW_ID_BASE = 10**15


def ingest_many(items: Sequence[tuple[str, EventReport]]) -> list[Outcome]:
    """Record many reports at once, with the same rules and outcomes as `ingest` for each
    in turn: one outcome per item, in order. Flushes; never raises for a refused event.

    Set-based: the parcels are locked in id order in one query, the known event ids
    read in one, the parcels' events in one, the new events inserted in one executemany
    and every parcel's status derived once from its whole timeline (late events are
    flagged, never moving a parcel backwards). Each status change is published once per
    parcel; customs on arrival and return after failed attempts follow as for one event.
    Raises IntegrityError only if another transaction stored one of the same event ids
    meanwhile (the caller may then retry, or record the events one by one).
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    pending: list[tuple[int, str, EventReport, Any, datetime, str]] = []
    for i, (raw, report) in enumerate(items):
        validity = s10.validate(raw)
        if not validity:
            outcomes[i] = _reject(validity.number, report.code, "invalid_number",
                                  validity.reason)
            continue
        checked = _check_report(validity.number, report)
        if isinstance(checked, Outcome):
            outcomes[i] = checked
            continue
        info, occurred = checked
        pending.append((i, validity.number, report, info, occurred,
                        event_uid(validity.number, report, occurred)))
    if not pending:
        return [o for o in outcomes if o is not None]

    parcels = _lock_parcels({number for _, number, *_ in pending})
    known = set(db.scalars(select(ParcelEvent.uid).where(
        _among(ParcelEvent.uid, {uid for *_, uid in pending}))))
    for row in _timelines([p.id for p in parcels.values()]):
        parcels[row[0]].events.append(_Timeline(*row[1:]))
    by_id = {p.id: p for p in parcels.values()}
    parcels_by_number = {p.tracking_number: p for p in parcels.values()}

    window = int(current_app.config["SCAN_REPEAT_WINDOW_SECONDS"])  # once, not per row
    for i, number, report, info, occurred, uid in pending:
        parcel = parcels_by_number.get(number)
        if parcel is None:
            outcomes[i] = _reject(number, report.code, "unknown_parcel")
            continue
        if uid in known:
            outcomes[i] = Outcome("duplicate", number, report.code, status=parcel.status)
            continue
        closed = (derive(parcel.events).closed if report.source in INTERACTIVE_SOURCES
                  else parcel.closed)
        refused = _check_against_timeline(parcel, report, occurred, parcel.events,
                                          closed=closed, window=window)
        if refused is not None:
            outcomes[i] = refused
            continue
        known.add(uid)
        event = _Timeline(_NEW_ID_BASE + i, report.code, occurred, report.office_id,
                          report.location.strip()[:120], False, False, row=i,
                          values=_event_values(parcel.id, report, uid, info.status,
                                               occurred))
        parcel.events.append(event)
        parcel.new.append(event)

    touched = [p for p in by_id.values() if p.new]
    flag_changes: list[dict[str, Any]] = []
    derivations = {p.id: _derive_batch(p, flag_changes) for p in touched}
    _write_flags(flag_changes)
    _insert_events([e for p in touched for e in p.new])
    _write_parcels(touched, derivations)

    returned = [p for p in touched if _after_batch(p, derivations[p.id])]
    if returned:
        # A return to sender re-derived those timelines: read back what it flagged.
        db.flush()
        flags = {r.id: r for r in db.execute(
            select(ParcelEvent.id, ParcelEvent.after_final, ParcelEvent.out_of_sequence)
            .where(ParcelEvent.id.in_([e.id for p in returned for e in p.new])))}
        for p in returned:
            p.status = db.scalar(select(Parcel.status).where(Parcel.id == p.id)) or p.status
            for e in p.new:
                e.after_final, e.out_of_sequence = (flags[e.id].after_final,
                                                    flags[e.id].out_of_sequence)
    out_of_sequence = str(OUT_OF_SEQUENCE)  # translated once, not once per event
    for p in touched:
        for e in p.new:
            assert e.row is not None
            out = Outcome("accepted", p.tracking_number, e.code, event_id=e.id,
                          status=p.status, after_final=e.after_final,
                          out_of_sequence=e.out_of_sequence)
            if e.out_of_sequence:
                out.reason_code, out.reason = "out_of_sequence", out_of_sequence
            outcomes[e.row] = out
    db.flush()
    return [o for o in outcomes if o is not None]


def _among(column: Any, values: set[str]) -> Any:
    """`column` is one of `values` (strings): on PostgreSQL `= ANY(array)`, one
    parameter, where IN would be thousands to render and bind; IN elsewhere."""
    if db.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    return column.in_(values)


def _timelines(parcel_ids: list[int]) -> Sequence[tuple]:
    """(parcel id, event id, code, occurred_at, office id, location, after_final,
    out_of_sequence) of every event of the parcels. A batch's parcels hold tens of
    thousands of events: on PostgreSQL they are read as the driver's plain tuples, which
    costs a fraction of building result rows."""
    if not parcel_ids:
        return []
    if db.get_bind().dialect.name == "postgresql":
        cursor = db.connection().connection.driver_connection.cursor()
        return cursor.execute(
            "SELECT parcel_id, id, code, occurred_at, office_id, location, after_final, "
            "out_of_sequence FROM parcel_events WHERE parcel_id = ANY(%s)",
            [parcel_ids]).fetchall()
    return db.execute(select(
        ParcelEvent.parcel_id, ParcelEvent.id, ParcelEvent.code, ParcelEvent.occurred_at,
        ParcelEvent.office_id, ParcelEvent.location, ParcelEvent.after_final,
        ParcelEvent.out_of_sequence).where(ParcelEvent.parcel_id.in_(parcel_ids))).all()


def _lock_parcels(numbers: set[str]) -> dict[int, _ParcelState]:
    """The parcels numbered `numbers`, row-locked in id order (the order every path
    locks parcels in), as the few columns ingest reads."""
    rows = db.execute(
        select(Parcel.id, Parcel.tracking_number, Parcel.direction, Parcel.status,
               Parcel.closed, Parcel.delayed_at, Parcel.order_ref)
        .where(_among(Parcel.tracking_number, numbers)).order_by(Parcel.id).with_for_update())
    return {r.id: _ParcelState(*r) for r in rows}


def _insert_events(events: list[_Timeline]) -> None:
    """Store the batch's new events and give each its id. On PostgreSQL the ids are drawn
    from the sequence in one query and the rows sent with COPY (a multi-row INSERT of
    thousands of rows costs more to build and parse than to run); elsewhere one
    INSERT ... RETURNING of them all."""
    if not events:
        return
    now = utcnow()
    rows = [{**e.values, "after_final": e.after_final, "out_of_sequence": e.out_of_sequence,
             "received_at": now} for e in events]
    table = ParcelEvent.__table__
    if db.get_bind().dialect.name != "postgresql":
        ids = db.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                         rows).scalars().all()
        for e, new_id in zip(events, ids, strict=True):
            e.id = new_id
        return
    ids = db.scalars(select(func.nextval(func.pg_get_serial_sequence("parcel_events", "id")))
                     .select_from(func.generate_series(1, len(events)))).all()
    columns = ["id", *rows[0]]
    cursor = db.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY parcel_events ({', '.join(columns)}) FROM STDIN") as copy:
        for e, new_id, row in zip(events, ids, rows, strict=True):
            e.id = new_id
            copy.write_row([new_id, *row.values()])


def _driver_cursor() -> Any:
    """A cursor of the driver's own on the session's connection (in its transaction):
    for the statements that take whole arrays, without SQLAlchemy's per-row binding.
    Flushes first, as the session's own execute would, so the statement sees every
    pending change."""
    db.flush()
    return db.connection().connection.driver_connection.cursor()


def _write_flags(changes: list[dict[str, Any]]) -> None:
    """Store the changed after_final/out_of_sequence flags of events already stored:
    on PostgreSQL one UPDATE ... FROM unnest(arrays), elsewhere an executemany."""
    if not changes:
        return
    if db.get_bind().dialect.name == "postgresql":
        _driver_cursor().execute(
            "UPDATE parcel_events AS e SET after_final = v.after_final, "
            "out_of_sequence = v.out_of_sequence FROM unnest(%s::bigint[], %s::boolean[], "
            "%s::boolean[]) AS v(id, after_final, out_of_sequence) WHERE e.id = v.id",
            [[c["_id"] for c in changes], [c["_after_final"] for c in changes],
             [c["_out_of_sequence"] for c in changes]])
        return
    table = ParcelEvent.__table__
    db.execute(update(table).where(table.c.id == bindparam("_id")).values(
        after_final=bindparam("_after_final"),
        out_of_sequence=bindparam("_out_of_sequence")), changes)


def _derive_batch(parcel: _ParcelState, flag_changes: list[dict[str, Any]]) -> Derivation:
    """Derive `parcel`'s status once from its whole timeline, setting every event's flags
    (and adding the changed flags of events already stored to `flag_changes`)."""
    d = derive(parcel.events, delayed_at=None)  # any accepted event clears the delay mark
    flagged, stray = set(d.after_final), set(d.out_of_sequence)
    for i, ev in enumerate(parcel.events):
        after_final, out_of_sequence = i in flagged, i in stray
        if (ev.after_final, ev.out_of_sequence) != (after_final, out_of_sequence):
            ev.after_final, ev.out_of_sequence = after_final, out_of_sequence
            if ev.values is None:
                flag_changes.append({"_id": ev.id, "_after_final": after_final,
                                     "_out_of_sequence": out_of_sequence})
    return d


def _write_parcels(parcels: list[_ParcelState], derivations: dict[int, Derivation]) -> None:
    """Write each parcel's derived status in one executemany and publish what changed,
    once per parcel (as `apply_timeline` does for one event)."""
    if not parcels:
        return
    now = utcnow()
    if db.get_bind().dialect.name == "postgresql":
        # One statement with five array parameters, not a bound UPDATE per parcel.
        ds = [derivations[p.id] for p in parcels]
        _driver_cursor().execute(
            "UPDATE parcels AS p SET status = v.status, closed = v.closed, "
            "failed_attempts = v.failed, last_event_at = v.last, last_activity_at = %s, "
            "delayed_at = NULL FROM unnest(%s::bigint[], %s::text[], %s::boolean[], "
            "%s::int[], %s::timestamptz[]) AS v(id, status, closed, failed, last) "
            "WHERE p.id = v.id",
            [now, [p.id for p in parcels], [d.status for d in ds], [d.closed for d in ds],
             [d.failed_attempts for d in ds], [d.last_event_at for d in ds]])
    else:
        table = Parcel.__table__
        db.execute(update(table).where(table.c.id == bindparam("_id")).values(
            status=bindparam("_status"), closed=bindparam("_closed"),
            failed_attempts=bindparam("_failed"), last_event_at=bindparam("_last"),
            last_activity_at=bindparam("_now"), delayed_at=None), [
            {"_id": p.id, "_status": derivations[p.id].status,
             "_closed": derivations[p.id].closed,
             "_failed": derivations[p.id].failed_attempts,
             "_last": derivations[p.id].last_event_at, "_now": now} for p in parcels])
    news: list[tuple[str, dict[str, Any]]] = []
    for p in parcels:
        d = derivations[p.id]
        old, p.status, p.closed = p.status, d.status, d.closed
        payload = {"parcel_id": p.id, "tracking_number": p.tracking_number,
                   "order_ref": p.order_ref, "status": d.status}
        counted = [e for e in p.new if not (e.after_final or e.out_of_sequence)]
        if old != d.status:
            news.append(("parcel.status_changed", {**payload, "previous_status": old}))
            if d.status == "delivered":
                handed = [e for e in counted if e.code in HANDOVER_CODES]
                news.append(("parcel.delivered", {**payload, "receiver_name": (
                    handed[-1].values or {}).get("receiver_name") if handed else None}))
            elif d.status == "return_to_sender":
                news.append(("parcel.returned", payload))
        holds = [e for e in counted if e.code in CUSTOMS_HOLD_CODES]
        if holds and d.held_by_customs:
            news.append(("parcel.held_by_customs",
                         {**payload, "reason": (holds[-1].values or {}).get(
                             "retention_reason") or ""}))
    # One multi-row INSERT of the events and one of their jobs, not an ORM object each.
    publish_many(news)


def _after_batch(parcel: _ParcelState, d: Derivation) -> bool:
    """What the batch's accepted events set in motion (as `_after_event` for one):
    customs on arrival of an inbound parcel, return after too many failed attempts.
    True when the parcel was returned to its sender."""
    if not any(e.code in ("EMD", "EMH") and not (e.after_final or e.out_of_sequence)
               for e in parcel.new):
        return False  # nothing new that sets anything in motion: no need to sort
    counted = [parcel.events[i] for i in timeline_order(parcel.events)]
    counted = [e for e in counted if not (e.after_final or e.out_of_sequence)]
    new = {id(e) for e in parcel.new}
    arrivals = [e for e in counted if e.code == "EMD" and id(e) in new]
    if (parcel.direction == Direction.INBOUND and arrivals and db.scalar(
            select(CustomsCase.id).where(CustomsCase.parcel_id == parcel.id)) is None):
        open_case(parcel.id, actor_id=(arrivals[0].values or {}).get("actor_id"))
        enqueue_after_commit(ASSESS_CUSTOMS_JOB, parcel_id=parcel.id)
    if d.closed:
        return False
    limit = int(current_app.config["DELIVERY_MAX_ATTEMPTS"])
    failed = 0
    for e in counted:
        if e.code != "EMH":
            continue
        failed += 1
        if id(e) in new and ((e.values or {}).get("action_code") == "return_to_sender"
                             or failed >= limit):
            entity = db.get(Parcel, parcel.id, populate_existing=True)
            assert entity is not None
            return_to_sender(entity, occurred_at=e.occurred_at + timedelta(seconds=1),
                             why=f"{failed} failed delivery attempts",
                             office_id=e.office_id)
            return True
    return False
