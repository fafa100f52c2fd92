"""The parcel state machine: which events a parcel may take, and its status from its events.

Three tables and one function, nothing else decides a parcel's status:

- `CODES_BY_DIRECTION`: the UPU codes that make sense for a domestic parcel (no exchange
  offices, no customs) and for an international one (all of them).
- `OPENING_CODES`: what may start a timeline. A domestic parcel starts at the counter
  (EMA); an inbound one may start with any event its origin or transit posts report, or
  with its arrival at our office of exchange (EMD).
- `STAGES`: the order of the journey's stages, which tells an event out of sequence.
- `derive(events)`: the status, read from the events in the order they happened (not
  the order they arrived), with these rules, in order:
    1. no events: `pending`;
    2. each event before the first final one sets the status to its normalized status;
    3. a final event (EMI, EDX, EXX: the CSV's `terminal` column) closes the parcel;
    4. an event that happened after the final one is kept but flagged `after_final` and
       changes nothing;
    5. each EMH (failed delivery attempt) counts one failed attempt;
    6. customs holds the parcel while its latest customs event is a hold (EME, EDA, EDB)
       with no release (EDC, EMF) after it;
    7. an open parcel marked delayed by the sweep after its latest event reads
       `delivery_delayed` until the next event;
    8. an event out of sequence (its stage in `STAGES` comes before the furthest stage the
       parcel has already reached, e.g. a sorting-centre scan after the arrival at the
       delivery office, or a second posting) is kept but flagged `out_of_sequence` and,
       like an event after the final one, changes nothing: the parcel never moves
       backwards on a stray or misread scan, and the flag shows where to look.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tracking.models import Direction
from tracking.upu import event_codes

DOMESTIC_CODES = frozenset({"EMA", "EDD", "EDE", "EMG", "EDF", "EDG", "EDH", "EMH", "EMI",
                            "EDX"})


def _codes_by_direction() -> dict[str, frozenset[str]]:
    everything = frozenset(event_codes())
    return {Direction.DOMESTIC: DOMESTIC_CODES, Direction.INBOUND: everything,
            Direction.OUTBOUND: everything}


def _opening_codes() -> dict[str, frozenset[str]]:
    before_arrival = frozenset(
        c.code for c in event_codes().values() if c.leg in ("origin", "transit")
    )
    return {Direction.DOMESTIC: frozenset({"EMA"}), Direction.OUTBOUND: frozenset({"EMA"}),
            Direction.INBOUND: before_arrival | {"EMD"}}


CODES_BY_DIRECTION = _codes_by_direction()
OPENING_CODES = _opening_codes()
CUSTOMS_HOLD_CODES = frozenset({"EME", "EDA", "EDB"})
CUSTOMS_RELEASE_CODES = frozenset({"EDC", "EMF"})
# Import-customs decisions on inbound parcels are Barid's own, made in the customs queue.
CUSTOMS_DECISION_CODES = frozenset({"EME", "EDC"})
HANDOVER_CODES = frozenset({"EMI"})
# Where on its journey an event puts a parcel, in order. Events of one stage may repeat
# and alternate (in and out of several sorting centres; out for delivery, failed, out
# again). Codes absent here have no place in the order and are never out of sequence:
# customs may hold or release a parcel wherever it is, and a final event (return,
# cancellation) may end the journey from anywhere.
STAGES: dict[str, int] = {
    "EMA": 0,
    "EMB": 1, "EMC": 1, "EXA": 1, "EXB": 1, "EXC": 1, "EXD": 1,
    "EMJ": 2, "EMK": 2,
    "EMD": 3, "EMF": 3,
    "EDD": 4, "EDE": 4,
    "EMG": 5, "EDF": 5, "EDG": 5, "EDH": 5, "EMH": 5,
    "EMI": 6,
}
# The events that place a parcel at the office that delivers it or keeps it for pickup.
DELIVERY_OFFICE_CODES = frozenset({"EMG", "EDF", "EDG", "EDH", "EMH"})


class EventLike(Protocol):
    code: str
    occurred_at: datetime


@dataclass
class Derivation:
    status: str = "pending"
    closed: bool = False
    final_code: str | None = None
    failed_attempts: int = 0
    held_by_customs: bool = False
    last_event_at: datetime | None = None
    after_final: list[int] = field(default_factory=list)  # positions in the input
    out_of_sequence: list[int] = field(default_factory=list)  # positions in the input


def timeline_order(events: Sequence[EventLike]) -> list[int]:
    """Positions of `events` sorted by when they happened, ties in arrival order."""
    return sorted(range(len(events)),
                  key=lambda i: (events[i].occurred_at, getattr(events[i], "id", None) or 0, i))


def derive(events: Sequence[EventLike], *, delayed_at: datetime | None = None) -> Derivation:
    """The parcel's status from its events (rules 1-8 in the module docstring)."""
    codes = event_codes()
    out = Derivation()
    furthest = -1
    for i in timeline_order(events):
        ev = events[i]
        info = codes[ev.code]
        if out.closed:
            out.after_final.append(i)
            continue
        stage = STAGES.get(ev.code)
        if stage is not None:
            if stage < furthest:
                out.out_of_sequence.append(i)
                continue
            furthest = stage
        out.status = info.status
        out.last_event_at = ev.occurred_at
        if ev.code == "EMH":
            out.failed_attempts += 1
        if ev.code in CUSTOMS_HOLD_CODES:
            out.held_by_customs = True
        elif ev.code in CUSTOMS_RELEASE_CODES:
            out.held_by_customs = False
        if info.final:
            out.closed = True
            out.final_code = ev.code
    if out.closed:
        out.held_by_customs = False
    if (not out.closed and delayed_at is not None and out.last_event_at is not None
            and delayed_at >= out.last_event_at):
        out.status = "delivery_delayed"
    return out


def refusal(direction: str, existing: Iterable[EventLike], code: str) -> str | None:
    """Why the state machine refuses `code` now (a reason code), or None if it may happen.

    Looks only at what is structural: whether the code fits the parcel's direction and
    whether the parcel has been accepted at all. Hand-over and customs rules that depend on
    other tables are checked by the ingest service.
    """
    if code not in CODES_BY_DIRECTION[direction]:
        return "not_for_direction"
    if not any(True for _ in existing) and code not in OPENING_CODES[direction]:
        return "not_accepted_yet"
    return None
