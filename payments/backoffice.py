"""Clerk, supervisor and admin pages for post cards, cash, refunds, rates and disputes.

Each view parses its form, checks the role, opens the unit of work around one use
case (payments.services, cards, rates, reconcile) and renders; a domain error is caught
outside the unit of work so nothing it flushed is kept. GET pages only read.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.audit import record_audit
from app.auth.decorators import role_required
from app.auth.models import PostOffice, Role
from app.backoffice import figures_page, nav_item
from app.dashboard import day_filter, office_filter
from app.database import db, unit_of_work
from app.errors import DomainError, Forbidden, NotFound
from app.i18n import baghdad_today, current_locale
from app.listing import Filter, Listing
from app.money import format_money
from app.overrides import EditableField, editable_group
from payments import cards, figures, payables, rates, receipts, reconcile, refunds, services
from payments import drawer as drawer_days
from payments.errors import InvalidPin
from payments.forms import (
    DecisionForm,
    FindCardForm,
    IssueCardForm,
    RateForm,
    RefundForm,
    TopUpForm,
    parse_amount,
)
from payments.models import (
    Dispute,
    Payment,
    RateProposal,
    RefundRequest,
    RefundRequestStatus,
)

bp = Blueprint("payments_bo", __name__, url_prefix="/backoffice/payments")

COUNTER = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)
SUPERVISION = (Role.SUPERVISOR, Role.ADMIN)


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


@bp.route("/cards", methods=["GET"])
@role_required(*COUNTER)
def find_cards():
    form = FindCardForm(request.args)
    q = (form.q.data or "").replace(" ", "").strip()
    found = services.find_cards(q)
    return render_template("payments/bo_cards.html", form=form, found=found, q=q)


@bp.route("/cards/new", methods=["GET", "POST"])
@role_required(*COUNTER)
def issue_card():
    form = IssueCardForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                card = services.issue_card_at_counter(
                    holder_name=form.holder_name.data, national_id=form.national_id.data,
                    mobile=form.mobile.data, pin=form.pin.data,
                    account_email=form.account_email.data, clerk_id=current_user.id,
                    office_id=current_user.post_office_id)
        except NotFound:
            form.account_email.errors.append(_("No Barid account has this e-mail."))
            return render_template("payments/bo_issue.html", form=form), 422
        except InvalidPin as exc:  # the form checks this first; the service has the last word
            form.pin.errors.append(str(exc.message))
            return render_template("payments/bo_issue.html", form=form), 422
        except DomainError as exc:
            flash(str(exc.message), "error")
            return render_template("payments/bo_issue.html", form=form), 422
        flash(_("Card issued."), "success")
        return redirect(url_for(".card", card_id=card.id))
    return render_template("payments/bo_issue.html", form=form), 422 if form.errors else 200


@bp.get("/cards/<int:card_id>")
@role_required(*COUNTER)
def card(card_id: int):
    c = cards.get_card(card_id)
    opening, lines = services.card_statement(c)
    payments = services.recent_card_payments(c.id)
    return render_template("payments/bo_card.html", card=c, topup=TopUpForm(),
                           balance=services.account_balance(c.account_id),
                           held=services.account_balance(c.hold_account_id),
                           lines=list(reversed(lines))[:30], payments=payments,
                           today=baghdad_today())


@bp.post("/cards/<int:card_id>/topup")
@role_required(*COUNTER)
def top_up(card_id: int):
    form = TopUpForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for(".card", card_id=card_id))
    office_id = services.require_staff_office(current_user)
    try:
        with unit_of_work():
            p = services.cash_top_up(card_id, amount=parse_amount(form.amount.data),
                                     clerk_id=current_user.id, office_id=office_id,
                                     idempotency_key=form.key.data)
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".card", card_id=card_id))
    flash(_("Top-up done. Print the receipt for the customer."), "success")
    return redirect(url_for(".payment", payment_id=p.id))


@bp.post("/cards/<int:card_id>/<any(freeze, unfreeze, unlock):action>")
@role_required(*COUNTER)
def card_action(card_id: int, action: str):
    with unit_of_work():
        services.set_card_status(card_id, action, clerk_id=current_user.id)
    flash({"freeze": _("Card frozen."), "unfreeze": _("Card unfrozen."),
           "unlock": _("Card unlocked.")}[action], "success")
    return redirect(url_for(".card", card_id=card_id))


@bp.get("/payments/<int:payment_id>")
@role_required(*COUNTER)
def payment(payment_id: int):
    p = services.get_payment(payment_id)
    return render_template("payments/bo_payment.html", p=p, form=RefundForm(),
                           office_name=services.office_name(p.office_id, current_locale()),
                           requests=refunds.requests_for(p.id), refunds=refunds)


@bp.get("/payments/<int:payment_id>/receipt.pdf")
@role_required(*COUNTER)
def receipt(payment_id: int):
    p = services.get_payment(payment_id)
    return _pdf(receipts.payment_receipt(p, office_name=services.office_name(p.office_id),
                                         clerk_name=services.user_name(p.clerk_id),
                                         card_balance=services.card_balance_after(p),
                                         described=payables.describe(p.reference_kind,
                                                                     p.reference_id)),
                f"receipt-{p.id}.pdf")


@bp.post("/payments/<int:payment_id>/refund")
@role_required(*COUNTER)
def refund(payment_id: int):
    form = RefundForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for(".payment", payment_id=payment_id))
    try:
        with unit_of_work():
            done = refunds.refund_at_counter(payment_id, amount=parse_amount(form.amount.data),
                                             reason=form.reason.data, clerk_id=current_user.id,
                                             idempotency_key=form.key.data)
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".payment", payment_id=payment_id))
    if done.request is not None:
        flash(_("Refund requested: a supervisor must approve it (%(why)s). No money has "
                "moved yet.", why=", ".join(refunds.needs_labels(done.request))), "info")
    else:
        flash(_("Refund done."), "success")
    return redirect(url_for(".payment", payment_id=payment_id))


def _refund_office_choices() -> list[tuple[str, str]]:
    loc = current_locale()
    return [(str(o.id), f"{o.code} — {o.name(loc)}")
            for o in db.scalars(select(PostOffice).order_by(PostOffice.code))]


# Decided requests, newest asked first (the waiting ones are the work queue above them).
DECIDED_REFUNDS = Listing(
    "refund_decisions", order=(RefundRequest.requested_at, RefundRequest.id),
    filters=(
        Filter("status", _l("Status"), "choice", column=RefundRequest.status,
               choices=lambda: [(str(st), refunds.status_label(st))
                                for st in RefundRequestStatus
                                if st != RefundRequestStatus.REQUESTED]),
        Filter("payment", _l("Payment number"), "int", column=RefundRequest.payment_id,
               placeholder="P-00000012"),
        Filter("office", _l("Asked at post office"), "choice",
               apply=lambda stmt, v: stmt.where(RefundRequest.requested_office_id == int(v)),
               choices=_refund_office_choices),
        Filter("since", _l("Asked from (day)"), "date_from",
               column=RefundRequest.requested_at),
        Filter("until", _l("Asked until (day)"), "date_to", column=RefundRequest.requested_at),
    ))


def _decided():
    return select(RefundRequest).where(RefundRequest.status != RefundRequestStatus.REQUESTED)


@bp.get("/refund-requests")
@role_required(*SUPERVISION)
def refund_requests():
    page = DECIDED_REFUNDS.page(_decided(), DECIDED_REFUNDS.parse(request.args), request.args)
    return render_template("payments/bo_refund_requests.html",
                           pending=refunds.pending_requests(),
                           decided=page.rows, page=page, form=DecisionForm(),
                           refunds=refunds, office_name=services.office_name,
                           user_name=services.user_name, locale=current_locale())


@bp.get("/refund-requests.csv")
@role_required(*SUPERVISION)
def refund_requests_csv():
    """Every decided refund request the filters keep, as CSV."""
    loc = current_locale()

    def when(value) -> str:
        return value.isoformat(timespec="seconds") if value else ""

    columns = [
        (_("Asked (UTC)"), lambda r: when(r.requested_at)),
        (_("Payment"), lambda r: f"P-{r.payment_id:08d}"),
        (_("Amount (minor units)"), lambda r: r.amount),
        (_("Currency"), lambda r: r.currency),
        (_("Asked by"), lambda r: services.user_name(r.requested_by_id) or ""),
        (_("Asked at post office"), lambda r: services.office_name(r.requested_office_id, loc)
            if r.requested_office_id else ""),
        (_("Reason"), lambda r: r.reason),
        (_("Decided (UTC)"), lambda r: when(r.decided_at)),
        (_("Decided by"), lambda r: services.user_name(r.decided_by_id) or ""),
        (_("Status"), lambda r: refunds.status_label(r.status)),
        (_("Note"), lambda r: r.decision_note or ""),
    ]
    return DECIDED_REFUNDS.csv(_decided(), DECIDED_REFUNDS.parse(request.args), columns,
                               "refund-decisions.csv")


@bp.post("/refund-requests/<int:request_id>/<any(approve, decline):decision>")
@role_required(*SUPERVISION)
def decide_refund(request_id: int, decision: str):
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for(".refund_requests"))
    try:
        with unit_of_work():
            if decision == "approve":
                refunds.approve_request(request_id, approver_id=current_user.id)
            else:
                refunds.decline_request(request_id, approver_id=current_user.id,
                                        note=form.note.data or "")
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".refund_requests"))
    flash(_("Refund approved and made.") if decision == "approve"
          else _("Refund request declined. No money moved."), "success")
    return redirect(url_for(".refund_requests"))


def _day() -> date:
    try:
        return date.fromisoformat(request.values.get("day", ""))
    except ValueError:
        return baghdad_today()


def _drawer_office() -> int:
    """The office whose drawer is asked for: the user's own by default. Another office's
    drawer opens only for an administrator; anyone else gets a 403, audited."""
    own = current_user.post_office_id
    raw = request.values.get("office", "").strip()
    if not raw:
        return services.require_staff_office(current_user)
    wanted = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    if wanted is not None and (wanted == own or current_user.has_role(Role.ADMIN)):
        return wanted
    with unit_of_work():
        record_audit("drawer.forbidden", object_type="post_office", object_id=raw[:64],
                     details={"path": request.path[:300], "own_office_id": own})
    raise Forbidden(_("You may open only your own office's drawer."))


@bp.get("/drawer")
@role_required(*COUNTER)
def drawer():
    office_id = _drawer_office()
    day = _day()
    report = services.drawer_report(office_id, day)
    closed = drawer_days.closed_day(office_id, day)
    return render_template("payments/bo_drawer.html", report=report, closed=closed,
                           signature_ok=closed is not None and drawer_days.verify(closed),
                           closed_by=services.user_name(closed.closed_by_id) if closed else None,
                           office_id=office_id, can_close=day <= drawer_days.business_date(),
                           office_name=services.office_name(office_id, current_locale()))


@bp.post("/drawer/close")
@role_required(*COUNTER)
def close_drawer():
    """The clerk enters the cash counted; the day closes, signed, and cannot change."""
    office_id = _drawer_office()
    day = _day()
    back = redirect(url_for(".drawer", day=day.isoformat(), office=office_id))
    if not DecisionForm().validate_on_submit():
        flash(_("The form expired. Try again."), "error")
        return back
    try:
        counted = drawer_days.parse_counted(request.form.get("counted"))
        with unit_of_work():
            row = drawer_days.close_day(office_id, day, counted=counted,
                                        clerk_id=current_user.id,
                                        note=request.form.get("note", ""))
    except DomainError as exc:
        flash(str(exc.message), "error")
        return back
    flash(_("The day is closed and signed. Difference: %(d)s.",
            d=format_money(row.difference, row.currency, current_locale())), "success")
    return back


@bp.get("/drawer.pdf")
@role_required(*COUNTER)
def drawer_pdf():
    office_id = _drawer_office()
    report = services.drawer_report(office_id, _day())
    closed = drawer_days.closed_day(office_id, report.day)
    return _pdf(receipts.drawer_report(report, office_name=services.office_name(office_id),
                                       printed_by=current_user.full_name, closed=closed,
                                       closed_by=services.user_name(closed.closed_by_id)
                                       if closed else None),
                f"drawer-{report.day.isoformat()}.pdf")


def _dispute_statuses() -> list[tuple[str, str]]:
    # Stripe's own words (needs_response, won, lost...): the ones seen so far.
    return [(st, st) for st in db.scalars(select(Dispute.status).distinct()
                                          .order_by(Dispute.status))]


DISPUTE_LIST = Listing(
    "disputes", order=(Dispute.created_at, Dispute.id),
    filters=(
        Filter("status", _l("Status"), "choice", column=Dispute.status,
               choices=_dispute_statuses),
        Filter("payment", _l("Payment number"), "int", column=Dispute.payment_id,
               placeholder="P-00000012"),
        Filter("since", _l("Opened from (day)"), "date_from", column=Dispute.created_at),
        Filter("until", _l("Opened until (day)"), "date_to", column=Dispute.created_at),
    ))


# The payments behind the dashboard's figures; its own arguments narrow the query,
# app.listing pages it.
PAYMENT_LIST = Listing("payments", order=(Payment.created_at, Payment.id))


def _figure_payments():
    office = office_filter(current_user, request.args.get("office"), own_by_default=True)
    method = (request.args.get("method") or "").strip()[:16] or None
    purpose = (request.args.get("purpose") or "").strip()[:40] or None
    day = day_filter(request.args.get("date"))
    query = figures.payments_query(method=method, purpose=purpose, day=day, office_id=office)
    return query, {"office": office, "method": method, "purpose": purpose, "date": day}


@bp.get("/payments")
@role_required(*SUPERVISION)
def payments():
    """The payments behind the dashboard's figures, by method, purpose, day and office
    (a supervisor's own office; an admin's choice, or the whole post), a page at a time."""
    query, shown = _figure_payments()
    page = PAYMENT_LIST.page(query, {}, request.args)
    url_args = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in shown.items() if v is not None}
    office = shown["office"]
    return render_template("payments/bo_payments.html", payments=page.rows, page=page,
                           url_args=url_args, method=shown["method"],
                           purpose=shown["purpose"], day=shown["date"],
                           office_name=services.office_name(office, current_locale())
                           if office else None)


@bp.get("/payments.csv")
@role_required(*SUPERVISION)
def payments_csv():
    """Every payment behind the figure, as CSV."""
    query, _shown = _figure_payments()
    columns = [
        (_("When (UTC)"), lambda p: p.created_at.isoformat(timespec="seconds")),
        (_("Payment"), lambda p: f"P-{p.id:08d}"),
        (_("Amount (minor units)"), lambda p: p.amount),
        (_("Currency"), lambda p: p.currency),
        (_("Method"), lambda p: p.method),
        (_("Purpose"), lambda p: p.purpose),
        (_("Status"), lambda p: p.status),
    ]
    return PAYMENT_LIST.csv(query, {}, columns, "payments.csv")


@bp.get("/disputes")
@role_required(*SUPERVISION)
def disputes():
    page = DISPUTE_LIST.page(select(Dispute), DISPUTE_LIST.parse(request.args), request.args)
    return render_template("payments/bo_disputes.html", disputes=page.rows, page=page)


@bp.get("/disputes.csv")
@role_required(*SUPERVISION)
def disputes_csv():
    """Every card dispute the filters keep, as CSV."""
    columns = [
        (_("Opened (UTC)"), lambda d: d.created_at.isoformat(timespec="seconds")),
        (_("Payment"), lambda d: f"P-{d.payment_id:08d}"),
        (_("Amount (minor units)"), lambda d: d.amount),
        (_("Currency"), lambda d: d.currency),
        (_("Reason"), lambda d: d.reason),
        (_("Status"), lambda d: d.status),
        (_("Stripe dispute"), lambda d: d.stripe_dispute_id),
    ]
    return DISPUTE_LIST.csv(select(Dispute), DISPUTE_LIST.parse(request.args), columns,
                            "card-disputes.csv")


@bp.route("/reconciliation", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def reconciliation():
    if request.method == "POST":
        with unit_of_work():
            reconcile.run_reconciliation()
        flash(_("Reconciliation finished."), "success")
        return redirect(url_for(".reconciliation"))
    runs = reconcile.recent_runs()
    return render_template("payments/bo_reconciliation.html", runs=runs)


@bp.route("/rates", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def exchange_rates():
    form = RateForm()
    status = 200
    if request.method == "POST":
        # Supervisors see the page to confirm large changes; only an admin sets a rate.
        if not current_user.has_role(Role.ADMIN):
            raise Forbidden()
        if form.validate_on_submit():
            try:
                with unit_of_work():
                    done = rates.propose_rate(form.base.data, form.rate.data,
                                              actor_id=current_user.id)
            except DomainError as exc:
                fields = getattr(exc, "fields", None) or {}
                form.rate.errors = [str(fields.get("rate") or exc.message)]
            else:
                if isinstance(done, RateProposal):
                    flash(_("This is a change of more than %(n)s%%: it takes effect when "
                            "another administrator or supervisor confirms it.",
                            n=rates.confirm_percent()), "info")
                else:
                    flash(_("Rate saved. New payments use it from now on."), "success")
                return redirect(url_for(".exchange_rates"))
        status = 422
    return render_template("payments/bo_rates.html", form=form, current=rates.current_rates(),
                           history=rates.rate_history(), pending=rates.pending_proposals(),
                           decision=DecisionForm(), user_name=services.user_name,
                           can_set=current_user.has_role(Role.ADMIN)), status


@bp.post("/rates/proposals/<int:proposal_id>/<any(confirm, decline):decision>")
@role_required(*SUPERVISION)
def decide_rate(proposal_id: int, decision: str):
    if not DecisionForm().validate_on_submit():
        flash(_("The form expired. Try again."), "error")
        return redirect(url_for(".exchange_rates"))
    try:
        with unit_of_work():
            if decision == "confirm":
                rates.confirm_rate(proposal_id, actor_id=current_user.id)
            else:
                rates.decline_rate(proposal_id, actor_id=current_user.id)
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".exchange_rates"))
    flash(_("Rate confirmed. New payments use it from now on.") if decision == "confirm"
          else _("Rate declined. The current rate stays."), "success")
    return redirect(url_for(".exchange_rates"))


# ---- top-up limits (app.overrides) --------------------------------------------------

TOPUP_LIMITS = "topup_limits"


@bp.route("/limits", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def limits():
    """Supervisors see the post card's top-up limits; an administrator changes them."""
    return figures_page(TOPUP_LIMITS, endpoint="payments_bo.limits", intro=_l(
        "Every top-up at a counter or online is checked against these limits at once."))


def _declare_limits() -> None:
    editable_group(TOPUP_LIMITS, _l("Post card limits"), (
        EditableField("PAYMENTS_TOPUP_MAX", _l("Largest single top-up"), minimum=1,
                      unit=_l("IQD")),
        EditableField("PAYMENTS_CARD_MAX_BALANCE", _l("Largest balance a card may hold"),
                      minimum=1, unit=_l("IQD")),
    ))


def register(app: Flask) -> None:
    _declare_limits()
    app.register_blueprint(bp)
    nav_item("payments_bo.issue_card", "Issue a post card", COUNTER, section="payments",
             order=10)
    nav_item("payments_bo.find_cards", "Find a post card", COUNTER, section="payments",
             order=20)
    nav_item("payments_bo.drawer", "End-of-day drawer", COUNTER, section="payments", order=30)
    nav_item("payments_bo.disputes", "Card disputes", SUPERVISION, section="payments",
             order=40)
    nav_item("payments_bo.reconciliation", "Stripe reconciliation", SUPERVISION,
             section="payments", order=50)
    nav_item("payments_bo.refund_requests", "Refunds to approve", SUPERVISION,
             section="payments", order=45)
    nav_item("payments_bo.exchange_rates", "Exchange rates", SUPERVISION, section="admin",
             order=60)
    nav_item("payments_bo.limits", "Post card limits", SUPERVISION, section="admin",
             order=65)
