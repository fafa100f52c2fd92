"""The buy-for-me request's state machine: one table of allowed moves, one function that
applies a move.

`move_request` is the only code that changes a request's status: it checks the move
against BUY_REQUEST_TRANSITIONS, records who made it, when, from and to (a
BuyRequestEvent) and publishes `buy_request.<to>` in the same transaction. The order
state machine (shop.services.orders) moves a request along with its order through
`request_paid` and `request_order_closed`, so it needs nothing else of buy for me.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.database import db, utcnow
from app.errors import Conflict
from app.events import publish
from shop.models import BuyRequest, BuyRequestEvent, BuyRequestStatus

B = BuyRequestStatus

BUY_REQUEST_TRANSITIONS: dict[BuyRequestStatus, frozenset[BuyRequestStatus]] = {
    # Procurement answers a request with a final quote, or a reason why not.
    # The shopper may withdraw it while it waits for that answer.
    B.SUBMITTED: frozenset({B.QUOTED, B.REJECTED, B.CANCELLED}),
    # The shopper accepts the quote (an order is placed) or lets it run out.
    B.QUOTED: frozenset({B.ACCEPTED, B.EXPIRED}),
    # The order is paid, or it expires / is cancelled unpaid and the request with it.
    B.ACCEPTED: frozenset({B.PAID, B.EXPIRED}),
    # Procurement buys the article abroad.
    B.PAID: frozenset({B.PURCHASED}),
    B.PURCHASED: frozenset(),
    B.REJECTED: frozenset(),
    B.EXPIRED: frozenset(),
    B.CANCELLED: frozenset(),
}


class BuyRequestStateError(Conflict):
    """A move the transition table does not allow from the request's status."""

    code = "buy_request_state"


def _payload(req: BuyRequest, **extra: Any) -> dict[str, Any]:
    return {"request_id": req.id, "number": req.number, "status": str(req.status),
            "order_id": req.order_id, **extra}


def record_submitted(req: BuyRequest, *, actor_id: int | None) -> None:
    """The first line of a new request's history and its buy_request.submitted event.
    The request must be added already. Flushes."""
    db.flush()
    db.add(BuyRequestEvent(request_id=req.id, from_status=None, to_status=req.status,
                           actor_id=actor_id, reason="submitted", occurred_at=req.created_at))
    db.flush()
    publish("buy_request.submitted", _payload(req))


def check_move(req: BuyRequest, to: BuyRequestStatus) -> None:
    """Raises BuyRequestStateError unless BUY_REQUEST_TRANSITIONS allows moving `req`
    to `to` now (for a use case that refuses before it changes anything else)."""
    if to not in BUY_REQUEST_TRANSITIONS[BuyRequestStatus(req.status)]:
        raise BuyRequestStateError(_l("This request is %(status)s: it cannot be changed "
                                      "that way now.", status=req.status))


def move_request(req: BuyRequest, to: BuyRequestStatus, *, actor_id: int | None = None,
                 reason: str = "", **payload: Any) -> None:
    """Move `req` to `to`: the status and its time change, the step is recorded (who,
    when, from, to, why) and `buy_request.<to>` is published with `payload` added.
    Flushes.

    Raises BuyRequestStateError for a move BUY_REQUEST_TRANSITIONS does not allow
    (including a move to the status it already has).
    """
    frm = BuyRequestStatus(req.status)
    check_move(req, to)
    now = utcnow()
    req.status = to
    req.status_changed_at = now
    db.add(BuyRequestEvent(request_id=req.id, from_status=frm, to_status=to,
                           actor_id=actor_id, reason=reason[:300], occurred_at=now))
    db.flush()
    publish(f"buy_request.{to}", _payload(req, previous_status=str(frm), **payload))


def _request_of_order(order_id: int) -> BuyRequest | None:
    return db.scalar(select(BuyRequest).where(BuyRequest.order_id == order_id))


def request_paid(order_id: int) -> None:
    """The order of an accepted quote was paid: its request becomes paid, for
    procurement to buy. Nothing for any other order or a request already past that.
    Flushes."""
    req = _request_of_order(order_id)
    if req is not None and req.status == B.ACCEPTED:
        move_request(req, B.PAID, reason="order paid")


def request_order_closed(order_id: int, *, actor_id: int | None, reason: str) -> None:
    """The order of an accepted quote expired or was cancelled before it was paid: the
    request expires with it. A request already paid (or past) stays as it is. Flushes."""
    req = _request_of_order(order_id)
    if req is not None and req.status == B.ACCEPTED:
        move_request(req, B.EXPIRED, actor_id=actor_id, reason=reason)
