"""The shopper's address book, checkout, orders, receipts and "buy for me" pages.

Routes hang on their own blueprint, "shop_orders", under /shop beside the catalog and
cart pages (shop.views). Every page needs a logged-in shopper and shows only their own
things: another shopper's order, address or request id answers 404. A page that
changes something opens the unit of work around the service it calls and catches the
service's refusal outside it, so whatever the service flushed before refusing is rolled
back; a GET page only reads.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.barcodes import barcode_url
from app.database import unit_of_work
from app.errors import DomainError, NotFound
from app.geo import governorates
from app.i18n import current_locale
from app.money import EXPONENT
from app.web import safe_next
from payments import gateway
from payments.cards import cards_of
from payments.errors import OneTimeCodeSent, WrongOneTimeCode
from payments.payables import register_description, register_return_page
from payments.services import payments_for
from shop.barcodes import ORDER_BARCODE
from shop.forms import AddressForm, BuyForMeForm, CheckoutForm, EmptyForm
from shop.models import DeliveryMethod
from shop.receipts import order_receipt as render_receipt
from shop.services import addresses, buyforme, checkout, orders
from shop.services import delivery_fees as fees
from shop.services.addresses import AddressInput
from shop.services.checkout import EmptyCart
from shop.services.placing import PaymentChoice, PriceChanged, SoldOut
from shop.services.references import ORDER_KIND

bp = Blueprint("shop_orders", __name__, url_prefix="/shop")


def _messages(fields: dict[str, Any]) -> dict[str, str]:
    """A service's field errors as one plain sentence per field, for the templates."""
    return {k: " ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)
            for k, v in fields.items()}


def _first_error(exc: DomainError) -> str:
    return str(exc.message)


def _pay_form(form: CheckoutForm | None, quote: Any, dest_args: dict[str, Any],
              own_cards: list) -> CheckoutForm:
    """The pay form under a quote: the shopper's own cards to choose from, and the
    quote's digest and destination carried along, so placing re-checks that quote."""
    if form is None:
        form = CheckoutForm(formdata=None, key=secrets.token_urlsafe(16))
        # A fresh form: the post card comes first only for a shopper who holds one (and
        # then their own card is chosen); anyone else starts on the bank card, when
        # card payments are on.
        if own_cards:
            form.payment.data = "post_card"
            form.card_id.data = str(own_cards[0].id)
        elif gateway.card_payments_enabled():
            form.payment.data = "stripe"
    form.card_id.choices = [(str(c.id), c.grouped) for c in own_cards] + [
        ("", _("Type a card number"))]
    if quote is not None:
        form.digest.data = quote.digest
        for name, value in dest_args.items():
            getattr(form, name).data = "" if value is None else str(value)
    return form


# -- address book --------------------------------------------------------------------------


@bp.route("/addresses", methods=["GET", "POST"])
@login_required
def address_book() -> ResponseReturnValue:
    form = AddressForm()
    errors: dict[str, Any] = {}
    back = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        try:
            with unit_of_work():
                addresses.add_address(current_user.id, AddressInput(
                    recipient_name=form.recipient_name.data or "",
                    phone=form.phone.data or "", governorate=form.governorate.data or "",
                    district=form.district.data or "", landmark=form.landmark.data or "",
                    postal_code=form.postal_code.data or ""))
        except DomainError as exc:
            errors = _messages(exc.fields)
            flash(_first_error(exc), "error")
        else:
            flash(_("Address saved."), "success")
            return redirect(back or url_for("shop_orders.address_book"))
    elif request.method == "POST":
        flash(_("The form has expired. Please try again."), "error")
    status = 422 if errors else 200
    return render_template("shop/orders_addresses.html", form=form, errors=errors, back=back,
                           addresses=addresses.addresses_of(current_user.id),
                           remove_form=EmptyForm()), status


@bp.post("/addresses/<int:address_id>/remove")
@login_required
def remove_address(address_id: int) -> Response:
    if EmptyForm().validate_on_submit():
        with unit_of_work():
            addresses.remove_address(address_id, current_user.id)
        flash(_("Address removed."), "success")
    return redirect(url_for("shop_orders.address_book"))


# -- checkout ------------------------------------------------------------------------------

def _dest_args(source: Any) -> dict[str, Any]:
    def as_int(name: str) -> int | None:
        raw = (source.get(name) or "").strip()
        return int(raw) if raw.isdigit() else None

    method = source.get("method") or ""
    args: dict[str, Any] = {"method": method}
    if method == DeliveryMethod.DOOR:
        args["address_id"] = as_int("address_id")
    elif method == DeliveryMethod.PICKUP:
        args.update(office_id=as_int("office_id"),
                    recipient_name=(source.get("recipient_name") or "").strip(),
                    phone=(source.get("phone") or "").strip())
    return args


def _payment_choice(form: CheckoutForm) -> PaymentChoice:
    raw_card = (form.card_id.data or "").strip()
    return PaymentChoice(
        method=form.payment.data or "",
        card_id=int(raw_card) if raw_card.isdigit() else None,
        card_number=(form.card_number.data or "").strip(),
        pin=(form.pin.data or "").strip(),
        one_time_code=(form.one_time_code.data or "").strip())


def _code_step(exc: DomainError) -> DomainError | None:
    """A post card that is not the shopper's own: payments sent its holder a one-time
    code (or the code given was wrong), and the pay form asks for it."""
    return exc if isinstance(exc, (OneTimeCodeSent, WrongOneTimeCode)) else None


def _for_code_step(form: CheckoutForm, exc: DomainError) -> CheckoutForm:
    if _code_step(exc) is not None:
        form.one_time_code.data = ""
    return form


def _checkout_page(dest_args: dict[str, Any], *, form: CheckoutForm | None = None,
                   quote: checkout.Quote | None = None, status: int = 200,
                   changed: bool = False,
                   code_step: DomainError | None = None) -> ResponseReturnValue:
    problem = None
    dest_errors: dict[str, Any] = {}
    if quote is None and dest_args.get("method"):
        try:
            dest = checkout.destination_for(current_user, **dest_args)
            quote = checkout.quote_cart(current_user, dest, locale=current_locale())
        except (SoldOut, EmptyCart) as exc:
            problem = str(exc.message)
        except DomainError as exc:
            dest_errors = _messages(exc.fields)
            problem = str(exc.message)
    own_cards = cards_of(current_user.id)
    form = _pay_form(form, quote, dest_args, own_cards)
    return render_template(
        "shop/checkout.html", quote=quote, form=form, dest_args=dest_args, problem=problem,
        dest_errors=dest_errors, changed=changed,
        addresses=addresses.addresses_of(current_user.id),
        offices=addresses.pickup_groups(current_locale()),
        governorates=governorates(), zone_labels=fees.ZONE_LABELS, own_cards=own_cards,
        card_payments=gateway.card_payments_enabled(), code_step=code_step,
        default_phone=current_user.phone or ""), status


@bp.get("/checkout")
@login_required
def checkout_page() -> ResponseReturnValue:
    return _checkout_page(_dest_args(request.args))


@bp.post("/checkout")
@login_required
def place_order() -> ResponseReturnValue:
    form = CheckoutForm()
    dest_args = _dest_args(request.form)
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("shop_orders.checkout_page",
                                **{k: v for k, v in dest_args.items() if v}))
    try:
        with unit_of_work():
            order = checkout.place_order(
                current_user.id, dest_args, payment=_payment_choice(form),
                seen_digest=form.digest.data or "", checkout_key=form.key.data or "",
                locale=current_locale())
    except PriceChanged as exc:
        flash(str(exc.message), "warning")
        form.pin.data = ""
        return _checkout_page(dest_args, form=form, quote=exc.quote, status=409, changed=True)
    except (SoldOut, EmptyCart) as exc:
        flash(str(exc.message), "error")
        return redirect(url_for("shop.cart"))
    except DomainError as exc:
        step = _code_step(exc)
        if step is None:  # the code step says its own news next to the code field
            flash(str(exc.message), "error")
        return _checkout_page(dest_args, form=_for_code_step(form, exc),
                              status=exc.http_status, code_step=step)
    if order.payment_method == "stripe" and order.status == "pending_payment":
        return redirect(url_for("shop_orders.order_pay", order_id=order.id))
    flash(_("Thank you: your order is placed."), "success")
    return redirect(url_for("shop_orders.order_detail", order_id=order.id))


# -- orders --------------------------------------------------------------------------------

@bp.get("/orders")
@login_required
def order_list() -> str:
    # Buy-for-me requests not yet an order show above the orders, with their state and
    # when to expect our price.
    return render_template("shop/orders_list.html", orders=orders.orders_of(current_user.id),
                           requests=buyforme.open_requests_of(current_user.id),
                           expected_answer=buyforme.expected_answer)


def _tracking_link(number: str | None) -> str | None:
    return url_for("tracking.track_number", number=number) if number else None


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id: int) -> str:
    order = orders.owned_order(order_id, current_user.id)
    payments = payments_for(ORDER_KIND, str(order.id))
    confirming = order.status == "pending_payment" and any(
        p.method == "stripe" and p.status == "succeeded" for p in payments)
    return render_template("shop/orders_detail.html", order=order, payments=payments,
                           confirming=confirming,
                           can_cancel=orders.can_cancel(order), cancel_form=EmptyForm(),
                           pay_form=EmptyForm(), tracking_link=_tracking_link,
                           zone_labels=fees.ZONE_LABELS)


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def order_cancel(order_id: int) -> Response:
    if not EmptyForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("shop_orders.order_detail", order_id=order_id))
    try:
        with unit_of_work():
            orders.cancel_order(order_id, current_user.id)
    except orders.NotCancellable as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Your order is cancelled. Anything you paid is on its way back to you."),
              "success")
    return redirect(url_for("shop_orders.order_detail", order_id=order_id))


@bp.route("/orders/<int:order_id>/pay", methods=["GET", "POST"])
@login_required
def order_pay(order_id: int) -> ResponseReturnValue:
    """Paying an order by bank card: a button that starts the Stripe payment, then the
    payments domain's card page."""
    order = orders.owned_order(order_id, current_user.id)
    form = EmptyForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            with unit_of_work():
                start = orders.start_card_payment(order.id, current_user.id)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            return redirect(url_for("payments.pay", payment_id=start.payment.id))
    if order.status != "pending_payment":
        return redirect(url_for("shop_orders.order_detail", order_id=order.id))
    return render_template("shop/orders_pay.html", order=order, form=form,
                           card_payments=gateway.card_payments_enabled(),
                           test_mode=gateway.card_payments_enabled() and gateway.test_mode())


@bp.get("/orders/<int:order_id>/show")
@login_required
def order_show(order_id: int) -> str:
    """The order's QR code full screen, to show at the counter."""
    order = orders.owned_order(order_id, current_user.id)
    return render_template("web/show_qr.html", url=barcode_url(ORDER_BARCODE, order.id),
                           number=order.number, heading=_("Order %(number)s",
                                                          number=order.number),
                           back=url_for("shop_orders.order_detail", order_id=order.id))


@bp.get("/orders/<int:order_id>/receipt.pdf")
@login_required
def order_receipt(order_id: int) -> Response:
    order = orders.owned_order(order_id, current_user.id)
    # The printed link must work from any phone: the site's public address, not the one
    # this request happened to come in on.
    # Its QR carries the order's signed reference: the owner's phone opens their order,
    # a counter's scanner the order in the back office.
    link = barcode_url(ORDER_BARCODE, order.id)
    return Response(render_receipt(order, link), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="order-{order.number}.pdf"',
        "Cache-Control": "no-store"})


# -- buy for me ----------------------------------------------------------------------------

@bp.route("/buy-for-me", methods=["GET", "POST"])
@login_required
def buy_for_me() -> ResponseReturnValue:
    form = BuyForMeForm()
    estimate = None
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("The form has expired. Please try again."), "error")
        else:
            try:
                if request.form.get("action") == "send":
                    with unit_of_work():
                        req = buyforme.submit_request(current_user.id, form.values())
                    flash(_("Request sent. We will answer with a final price."), "success")
                    return redirect(url_for("shop_orders.buy_request", request_id=req.id))
                _values, estimate = buyforme.estimate(form.values())
            except DomainError as exc:
                errors = _messages(exc.fields)
                status = exc.http_status
                flash(str(exc.message), "error")
    return render_template("shop/buyforme.html", form=form, estimate=estimate,
                           errors=errors, requests=buyforme.requests_of(current_user.id)), status


def _accept_page(req: Any, dest_args: dict[str, Any], *, form: CheckoutForm | None = None,
                 status: int = 200, changed: bool = False,
                 code_step: DomainError | None = None) -> ResponseReturnValue:
    quote = None
    problem = None
    if req.status == "quoted" and dest_args.get("method"):
        try:
            quote = buyforme.quote_for(req, checkout.destination_for(current_user, **dest_args))
        except DomainError as exc:
            problem = str(exc.message)
    own_cards = cards_of(current_user.id)
    form = _pay_form(form, quote, dest_args, own_cards)
    category = fees.customs_category(req.customs_category)
    return render_template(
        "shop/buyforme_request.html", req=req, quote=quote, form=form, problem=problem,
        dest_args=dest_args, changed=changed, category=category,
        parcel=buyforme.request_parcel(req, current_locale()),
        addresses=addresses.addresses_of(current_user.id),
        offices=addresses.pickup_groups(current_locale()),
        own_cards=own_cards, card_payments=gateway.card_payments_enabled(),
        code_step=code_step, default_phone=current_user.phone or "",
        zone_labels=fees.ZONE_LABELS, change_form=EmptyForm(),
        expected=buyforme.expected_answer(req)), status


@bp.get("/buy-for-me/<int:request_id>")
@login_required
def buy_request(request_id: int) -> ResponseReturnValue:
    req = buyforme.owned_request(request_id, current_user.id)
    return _accept_page(req, _dest_args(request.args))


def _request_form_data(req: Any) -> dict[str, str]:
    """A request's fields as the shopper typed them, to correct them."""
    exponent = EXPONENT.get(req.currency, 2)
    price = Decimal(req.unit_price).scaleb(-exponent)
    return {"url": req.url, "title": req.title, "price": f"{price:f}",
            "currency": req.currency, "quantity": str(req.quantity), "options": req.options,
            "weight_g": str(req.weight_g), "customs_category": req.customs_category}


@bp.route("/buy-for-me/<int:request_id>/edit", methods=["GET", "POST"])
@login_required
def buy_request_edit(request_id: int) -> ResponseReturnValue:
    """Correct a request that waits for our price (refused, with why, once priced)."""
    req = buyforme.owned_request(request_id, current_user.id)
    if req.status != "submitted":
        flash(_("This request can no longer be changed or cancelled: we have already "
                "answered it. You can accept the price or let it expire.")
              if req.status == "quoted" else
              _("This request can no longer be changed or cancelled."), "error")
        return redirect(url_for("shop_orders.buy_request", request_id=req.id))
    form = BuyForMeForm() if request.method == "POST" else BuyForMeForm(
        data=_request_form_data(req))
    estimate = None
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("The form has expired. Please try again."), "error")
        else:
            try:
                if request.form.get("action") == "send":
                    with unit_of_work():
                        buyforme.edit_request(req.id, current_user.id, form.values())
                    flash(_("Your request is changed. We will answer with a final price."),
                          "success")
                    return redirect(url_for("shop_orders.buy_request", request_id=req.id))
                _values, estimate = buyforme.estimate(form.values())
            except DomainError as exc:
                errors = _messages(exc.fields)
                status = exc.http_status
                flash(str(exc.message), "error")
    return render_template("shop/buyforme.html", form=form, estimate=estimate,
                           errors=errors, editing=req, requests=[]), status


@bp.post("/buy-for-me/<int:request_id>/cancel")
@login_required
def buy_request_cancel(request_id: int) -> ResponseReturnValue:
    """Withdraw a request that waits for our price."""
    req = buyforme.owned_request(request_id, current_user.id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("shop_orders.buy_request", request_id=req.id))
    try:
        with unit_of_work():
            buyforme.cancel_request(req.id, current_user.id)
    except buyforme.RequestAlreadyPriced as exc:
        flash(str(exc.message), "error")
        return redirect(url_for("shop_orders.buy_request", request_id=req.id), code=303)
    flash(_("Your request is cancelled."), "success")
    return redirect(url_for("shop_orders.buy_request", request_id=req.id), code=303)


@bp.route("/buy-for-me/<int:request_id>/accept", methods=["GET", "POST"])
@login_required
def buy_request_accept(request_id: int) -> ResponseReturnValue:
    req = buyforme.owned_request(request_id, current_user.id)
    if request.method == "GET":
        # The accept page is shown at this address after a refused payment (a wrong
        # PIN, no balance): reloading it, switching language or "start again" come back
        # here by GET, and land on the request's page to try again.
        return redirect(url_for("shop_orders.buy_request", request_id=req.id), code=303)
    form = CheckoutForm()
    dest_args = _dest_args(request.form)
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("shop_orders.buy_request", request_id=req.id))
    try:
        with unit_of_work():
            order = buyforme.accept_quote(req.id, current_user.id, dest_args,
                                          payment=_payment_choice(form),
                                          seen_digest=form.digest.data or "",
                                          checkout_key=form.key.data or "")
    except PriceChanged as exc:
        flash(str(exc.message), "warning")
        return _accept_page(req, dest_args, status=409, changed=True)
    except NotFound:
        raise
    except DomainError as exc:
        step = _code_step(exc)
        if step is None:
            flash(str(exc.message), "error")
        return _accept_page(buyforme.owned_request(request_id, current_user.id), dest_args,
                            form=_for_code_step(form, exc), status=exc.http_status,
                            code_step=step)
    if order.payment_method == "stripe":
        return redirect(url_for("shop_orders.order_pay", order_id=order.id))
    flash(_("Thank you: the quote is accepted and your order placed."), "success")
    return redirect(url_for("shop_orders.order_detail", order_id=order.id))


def _order_page(reference_id: str) -> str | None:
    """Where the payer of an order returns after the bank answers: the order's page."""
    return (url_for("shop_orders.order_detail", order_id=int(reference_id))
            if reference_id.isdigit() else None)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_return_page(ORDER_KIND, _order_page)
    register_description(ORDER_KIND, orders.order_described)
