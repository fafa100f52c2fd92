"""Clerk, supervisor and admin pages for post cards, cash, refunds, rates and disputes."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from app.auth.decorators import role_required
from app.auth.models import PostOffice, Role, User
from app.backoffice import nav_item
from app.database import db
from app.errors import DomainError, NotFound
from app.i18n import current_locale
from payments import cards, counter, rates, receipts, reconcile
from payments.forms import (
    FindCardForm,
    IssueCardForm,
    RateForm,
    RefundForm,
    TopUpForm,
    parse_amount,
)
from payments.models import Account, Dispute, Payment, PostCard, ReconciliationRun

bp = Blueprint("payments_bo", __name__, url_prefix="/backoffice/payments")

COUNTER = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)
SUPERVISION = (Role.SUPERVISOR, Role.ADMIN)


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


def _office_name(office_id: int | None, locale: str | None = None) -> str:
    """The office's name in `locale`, or both languages (for bilingual paper)."""
    office = db.get(PostOffice, office_id) if office_id else None
    if office is None:
        return "-"
    if locale:
        return f"{office.name(locale)} ({office.code})"
    return f"{office.name_ar} - {office.name_en} ({office.code})"


@bp.route("/cards", methods=["GET"])
@role_required(*COUNTER)
def find_cards():
    form = FindCardForm(request.args)
    found: list[PostCard] = []
    q = (form.q.data or "").replace(" ", "").strip()
    if q:
        found = list(db.scalars(select(PostCard).where(
            or_(PostCard.number == q, PostCard.national_id == q)).order_by(PostCard.id)))
    return render_template("payments/bo_cards.html", form=form, found=found, q=q)


@bp.route("/cards/new", methods=["GET", "POST"])
@role_required(*COUNTER)
def issue_card():
    form = IssueCardForm()
    if form.validate_on_submit():
        user_id = None
        if form.account_email.data:
            user = db.scalar(select(User).where(User.email == form.account_email.data.strip()
                                                .lower()))
            if user is None:
                form.account_email.errors.append(_("No Barid account has this e-mail."))
                return render_template("payments/bo_issue.html", form=form), 422
            user_id = user.id
        try:
            card = cards.issue_card(holder_name=form.holder_name.data,
                                    national_id=form.national_id.data, mobile=form.mobile.data,
                                    pin=form.pin.data, user_id=user_id,
                                    clerk_id=current_user.id,
                                    office_id=current_user.post_office_id)
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
    opening, lines = counter.card_statement(c)
    payments = db.scalars(select(Payment).where(Payment.card_id == c.id)
                          .order_by(Payment.id.desc()).limit(30)).all()
    return render_template("payments/bo_card.html", card=c, topup=TopUpForm(),
                           balance=counter.account_balance(c.account_id),
                           held=counter.account_balance(c.hold_account_id),
                           lines=list(reversed(lines))[:30], payments=payments,
                           today=cards.today_in_baghdad())


@bp.post("/cards/<int:card_id>/topup")
@role_required(*COUNTER)
def top_up(card_id: int):
    form = TopUpForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for(".card", card_id=card_id))
    office_id = counter.require_staff_office(current_user)
    try:
        p = counter.cash_top_up(card_id, amount=parse_amount(form.amount.data),
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
    counter.set_card_status(card_id, action, clerk_id=current_user.id)
    flash({"freeze": _("Card frozen."), "unfreeze": _("Card unfrozen."),
           "unlock": _("Card unlocked.")}[action], "success")
    return redirect(url_for(".card", card_id=card_id))


@bp.get("/payments/<int:payment_id>")
@role_required(*COUNTER)
def payment(payment_id: int):
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    return render_template("payments/bo_payment.html", p=p, form=RefundForm(),
                           office_name=_office_name(p.office_id, current_locale()))


@bp.get("/payments/<int:payment_id>/receipt.pdf")
@role_required(*COUNTER)
def receipt(payment_id: int):
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    clerk = db.get(User, p.clerk_id) if p.clerk_id else None
    bal = db.get(Account, p.card.account_id).balance if p.card else None
    return _pdf(receipts.payment_receipt(p, office_name=_office_name(p.office_id),
                                         clerk_name=clerk.full_name if clerk else None,
                                         card_balance=bal), f"receipt-{p.id}.pdf")


@bp.post("/payments/<int:payment_id>/refund")
@role_required(*COUNTER)
def refund(payment_id: int):
    form = RefundForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for(".payment", payment_id=payment_id))
    try:
        counter.refund_payment(payment_id, amount=parse_amount(form.amount.data),
                               reason=form.reason.data, actor_id=current_user.id,
                               office_id=current_user.post_office_id,
                               idempotency_key=form.key.data)
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".payment", payment_id=payment_id))
    flash(_("Refund done."), "success")
    return redirect(url_for(".payment", payment_id=payment_id))


def _day() -> date:
    try:
        return date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        return cards.today_in_baghdad()


@bp.get("/drawer")
@role_required(*COUNTER)
def drawer():
    office_id = counter.require_staff_office(current_user)
    report = counter.drawer_report(office_id, _day())
    return render_template("payments/bo_drawer.html", report=report,
                           office_name=_office_name(office_id, current_locale()))


@bp.get("/drawer.pdf")
@role_required(*COUNTER)
def drawer_pdf():
    office_id = counter.require_staff_office(current_user)
    report = counter.drawer_report(office_id, _day())
    return _pdf(receipts.drawer_report(report, office_name=_office_name(office_id),
                                       printed_by=current_user.full_name),
                f"drawer-{report.day.isoformat()}.pdf")


@bp.get("/disputes")
@role_required(*SUPERVISION)
def disputes():
    rows = db.scalars(select(Dispute).order_by(Dispute.id.desc()).limit(200)).all()
    return render_template("payments/bo_disputes.html", disputes=rows)


@bp.route("/reconciliation", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def reconciliation():
    if request.method == "POST":
        reconcile.run_reconciliation()
        flash(_("Reconciliation finished."), "success")
        return redirect(url_for(".reconciliation"))
    runs = db.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc())
                      .limit(20)).all()
    return render_template("payments/bo_reconciliation.html", runs=runs)


@bp.route("/rates", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def exchange_rates():
    form = RateForm()
    if form.validate_on_submit():
        try:
            rates.add_rate(form.base.data, form.rate.data, actor_id=current_user.id)
        except DomainError as exc:
            db.rollback()
            flash(str(exc.message), "error")
        else:
            flash(_("Rate saved. New payments use it from now on."), "success")
            return redirect(url_for(".exchange_rates"))
    return render_template("payments/bo_rates.html", form=form, current=rates.current_rates(),
                           history=rates.rate_history())


def register(app: Flask) -> None:
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
    nav_item("payments_bo.exchange_rates", "Exchange rates", (Role.ADMIN,), section="admin",
             order=60)
