"""Refunds at the counter: who may give money back at once, and the second person.

A clerk refunds at once only a payment their own office took, up to
PAYMENTS_REFUND_APPROVAL_ABOVE dinars. Anything else (another office's payment, an
online payment, which belongs to no office, or a larger amount) is filed as a refund
request; a supervisor or administrator other than the requester approves it, and the
refund is made then, once, or declines it. Both people are in the audit log.

Whoever refunds, the money goes back the way it came (payments.services.refund): cash
leaves the drawer of the office that took the payment.

Every function here flushes; none commits (the back-office view owns the unit of work).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.audit import record_audit
from app.auth.models import Role, User
from app.database import db, utcnow
from app.errors import Forbidden, NotFound
from app.money import format_money
from payments import services
from payments.errors import (
    AlreadyDecided,
    IdempotencyConflict,
    PaymentStateError,
    RefundTooLarge,
    SecondPersonRequired,
)
from payments.ledger import positive_amount
from payments.models import Payment, Refund, RefundRequest, RefundRequestStatus

HOME = "IQD"
APPROVERS = (Role.SUPERVISOR, Role.ADMIN)
_COUNTER = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)
RR = RefundRequestStatus

# Why a refund needs a second person, for the request's `needs` and for people.
NEEDS = {
    "other_office": _l("another office took this payment"),
    "online": _l("an online payment belongs to no office"),
    "above_threshold": _l("the amount is above the limit a clerk refunds alone"),
}


@dataclass(frozen=True)
class CounterRefund:
    """What the counter's refund did: a refund made now, or a request filed."""

    refund: Refund | None = None
    request: RefundRequest | None = None


def approval_threshold() -> int:
    """Dinars a clerk may refund alone (of their own office's payment)."""
    return int(current_app.config["PAYMENTS_REFUND_APPROVAL_ABOVE"])


def needs_for(p: Payment, amount: int, office_id: int | None) -> list[str]:
    """Why a refund of `amount` of `p` asked at `office_id` needs a second person
    (empty: the clerk may refund at once)."""
    needs: list[str] = []
    if p.office_id is None:
        needs.append("online")
    elif p.office_id != office_id:
        needs.append("other_office")
    # The threshold is in dinars; a payment in another currency is never a clerk's alone.
    if p.currency != HOME or amount > approval_threshold():
        needs.append("above_threshold")
    return needs


def _staff(user_id: int, roles: tuple[Role, ...]) -> User:
    user = db.get(User, user_id)
    if user is None or not user.is_active or not user.has_role(*roles):
        raise Forbidden(_l("You may not do this."))
    return user


def _locked_payment(payment_id: int) -> Payment:
    p = db.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                  .execution_options(populate_existing=True))
    if p is None:
        raise NotFound()
    return p


def _pending_total(payment_id: int, *, besides: int | None = None) -> int:
    q = select(func.coalesce(func.sum(RefundRequest.amount), 0)).where(
        RefundRequest.payment_id == payment_id, RefundRequest.status == RR.REQUESTED)
    if besides is not None:
        q = q.where(RefundRequest.id != besides)
    return int(db.scalar(q) or 0)


def refund_at_counter(payment_id: int, *, amount: int, reason: str, clerk_id: int,
                      idempotency_key: str) -> CounterRefund:
    """A clerk refunds (part of) a payment at the counter.

    Refunds at once when the clerk's office took the payment and the amount is at most
    the approval threshold; otherwise files a refund request for a supervisor (nothing
    moves until it is approved). The office is the clerk's account's, never the
    browser's. Audited; flushes. The same key returns what the first call did. Raises
    Forbidden (not counter staff), NotFound, InvalidAmount (zero or less),
    RefundTooLarge (more than is left, counting requests still waiting),
    PaymentStateError (not a succeeded payment), IdempotencyConflict, and what
    services.refund raises.
    """
    clerk = _staff(clerk_id, _COUNTER)
    positive_amount(amount)
    prior = db.scalar(select(RefundRequest).where(
        RefundRequest.idempotency_key == idempotency_key))
    if prior is not None:
        if prior.payment_id != payment_id or prior.amount != amount:
            raise IdempotencyConflict()
        return CounterRefund(request=prior)
    refund_key = f"counter-refund:{idempotency_key}"
    done = db.scalar(select(Refund).where(Refund.idempotency_key == refund_key))
    if done is not None:
        if done.payment_id != payment_id or done.amount != amount:
            raise IdempotencyConflict()
        return CounterRefund(refund=done)
    # Locked so two requests filed at once cannot together promise more than is left.
    p = _locked_payment(payment_id)
    if p.status not in services.REFUNDABLE:
        raise PaymentStateError(_l("Only a succeeded payment can be refunded."))
    waiting = _pending_total(p.id)
    if amount > p.refundable - waiting:
        left = max(p.refundable - waiting, 0)
        raise RefundTooLarge(_l("At most %(max)s can still be refunded.",
                                max=format_money(left, p.currency)))
    needs = needs_for(p, amount, clerk.post_office_id)
    if not needs:
        r = services.refund(p.id, amount, reason, clerk.id, refund_key)
        record_audit("payment.refunded_at_counter", object_type="payment", object_id=p.id,
                     actor_id=clerk.id, details={"refund_id": r.id, "amount": amount,
                                                 "office_id": clerk.post_office_id})
        return CounterRefund(refund=r)
    req = RefundRequest(idempotency_key=idempotency_key, payment_id=p.id, amount=amount,
                        currency=p.currency, reason=(reason or "")[:300],
                        needs=",".join(needs), requested_by_id=clerk.id,
                        requested_office_id=clerk.post_office_id)
    db.add(req)
    db.flush()
    record_audit("payment.refund_requested", object_type="refund_request", object_id=req.id,
                 actor_id=clerk.id, details={"payment_id": p.id, "amount": amount,
                                             "currency": p.currency, "needs": needs,
                                             "office_id": clerk.post_office_id,
                                             "payment_office_id": p.office_id})
    return CounterRefund(request=req)


def _locked_request(request_id: int) -> RefundRequest:
    req = db.scalar(select(RefundRequest).where(RefundRequest.id == request_id)
                    .with_for_update().execution_options(populate_existing=True))
    if req is None:
        raise NotFound()
    return req


def _decidable(request_id: int, approver_id: int) -> tuple[RefundRequest, User]:
    """The request, its row locked and re-read, if `approver_id` may decide it now."""
    approver = _staff(approver_id, APPROVERS)
    # The row lock makes two supervisors deciding at once take turns: the second sees
    # the first one's decision and is refused, so a request is refunded once.
    req = _locked_request(request_id)
    if req.status != RR.REQUESTED:
        raise AlreadyDecided(_l("This refund request was already %(what)s.",
                                what=status_label(req.status)))
    if req.requested_by_id == approver.id:
        raise SecondPersonRequired()
    return req, approver


def approve_request(request_id: int, *, approver_id: int) -> Refund:
    """A supervisor or admin, not the requester, approves a refund request: the refund
    is made now (services.refund: cash out of the drawer of the office that took the
    payment). Audited with both people. Flushes. Raises Forbidden (not a supervisor),
    NotFound, SecondPersonRequired (their own request), AlreadyDecided, and what
    services.refund raises (e.g. RefundTooLarge when the payment was refunded since).
    """
    req, approver = _decidable(request_id, approver_id)
    r = services.refund(req.payment_id, req.amount, req.reason, approver.id,
                        f"refund-request:{req.id}")
    req.status = RR.APPROVED
    req.decided_by_id = approver.id
    req.decided_at = utcnow()
    req.refund_id = r.id
    db.flush()
    record_audit("payment.refund_approved", object_type="refund_request", object_id=req.id,
                 actor_id=approver.id,
                 details={"payment_id": req.payment_id, "refund_id": r.id,
                          "amount": req.amount, "requested_by_id": req.requested_by_id,
                          "approved_by_id": approver.id})
    return r


def decline_request(request_id: int, *, approver_id: int, note: str = "") -> RefundRequest:
    """A supervisor or admin, not the requester, declines a refund request; no money
    moves. Audited. Flushes. Raises Forbidden, NotFound, SecondPersonRequired,
    AlreadyDecided."""
    req, approver = _decidable(request_id, approver_id)
    req.status = RR.DECLINED
    req.decided_by_id = approver.id
    req.decided_at = utcnow()
    req.decision_note = (note or "")[:300]
    db.flush()
    record_audit("payment.refund_declined", object_type="refund_request", object_id=req.id,
                 actor_id=approver.id,
                 details={"payment_id": req.payment_id, "amount": req.amount,
                          "requested_by_id": req.requested_by_id, "note": req.decision_note})
    return req


def status_label(status: str) -> str:
    """A request's status for people."""
    return str({RR.REQUESTED: _l("waiting for approval"), RR.APPROVED: _l("approved"),
                RR.DECLINED: _l("declined")}.get(RR(status), status))


def needs_labels(req: RefundRequest) -> list[str]:
    """Why the request needs a second person, for people."""
    return [str(NEEDS[n]) for n in req.needs.split(",") if n in NEEDS]


def pending_requests(limit: int = 200) -> list[RefundRequest]:
    """Refund requests waiting for a supervisor, oldest first."""
    return list(db.scalars(select(RefundRequest).where(RefundRequest.status == RR.REQUESTED)
                           .order_by(RefundRequest.id).limit(limit)))


def recent_decisions(limit: int = 50) -> list[RefundRequest]:
    """The latest approved or declined refund requests, newest first."""
    return list(db.scalars(select(RefundRequest).where(RefundRequest.status != RR.REQUESTED)
                           .order_by(RefundRequest.decided_at.desc()).limit(limit)))


def requests_for(payment_id: int) -> list[RefundRequest]:
    """Every refund request of one payment, oldest first."""
    return list(db.scalars(select(RefundRequest).where(RefundRequest.payment_id == payment_id)
                           .order_by(RefundRequest.id)))
