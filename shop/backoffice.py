"""Back-office pages: merchants for admins (approve, suspend, commission, post office),
and "buy for me" requests for procurement.

Each POST runs its one service in a unit of work and catches a DomainError outside it,
so what the service flushed before failing is rolled back; the error is flashed. GET
pages only read.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import Select, func, or_, select
from werkzeug.wrappers import Response

from app.auth.decorators import role_required
from app.auth.models import Role, User
from app.backoffice import figures_page, nav_item
from app.database import db, unit_of_work
from app.errors import DomainError, NotFound
from app.i18n import current_locale
from app.listing import Filter, Listing
from app.overrides import EditableField, editable_group
from payments import payouts as payouts_service
from payments.services import payments_for
from shop.forms import (
    CommissionForm,
    EmptyForm,
    PayoutForm,
    PostOfficeForm,
    PurchaseForm,
    QuoteForm,
    RejectForm,
    SuspendForm,
)
from shop.models import (
    HOME_CURRENCY,
    BuyRequest,
    BuyRequestStatus,
    Merchant,
    MerchantStatus,
    Order,
)
from shop.services import buyforme, settlement
from shop.services import merchants as merchant_services
from shop.services.delivery_fees import ZONE_LABELS, ZONES, customs_category
from shop.services.references import ORDER_KIND

bp = Blueprint("shop_admin", __name__, url_prefix="/backoffice/admin/merchants")


def _first_error(form: FlaskForm) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return _("Please check what you entered.")


MERCHANT_STATUS_LABELS = {MerchantStatus.ACTIVE: _l("Active"),
                          MerchantStatus.PENDING: _l("Waiting for approval"),
                          MerchantStatus.SUSPENDED: _l("Suspended")}


def _merchant_named(stmt: Select[Any], text: str) -> Select[Any]:
    return stmt.where(or_(Merchant.name_ar.contains(text, autoescape=True),
                          func.lower(Merchant.name_en).contains(text.lower(), autoescape=True),
                          Merchant.slug.contains(text.lower(), autoescape=True)))


MERCHANT_LIST = Listing(
    "merchants", order=(Merchant.created_at, Merchant.id),
    filters=(
        Filter("status", _l("Status"), "choice", column=Merchant.status,
               choices=lambda: [(str(s), MERCHANT_STATUS_LABELS.get(s, s))
                                for s in MerchantStatus]),
        Filter("q", _l("Shop name"), apply=_merchant_named),
        Filter("since", _l("Signed up from (day)"), "date_from", column=Merchant.created_at),
        Filter("until", _l("Signed up until (day)"), "date_to", column=Merchant.created_at),
    ))


@bp.get("/")
@role_required(Role.ADMIN)
def merchants() -> str:
    """Merchants, newest first, a page at a time, by status, name and sign-up day."""
    page = MERCHANT_LIST.page(select(Merchant), MERCHANT_LIST.parse(request.args),
                              request.args)
    return render_template("shop/backoffice/merchants.html", page=page,
                           merchants=page.rows)


@bp.get("/export.csv")
@role_required(Role.ADMIN)
def merchants_csv() -> Response:
    """Every merchant the filters keep, as CSV."""
    columns = [
        (_("Number"), lambda m: m.id),
        (_("Signed up (UTC)"), lambda m: m.created_at.isoformat(timespec="seconds")),
        (_("Name (Arabic)"), lambda m: m.name_ar),
        (_("Name (English)"), lambda m: m.name_en),
        (_("Short name"), lambda m: m.slug),
        (_("Country"), lambda m: m.country),
        (_("Currency"), lambda m: m.currency),
        (_("Commission (basis points)"), lambda m: m.commission_bps),
        (_("Status"), lambda m: str(MERCHANT_STATUS_LABELS.get(m.status, m.status))),
    ]
    return MERCHANT_LIST.csv(select(Merchant), MERCHANT_LIST.parse(request.args), columns,
                             "merchants.csv")


@bp.get("/<int:merchant_id>")
@role_required(Role.ADMIN)
def merchant(merchant_id: int) -> str:
    m = merchant_services.get_merchant(merchant_id)
    office_form = PostOfficeForm(post_office_id=m.post_office_id)
    office_form.post_office_id.choices = merchant_services.post_office_choices()
    return render_template(
        "shop/backoffice/merchant.html", merchant=m, approve_form=EmptyForm(),
        suspend_form=SuspendForm(), commission_form=CommissionForm(
            commission_bps=m.commission_bps), office_form=office_form,
    )


def _done(merchant_id: int) -> Response:
    return redirect(url_for("shop_admin.merchant", merchant_id=merchant_id))


@bp.post("/<int:merchant_id>/approve")
@role_required(Role.ADMIN)
def approve(merchant_id: int) -> Response:
    if EmptyForm().validate_on_submit():
        try:
            with unit_of_work():
                merchant_services.approve_merchant(merchant_id, actor_id=current_user.id)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            flash(_("The shop is active: its products are in the catalog."), "success")
    return _done(merchant_id)


@bp.post("/<int:merchant_id>/suspend")
@role_required(Role.ADMIN)
def suspend(merchant_id: int) -> Response:
    form = SuspendForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _done(merchant_id)
    try:
        with unit_of_work():
            merchant_services.suspend_merchant(merchant_id, reason=form.reason.data,
                                               actor_id=current_user.id)
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("The shop is suspended: its products are hidden."), "success")
    return _done(merchant_id)


@bp.post("/<int:merchant_id>/commission")
@role_required(Role.ADMIN)
def commission(merchant_id: int) -> Response:
    form = CommissionForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _done(merchant_id)
    try:
        with unit_of_work():
            merchant_services.set_commission(merchant_id, form.commission_bps.data,
                                             actor_id=current_user.id)
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Commission saved."), "success")
    return _done(merchant_id)


@bp.post("/<int:merchant_id>/post-office")
@role_required(Role.ADMIN)
def post_office(merchant_id: int) -> Response:
    form = PostOfficeForm()
    form.post_office_id.choices = merchant_services.post_office_choices()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _done(merchant_id)
    try:
        with unit_of_work():
            merchant_services.set_post_office(merchant_id, form.post_office_id.data,
                                              actor_id=current_user.id)
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Post office saved."), "success")
    return _done(merchant_id)


# -- procurement: "buy for me" requests ---------------------------------------------------

procurement = Blueprint("shop_procurement", __name__, url_prefix="/backoffice/procurement")
PROCUREMENT_ROLES = (Role.PROCUREMENT, Role.ADMIN)


REQUEST_STATUS_LABELS = {
    BuyRequestStatus.SUBMITTED: _l("Waiting for our price"),
    BuyRequestStatus.QUOTED: _l("Priced: waiting for you"),
    BuyRequestStatus.REJECTED: _l("Rejected"),
    BuyRequestStatus.ACCEPTED: _l("Accepted: awaiting payment"),
    BuyRequestStatus.PAID: _l("Paid"),
    BuyRequestStatus.PURCHASED: _l("Bought abroad"),
    BuyRequestStatus.EXPIRED: _l("Expired"),
}


def _request_text(stmt: Select[Any], text: str) -> Select[Any]:
    shoppers = select(User.id).where(or_(func.lower(User.full_name).contains(
        text.lower(), autoescape=True), User.email.contains(text.lower(), autoescape=True)))
    return stmt.where(or_(BuyRequest.number.contains(text.upper(), autoescape=True),
                          BuyRequest.title.contains(text, autoescape=True),
                          BuyRequest.user_id.in_(shoppers)))


# The procurement queue: oldest waiting first, as they are to be worked.
REQUEST_LIST = Listing(
    "buy_requests", order=(BuyRequest.created_at, BuyRequest.id), newest_first=False,
    filters=(
        Filter("status", _l("Status"), "choice", column=BuyRequest.status,
               choices=lambda: [(str(s), REQUEST_STATUS_LABELS.get(s, s))
                                for s in BuyRequestStatus]),
        Filter("q", _l("Request, product or shopper"), apply=_request_text),
        Filter("since", _l("From (day)"), "date_from", column=BuyRequest.created_at),
        Filter("until", _l("To (day)"), "date_to", column=BuyRequest.created_at),
    ))


def _queue_args() -> dict[str, str]:
    """The query string, with the queue's default: requests waiting for a price (an
    empty status is every request)."""
    args = request.args.to_dict()
    args.setdefault("status", BuyRequestStatus.SUBMITTED)
    return args


@procurement.get("/")
@role_required(*PROCUREMENT_ROLES)
def requests() -> str:
    args = _queue_args()
    page = REQUEST_LIST.page(select(BuyRequest), REQUEST_LIST.parse(args), args)
    return render_template("shop/backoffice/procurement.html", page=page,
                           requests=page.rows)


@procurement.get("/export.csv")
@role_required(*PROCUREMENT_ROLES)
def requests_csv() -> Response:
    """Every buy-for-me request the filters keep, as CSV."""
    args = _queue_args()
    columns = [
        (_("Request"), lambda r: r.number),
        (_("Received (UTC)"), lambda r: r.created_at.isoformat(timespec="seconds")),
        (_("Product"), lambda r: r.title),
        (_("Options"), lambda r: r.options),
        (_("Quantity"), lambda r: r.quantity),
        (_("Link"), lambda r: r.url),
        (_("Shopper"), lambda r: r.user.full_name),
        (_("Status"), lambda r: str(REQUEST_STATUS_LABELS.get(r.status, r.status))),
        (_("Total (IQD)"), lambda r: r.total),
    ]
    return REQUEST_LIST.csv(select(BuyRequest), REQUEST_LIST.parse(args), columns,
                            "buy-for-me-requests.csv")


@procurement.get("/<int:request_id>")
@role_required(*PROCUREMENT_ROLES)
def buy_request(request_id: int) -> str:
    req = buyforme.get_request(request_id)
    return render_template(
        "shop/backoffice/procurement_request.html", req=req,
        category=customs_category(req.customs_category), quote_form=QuoteForm(),
        reject_form=RejectForm(),
        purchase_form=PurchaseForm(origin=buyforme.likely_origin(req)),
        parcel=buyforme.request_parcel(req, current_locale()))


def _to_request(request_id: int) -> Response:
    return redirect(url_for("shop_procurement.buy_request", request_id=request_id))


@procurement.post("/<int:request_id>/approve", endpoint="approve")
@role_required(*PROCUREMENT_ROLES)
def approve_request(request_id: int) -> Response:
    form = QuoteForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _to_request(request_id)
    try:
        with unit_of_work():
            buyforme.approve_request(request_id, reviewer_id=current_user.id,
                                     data=form.values())
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Quote sent to the shopper."), "success")
    return _to_request(request_id)


@procurement.post("/<int:request_id>/reject", endpoint="reject")
@role_required(*PROCUREMENT_ROLES)
def reject_request(request_id: int) -> Response:
    form = RejectForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _to_request(request_id)
    try:
        with unit_of_work():
            buyforme.reject_request(request_id, reviewer_id=current_user.id,
                                    reason=form.reason.data or "")
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Request rejected; the shopper sees your reason."), "success")
    return _to_request(request_id)


@procurement.post("/<int:request_id>/purchased")
@role_required(*PROCUREMENT_ROLES)
def purchased(request_id: int) -> Response:
    form = PurchaseForm()
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return _to_request(request_id)
    try:
        # One unit of work: the request, the consignment and tracking's inbound parcel
        # commit together or not at all.
        with unit_of_work():
            buyforme.record_purchase(
                request_id, clerk_id=current_user.id,
                foreign_order_number=form.foreign_order_number.data or "",
                foreign_tracking_number=form.foreign_tracking_number.data or "",
                ships_from=form.ships_from.data or "", hs_code=form.hs_code.data or "")
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Purchase recorded."), "success")
    return _to_request(request_id)


# -- orders at the counter ----------------------------------------------------------------

orders_bo = Blueprint("shop_orders_bo", __name__, url_prefix="/backoffice/orders")
COUNTER_ROLES = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)


@orders_bo.get("/<int:order_id>")
@role_required(*COUNTER_ROLES)
def order(order_id: int) -> str:
    """An order as the counter sees it (opened by its QR code or the search box): its
    status, its parcels with their hand-over page, its payments with their refund page."""
    found = db.get(Order, order_id)
    if found is None:
        raise NotFound()
    return render_template("shop/backoffice/order.html", order=found,
                           payments=payments_for(ORDER_KIND, str(found.id)))


# -- merchant payouts (finance: supervisors and admins) -------------------------------------

payouts_bo = Blueprint("shop_payouts", __name__, url_prefix="/backoffice/payouts")
FINANCE_ROLES = (Role.SUPERVISOR, Role.ADMIN)


@payouts_bo.get("/")
@role_required(*FINANCE_ROLES)
def payouts() -> str:
    """Every merchant with what the post owes it now."""
    rows = [(m, payouts_service.payable_balance(m.id, HOME_CURRENCY))
            for m in merchant_services.list_merchants()]
    return render_template("shop/backoffice/payouts.html", rows=rows)


@payouts_bo.route("/<int:merchant_id>", methods=["GET", "POST"])
@role_required(*FINANCE_ROLES)
def merchant_payouts(merchant_id: int) -> str | Response:
    """A merchant's statement, and the form that records a bank transfer paid to it."""
    m = merchant_services.get_merchant(merchant_id)
    form = PayoutForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                _entry, created = payouts_service.record_payout(
                    m.id, form.amount.data, form.reference.data, actor_id=current_user.id,
                    currency=HOME_CURRENCY)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            flash(_("Payout recorded.") if created else
                  _("This transfer was already recorded: nothing changed."), "success")
            return redirect(url_for("shop_payouts.merchant_payouts", merchant_id=m.id))
    return render_template("shop/backoffice/merchant_payouts.html", merchant=m, form=form,
                           st=settlement.statement(m.id, currency=HOME_CURRENCY),
                           kinds=settlement.KIND_LABELS)


# ---- delivery, shipping and handling fees (app.overrides) ----------------------------

fees_bo = Blueprint("shop_fees_bo", __name__, url_prefix="/backoffice/admin/shop-fees")
SHOP_FEES = "shop_fees"


@fees_bo.route("", methods=["GET", "POST"])
@role_required(Role.SUPERVISOR, Role.ADMIN)
def fees() -> Any:
    """Supervisors see what the shop charges for delivery, shipping and handling; an
    administrator changes it (checkout and buy-for-me quotes price from it at once)."""
    return figures_page(SHOP_FEES, endpoint="shop_fees_bo.fees", intro=_l(
        "New orders and quotes use these fees as soon as they are saved; orders already "
        "placed keep what they were charged."))


def _declare_fees() -> None:
    iqd = _l("IQD")
    fields = []
    for zone in ZONES:
        fields += [
            EditableField(f"SHOP_DELIVERY_FEES.{zone}.base",
                          _l("Delivery %(zone)s: first kilogram", zone=ZONE_LABELS[zone]),
                          unit=iqd),
            EditableField(f"SHOP_DELIVERY_FEES.{zone}.per_kg",
                          _l("Delivery %(zone)s: each further kilogram",
                             zone=ZONE_LABELS[zone]), unit=iqd),
        ]
    fields += [
        EditableField("SHOP_DOOR_FEE", _l("Delivery to the door"), unit=iqd),
        EditableField("SHOP_INTERNATIONAL_SHIPPING.base",
                      _l("Shipping from abroad: base"), unit=iqd),
        EditableField("SHOP_INTERNATIONAL_SHIPPING.per_kg",
                      _l("Shipping from abroad: each kilogram"), unit=iqd),
        EditableField("SHOP_HANDLING_FEE", _l("Customs clearance handling"), unit=iqd),
    ]
    editable_group(SHOP_FEES, _l("Delivery and handling fees"), tuple(fields))


def init_app(app: Flask) -> None:
    _declare_fees()
    app.register_blueprint(fees_bo)
    app.register_blueprint(bp)
    app.register_blueprint(procurement)
    app.register_blueprint(orders_bo)
    app.register_blueprint(payouts_bo)
    nav_item("shop_procurement.requests", "Buy-for-me requests", PROCUREMENT_ROLES,
             section="procurement", order=10)
    nav_item("shop_admin.merchants", "Merchants", (Role.ADMIN,), section="shop", order=10)
    nav_item("shop_payouts.payouts", "Merchant payouts", FINANCE_ROLES, section="shop",
             order=20)
    nav_item("shop_fees_bo.fees", "Delivery and handling fees", (Role.SUPERVISOR, Role.ADMIN),
             section="admin", order=70)
