"""The merchant portal's orders (/merchant/orders): the shop's consignments, filtered
by state or order number; acknowledge, ready for handover (the parcel is made and its
label printed), cancel with refund, and the parcel's journey.

The same services as the merchant API (shop.services.merchant_api) do the work, with
the logged-in merchant's shop as owner: another shop's consignment is a 404.
"""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as WResponse
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional

from app.auth.decorators import role_required
from app.auth.models import Role
from app.database import db, unit_of_work
from app.errors import DomainError, NotFound
from app.i18n import current_locale
from app.numbers import WholeNumberField
from shop.models import Consignment, ConsignmentStatus, Order
from shop.portal import ActionForm, _merchant, bp
from shop.services import merchant_api as svc
from tracking.labels import label_for
from tracking.models import Parcel
from tracking.services.lookup import public_view

PER_PAGE = 50

STATUS_LABELS = {
    ConsignmentStatus.AWAITING_PAYMENT: _l("Awaiting payment"),
    ConsignmentStatus.OPEN: _l("Paid: to prepare"),
    ConsignmentStatus.READY: _l("Ready for handover"),
    ConsignmentStatus.SHIPPED: _l("With the post"),
    ConsignmentStatus.DELIVERED: _l("Delivered"),
    ConsignmentStatus.CANCELLED: _l("Cancelled"),
    ConsignmentStatus.EXPIRED: _l("Expired"),
}


class HandoverForm(FlaskForm):
    weight_g = WholeNumberField(_l("Packed weight (grams)"), min=1, max=30_000,
                                validators=[Optional()])
    length_cm = WholeNumberField(_l("Length (cm)"), min=0, max=300, validators=[Optional()])
    width_cm = WholeNumberField(_l("Width (cm)"), min=0, max=300, validators=[Optional()])
    height_cm = WholeNumberField(_l("Height (cm)"), min=0, max=300, validators=[Optional()])
    submit = SubmitField(_l("Ready for handover: make the label"))


class CancelForm(FlaskForm):
    reason = StringField(_l("Why can you not send it?"), validators=[
        InputRequired(_l("Write the reason: the shopper will see it.")), Length(max=250)])
    submit = SubmitField(_l("Cancel and refund the shopper"))


@bp.get("/orders")
@role_required(Role.MERCHANT)
def orders() -> str:
    merchant = _merchant()
    status = request.args.get("status") or None
    if status not in {None, *ConsignmentStatus}:
        status = None
    number = (request.args.get("q") or "").strip().upper()[:20]
    stmt = svc.consignments_query(merchant.id, status=status)
    if number:
        stmt = stmt.where(Order.number.contains(number))
    rows = list(db.scalars(stmt.order_by(Consignment.id.desc()).limit(PER_PAGE + 1)))
    return render_template("shop/portal/orders.html", merchant=merchant,
                           consignments=rows[:PER_PAGE], more=len(rows) > PER_PAGE,
                           status=status, q=number, labels=STATUS_LABELS)


@bp.get("/orders/<int:consignment_id>")
@role_required(Role.MERCHANT)
def order(consignment_id: int) -> str:
    merchant = _merchant()
    c = svc.owned_consignment(merchant.id, consignment_id)
    journey = None
    if c.parcel_id is not None:
        parcel = db.get(Parcel, c.parcel_id)
        if parcel is not None:
            journey = public_view(parcel, current_locale())
    form = HandoverForm()
    if not form.is_submitted():
        form.weight_g.data = c.weight_g or None
    return render_template("shop/portal/order.html", merchant=merchant, c=c,
                           view=svc.consignment_view(c, None), journey=journey,
                           handover_form=form, cancel_form=CancelForm(), action=ActionForm(),
                           labels=STATUS_LABELS)


def _back(consignment_id: int) -> WResponse:
    return redirect(url_for(".order", consignment_id=consignment_id))


@bp.post("/orders/<int:consignment_id>/acknowledge")
@role_required(Role.MERCHANT)
def order_acknowledge(consignment_id: int) -> WResponse:
    merchant = _merchant()
    svc.owned_consignment(merchant.id, consignment_id)
    if ActionForm().validate_on_submit():
        try:
            with unit_of_work():
                svc.acknowledge(merchant.id, consignment_id)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            flash(_("Acknowledged: the shopper sees that you are preparing it."), "success")
    return _back(consignment_id)


@bp.post("/orders/<int:consignment_id>/ready")
@role_required(Role.MERCHANT)
def order_ready(consignment_id: int) -> WResponse:
    merchant = _merchant()
    svc.owned_consignment(merchant.id, consignment_id)
    form = HandoverForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(str(errors[0]), "error")
            break
        return _back(consignment_id)
    dims = {k: getattr(form, k).data for k in ("weight_g", "length_cm", "width_cm",
                                                 "height_cm") if getattr(form, k).data}
    try:
        with unit_of_work():
            c = svc.ready_for_handover(merchant.id, consignment_id, dims)
            number = c.tracking_number
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Parcel %(number)s is made. Print its label, stick it on the parcel and "
                "bring it to your post office.", number=number), "success")
    return _back(consignment_id)


@bp.post("/orders/<int:consignment_id>/cancel")
@role_required(Role.MERCHANT)
def order_cancel(consignment_id: int) -> WResponse:
    merchant = _merchant()
    svc.owned_consignment(merchant.id, consignment_id)
    form = CancelForm()
    if not form.validate_on_submit():
        flash(next(iter(form.reason.errors), _("Write the reason.")), "error")
        return _back(consignment_id)
    try:
        with unit_of_work():
            svc.cancel_consignment(merchant.id, consignment_id, form.reason.data.strip())
    except DomainError as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Cancelled. The shopper is refunded for this part of the order."),
              "success")
    return _back(consignment_id)


@bp.get("/orders/<int:consignment_id>/label.pdf")
@role_required(Role.MERCHANT)
def order_label(consignment_id: int) -> Response:
    merchant = _merchant()
    c = svc.owned_consignment(merchant.id, consignment_id)
    parcel = db.scalar(select(Parcel).where(Parcel.id == c.parcel_id)) if c.parcel_id else None
    if parcel is None:
        raise NotFound(_l("This consignment has no parcel yet."))
    with force_locale("ar"), unit_of_work():  # the first print stores the label
        pdf = label_for(parcel)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{parcel.tracking_number}.pdf"'})
