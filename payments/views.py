"""Shopper pages: my post cards, statements, online top-up, and paying for a reference.

Each view parses its input, checks who asks, opens the unit of work around one use
case of payments.services, and renders. A domain error is caught outside the unit of
work, so whatever the use case flushed before it is rolled back.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.barcodes import barcode_url
from app.database import unit_of_work
from app.errors import DomainError, RateLimited
from app.overrides import current
from payments import cards, gateway, payables, receipts, services
from payments.errors import NoExchangeRate, OneTimeCodeSent, WrongOneTimeCode
from payments.forms import OnlineTopUpForm, PayWithPostCardForm, parse_amount
from payments.receipts import CARD_BARCODE

bp = Blueprint("payments", __name__, url_prefix="/payments", static_folder="static",
               static_url_path="/payments-static")


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


@bp.get("/cards")
@login_required
def my_cards():
    mine = cards.cards_of(current_user.id)
    balances = {c.id: services.account_balance(c.account_id) for c in mine}
    return render_template("payments/my_cards.html", cards=mine, balances=balances,
                           card_payments=gateway.card_payments_enabled())


@bp.get("/cards/<int:card_id>/statement")
@login_required
def statement(card_id: int):
    card = services.owned_card(card_id, current_user.id)
    opening, lines = services.card_statement(card)
    return render_template("payments/statement.html", card=card, opening=opening,
                           lines=list(reversed(lines)),
                           details=services.statement_details(lines),
                           balance=services.account_balance(card.account_id))


@bp.get("/cards/<int:card_id>/show")
@login_required
def card_show(card_id: int):
    """The card's QR code full screen, for the counter to open it (top up, freeze): it
    carries the card's signed reference, never its number."""
    card = services.owned_card(card_id, current_user.id)
    return render_template("web/show_qr.html", url=barcode_url(CARD_BARCODE, card.id),
                           number=card.masked, heading=_("Iraqi Post card"),
                           back=url_for("payments.my_cards"))


@bp.get("/cards/<int:card_id>/statement.pdf")
@login_required
def statement_pdf(card_id: int):
    card = services.owned_card(card_id, current_user.id)
    opening, lines = services.card_statement(card)
    data = receipts.card_statement(card, opening, lines,
                                   balance=services.account_balance(card.account_id),
                                   details=services.statement_details(lines))
    return _pdf(data, f"statement-{card.number[-4:]}.pdf")


@bp.route("/cards/<int:card_id>/topup", methods=["GET", "POST"])
@login_required
def online_top_up(card_id: int):
    card = services.owned_card(card_id, current_user.id)
    form = OnlineTopUpForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                start = services.start_online_top_up(card.id, user_id=current_user.id,
                                                     amount=parse_amount(form.amount.data),
                                                     idempotency_key=form.key.data)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            return redirect(url_for(".pay", payment_id=start.payment.id))
    try:
        minimum = services.online_top_up_minimum() if gateway.card_payments_enabled() \
            else None
    except NoExchangeRate:
        minimum = None
    return render_template("payments/topup.html", card=card, form=form, minimum=minimum,
                           card_payments=gateway.card_payments_enabled(),
                           test_mode=gateway.card_payments_enabled() and gateway.test_mode(),
                           limit=current("PAYMENTS_TOPUP_MAX"))


@bp.get("/pay/<int:payment_id>")
@login_required
def pay(payment_id: int):
    """The bank-card page of one Stripe payment (Stripe Elements)."""
    p = services.owned_payment(payment_id, current_user.id)
    if not services.pays_on_card_page(p):
        return redirect(url_for(".result", payment_id=p.id))
    return render_template("payments/pay_card.html", p=p, js_url=gateway.js_url(),
                           publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY"),
                           test_mode=gateway.test_mode())


@bp.post("/pay/<int:payment_id>/confirm")
@login_required
def confirm(payment_id: int):
    """JSON for the page's script: attach the tokenised card and confirm."""
    services.owned_payment(payment_id, current_user.id)
    body = request.get_json(silent=True) or {}
    try:
        with unit_of_work():
            result = services.confirm_card_payment(
                payment_id, payment_method=str(body.get("payment_method")),
                payer_user_id=current_user.id)
    except DomainError as exc:
        return jsonify(status="error", message=str(exc.message)), exc.http_status
    result["next"] = url_for(".result", payment_id=payment_id)
    return jsonify(result)


@bp.get("/pay/<int:payment_id>/result")
@login_required
def result(payment_id: int):
    """The payment's outcome.

    The one payments GET that may write, kept on purpose (tests/tracking pins it): a
    pending bank-card payment is re-fetched from Stripe on the server and its answer
    applied, exactly as the webhook's job would do it (idempotent, never backwards), so
    the payer who comes back from the bank sees the result without waiting for the
    webhook. Any other payment is only read. Stripe is asked before the payment's row
    is locked (services.sync_payment_intent).
    """
    with unit_of_work():
        p = services.refresh_card_payment(payment_id, user_id=current_user.id)
    # Once the bank has answered, the payer goes straight back to what they paid for (an
    # order's page shows its state and this payment), saying how it went; while it is
    # pending, this page waits and refreshes.
    back = (payables.return_page(p.reference_kind, p.reference_id)
            if p.status not in ("created", "pending") else None)
    if back:
        if p.status == "succeeded":
            flash(_("Payment received. Thank you."), "success")
        elif p.status == "failed":
            flash(_("The bank refused the payment. Nothing was charged; you can try "
                    "again."), "error")
        return redirect(back)
    return render_template("payments/result.html", p=p)


@bp.get("/receipts/<int:payment_id>.pdf")
@login_required
def receipt(payment_id: int):
    p = services.owned_payment(payment_id, current_user.id)
    return _pdf(receipts.payment_receipt(p, card_balance=services.card_balance_after(p),
                                         described=payables.describe(p.reference_kind,
                                                                     p.reference_id)),
                f"receipt-{p.id}.pdf")


@bp.route("/pay-for/<kind>/<reference_id>", methods=["GET", "POST"])
@login_required
def pay_for(kind: str, reference_id: str):
    """Pay any reference another domain registered, by post card + PIN or bank card."""
    due = payables.resolve(kind, reference_id, current_user)
    form = PayWithPostCardForm()
    done = services.paid_for(kind, reference_id)
    code_step: DomainError | None = None
    status = 200
    if request.method == "POST" and request.form.get("method") == "bank_card":
        try:
            with unit_of_work():
                start = services.start_bill_card_payment(
                    kind, reference_id, user=current_user,
                    idempotency_key=request.form.get("key", ""))
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            return redirect(url_for(".pay", payment_id=start.payment.id))
    elif form.validate_on_submit():
        try:
            # A wrong PIN rolls this back but stays counted (see cards.verify_pin).
            with unit_of_work():
                p = services.pay_bill_with_post_card(
                    kind, reference_id, user=current_user, card_number=form.card_number.data,
                    pin=form.pin.data, idempotency_key=form.key.data,
                    one_time_code=form.one_time_code.data or "")
        except (OneTimeCodeSent, WrongOneTimeCode) as exc:
            # Not the user's own card: the page asks for the code sent to its holder
            # (again, when the one given was wrong) and says so next to the field.
            code_step, status = exc, exc.http_status
            form.one_time_code.data = ""
        except RateLimited as exc:  # too many tries across cards, or codes: wait
            flash(str(exc.message), "error")
            status = exc.http_status
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            flash(_("Paid. Thank you."), "success")
            return redirect(url_for(".result", payment_id=p.id))
    own_cards = cards.cards_of(current_user.id)
    if own_cards and request.method == "GET" and not form.card_number.data:
        # A holder pays with their own card unless they type another.
        form.card_number.data = own_cards[0].grouped
    return render_template("payments/pay_for.html", due=due, form=form, kind=kind,
                           reference_id=reference_id, done=done, own_cards=own_cards,
                           code_step=code_step,
                           card_payments=gateway.card_payments_enabled(),
                           test_mode=gateway.card_payments_enabled() and gateway.test_mode(),
                           ), status


def register(app: Flask) -> None:
    app.register_blueprint(bp)
