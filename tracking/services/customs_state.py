"""The customs case state machine: one table of allowed moves, one function that makes them.

Like orders (shop.services.orders), payments (payments.services) and parcels
(tracking.status), a customs case changes state only through `apply_transition`, which
checks the move against `TRANSITIONS`, records who made it, when, from and to in
`customs_case_transitions`, and publishes `customs.<state>`:

    (opened) -> assessing            an inbound parcel arrived at the office of exchange
    assessing -> held | released     the assessment job holds it for an officer or clears it
    held -> released | refused       an officer decides

Revaluing or reclassifying an article changes the duty, not the state. This module
knows only the case and its history; the customs services decide which move to make and
record the parcel's matching UPU event (EME, EDC, EDX).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from app.database import db, utcnow
from app.errors import Conflict
from app.events import publish
from tracking.models import CustomsCase, CustomsCaseTransition, CustomsState

S = CustomsState

# The only moves apply_transition allows; a state missing from a set is refused.
TRANSITIONS: dict[CustomsState, frozenset[CustomsState]] = {
    S.ASSESSING: frozenset({S.HELD, S.RELEASED}),
    S.HELD: frozenset({S.RELEASED, S.REFUSED}),
    S.RELEASED: frozenset(),
    S.REFUSED: frozenset(),
}
# The state a new case starts in (recorded as a move from nothing).
INITIAL = S.ASSESSING


class CustomsStateError(Conflict):
    """A move the customs state machine does not allow."""


def case_payload(case: CustomsCase, **extra: Any) -> dict[str, Any]:
    """What a `customs.*` event says: ids, the parcel's number and the new state."""
    parcel = case.parcel
    return {"case_id": case.id, "parcel_id": case.parcel_id,
            "tracking_number": parcel.tracking_number if parcel else None,
            "order_ref": parcel.order_ref if parcel else None, "status": case.state,
            "total_due_iqd": case.total_due_iqd, "prepaid_iqd": case.prepaid_iqd,
            "prepaid_excess_iqd": case.prepaid_excess_iqd, **extra}


def _record(case: CustomsCase, frm: CustomsState | None, to: CustomsState,
            actor_id: int | None, reason: str) -> None:
    db.add(CustomsCaseTransition(case_id=case.id, from_status=frm, to_status=to,
                                 actor_id=actor_id, reason=(reason or "")[:300],
                                 occurred_at=utcnow()))
    db.flush()
    publish(f"customs.{to}", case_payload(case, previous_status=frm))


def open_case(parcel_id: int, *, actor_id: int | None = None,
              reason: str = "arrived at the office of exchange") -> CustomsCase:
    """Open the customs case of an inbound parcel in state `assessing`, recording the
    opening as a move from nothing and publishing `customs.assessing`. Flushes.

    The caller checks that the parcel has no case yet (one case per parcel).
    """
    case = CustomsCase(parcel_id=parcel_id, state=INITIAL)
    db.add(case)
    db.flush()
    _record(case, None, INITIAL, actor_id, reason)
    return case


def apply_transition(case: CustomsCase, to: CustomsState, *, actor_id: int | None = None,
                     reason: str = "") -> None:
    """Move `case` to `to`, record who, when and why, publish `customs.<to>`. Flushes.

    Raises CustomsStateError (a Conflict) for a move the table does not allow.
    """
    frm = CustomsState(case.state)
    if to not in TRANSITIONS[frm]:
        raise CustomsStateError(_l("This customs case cannot go from %(a)s to %(b)s.",
                                   a=str(frm), b=str(to)))
    case.state = to
    _record(case, frm, to, actor_id, reason)
