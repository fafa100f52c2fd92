"""Clerk, customs officer and supervisor pages for parcels and customs.

Each page that changes something opens the unit of work of its use case and catches
domain errors outside it, so nothing half-done is kept; pages that only show never write.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.auth.decorators import role_required
from app.auth.models import PostOffice, Role
from app.auth.services import InvalidCredentials, attempt_login
from app.backoffice import nav_item
from app.dashboard import day_filter, office_filter
from app.database import db, unit_of_work
from app.errors import DomainError, RateLimited, ValidationFailed
from app.i18n import BAGHDAD, current_locale
from app.money import MoneyError, to_minor
from tracking import forms, labels
from tracking.models import CustomsCase, Parcel, ParcelEvent, TariffLine
from tracking.services import bulk, customs, delivery, figures
from tracking.services import events as ev
from tracking.services.lookup import status_text
from tracking.services.parcels import (
    Address,
    Article,
    ParcelDraft,
    PaymentChoice,
    accept_at_counter,
    get_parcel,
)
from tracking.upu import event_codes

bp = Blueprint("tracking_bo", __name__, url_prefix="/backoffice/parcels")
customs_bp = Blueprint("customs_bo", __name__, url_prefix="/backoffice/customs")

COUNTER = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)
CUSTOMS = (Role.CUSTOMS_OFFICER, Role.SUPERVISOR, Role.ADMIN)
SUPERVISION = (Role.SUPERVISOR, Role.ADMIN)
# What a clerk scans in the network; customs decisions are made in the customs queue.
SCAN_CODES = ("EMA", "EMB", "EMC", "EMD", "EMF", "EDD", "EDE", "EMG", "EDF", "EDG", "EDH",
              "EMH", "EMI")


def _office_id() -> int:
    if current_user.post_office_id is None:
        raise ValidationFailed(_l("Your account is not attached to a post office. Ask an "
                                  "administrator."))
    return current_user.post_office_id


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


# ---- counter acceptance ---------------------------------------------------------------


def _amount(raw: str | None, currency: str) -> int:
    if not (raw or "").strip():
        return 0
    try:
        return to_minor(Decimal(raw.strip().replace(",", "")), currency)
    except (InvalidOperation, MoneyError):
        return -1


def _draft(form: forms.AcceptanceForm) -> ParcelDraft:
    abroad = form.direction.data == "outbound"
    articles = [
        Article(description=a.description.data or "", quantity=a.quantity.data or 1,
                net_weight_grams=a.net_weight_grams.data or 0,
                value_amount=_amount(a.value.data, a.currency.data),
                value_currency=a.currency.data, hs_code=(a.hs_code.data or "").strip() or None,
                origin_country=(a.origin_country.data or "IQ").upper()[:2])
        for a in (entry.form for entry in form.articles) if (a.description.data or "").strip()
    ]
    return ParcelDraft(
        sender=Address(name=form.sender_name.data or "", phone=form.sender_phone.data or "",
                       governorate=form.sender_governorate.data or None,
                       district=form.sender_district.data or "",
                       landmark=form.sender_landmark.data or ""),
        recipient=Address(
            name=form.recipient_name.data or "", phone=form.recipient_phone.data or "",
            governorate=None if abroad else (form.recipient_governorate.data or None),
            district=form.recipient_district.data or "",
            landmark=form.recipient_landmark.data or "",
            address=form.recipient_address.data or "",
            country=(form.recipient_country.data or "").upper()[:2] if abroad else "IQ"),
        weight_grams=form.weight_grams.data if form.weight_grams.data is not None else 0,
        service=form.service.data, direction=form.direction.data,
        length_cm=form.length_cm.data or 0, width_cm=form.width_cm.data or 0,
        height_cm=form.height_cm.data or 0, articles=articles,
        customs_category=form.customs_category.data or None,
    )


def _attach_errors(form: forms.AcceptanceForm, fields: dict[str, Any]) -> None:
    for key, message in fields.items():
        if key.startswith("articles."):
            _n, idx, name = key.split(".")
            entry = form.articles[int(idx)] if int(idx) < len(form.articles) else None
            target = getattr(entry.form, "value" if name == "value_amount" else name,
                             None) if entry else None
        else:
            target = getattr(form, key, None)
        if target is not None:
            target.errors = [*list(target.errors), str(message)]
        else:
            form.form_errors.append(str(message))


@bp.route("/accept", methods=["GET", "POST"])
@role_required(*COUNTER)
def accept() -> Any:
    form = forms.AcceptanceForm()
    choices = forms.governorate_choices(current_locale())
    form.sender_governorate.choices = choices
    form.recipient_governorate.choices = choices
    if form.validate_on_submit():
        try:
            with unit_of_work():
                parcel = accept_at_counter(
                    _draft(form), clerk_id=current_user.id, office_id=_office_id(),
                    payment=PaymentChoice(form.payment_method.data, form.card_number.data,
                                          form.card_pin.data),
                    acceptance_key=form.acceptance_key.data or None)
        except ValidationFailed as exc:
            # The form is shown again with each message beside its field.
            _attach_errors(form, exc.fields)
            if not exc.fields:
                form.form_errors.append(str(exc.message))
        except DomainError as exc:  # payment refused: say why, keep what was typed
            form.form_errors.append(str(exc.message))
        else:
            flash(_("Parcel %(number)s accepted.", number=parcel.tracking_number), "success")
            return redirect(url_for("tracking_bo.parcel", number=parcel.tracking_number,
                                    printed=1))
    return render_template("tracking/accept.html", form=form), (
        422 if form.errors or form.form_errors else 200)


# ---- one parcel -------------------------------------------------------------------------


@bp.get("/<number>")
@role_required(*COUNTER, Role.CUSTOMS_OFFICER)
def parcel(number: str) -> str:
    p = get_parcel(number)
    events = db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == p.id)
                        .order_by(ParcelEvent.occurred_at, ParcelEvent.id)).all()
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == p.id))
    destination = ev.destination_office_id(p, list(events))
    office_ids = {e.office_id for e in events if e.office_id} | {
        i for i in (p.origin_office_id, p.pickup_office_id, destination) if i}
    offices = {o.id: o for o in db.scalars(select(PostOffice).where(
        PostOffice.id.in_(office_ids)))} if office_ids else {}
    return render_template(
        "tracking/parcel.html", parcel=p, events=events, case=case, offices=offices,
        codes=event_codes(), handover=forms.HandoverForm(), duty=forms.DutyPaymentForm(),
        printed=request.args.get("printed") == "1", destination=destination,
        at_destination=destination is not None
        and destination == current_user.post_office_id,
        reasons=ev.NON_DELIVERY_REASONS, actions=ev.DELIVERY_ACTIONS,
    )


@bp.get("/<number>/label.pdf")
@role_required(*COUNTER)
def label(number: str) -> Response:
    size = request.args.get("size", "4x6")
    if size not in labels.SIZES:
        abort(404)
    with unit_of_work():  # the first print stores the label; a reprint serves it
        p = get_parcel(number)
        pdf = labels.label_for(p, size)
    return _pdf(pdf, f"label-{p.tracking_number}.pdf")


@bp.get("/labels.pdf")
@role_required(*COUNTER)
def labels_batch() -> Response:
    """Many labels in one PDF: the numbers given, or today's parcels at the clerk's office."""
    size = request.args.get("size", "4x6")
    if size not in labels.SIZES:
        abort(404)
    numbers = [n for n in request.args.getlist("n") if n][:500]
    if numbers:
        parcels = [get_parcel(n) for n in numbers]
    else:
        start = datetime.combine(datetime.now(BAGHDAD).date(), time(0), tzinfo=BAGHDAD)
        parcels = list(db.scalars(select(Parcel).where(
            Parcel.origin_office_id == _office_id(), Parcel.created_at >= start)
            .order_by(Parcel.id)))
    return _pdf(labels.render_labels(parcels, size), "labels.pdf")


@bp.get("/<number>/declaration.pdf")
@role_required(*COUNTER, Role.CUSTOMS_OFFICER)
def declaration(number: str) -> Response:
    p = get_parcel(number)
    if not p.international:
        abort(404)
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == p.id))
    form = labels.declaration_form(p, case)
    return _pdf(labels.render_declaration(p, form), f"{form}-{p.tracking_number}.pdf")


@bp.get("/<number>/duty-receipt.pdf")
@role_required(*COUNTER, Role.CUSTOMS_OFFICER)
def duty_receipt(number: str) -> Response:
    case = customs.case_for_number(number)
    if case.paid_at is None:
        abort(404)
    return _pdf(labels.render_duty_receipt(case), f"duty-{number}.pdf")


@bp.post("/<number>/handover")
@role_required(*COUNTER)
def handover(number: str) -> Any:
    """Hand the parcel to its addressee at this clerk's office; elsewhere a supervisor
    co-signs with their own login name and password (checked, counted and audited as a
    login attempt)."""
    form = forms.HandoverForm()
    if not form.validate_on_submit():
        flash(_("Write the name of who received the parcel and the number of their "
                "identity document."), "error")
        return redirect(url_for("tracking_bo.parcel", number=number))
    office_id = _office_id()
    refusal: str | None = None
    try:
        with unit_of_work():
            approver_id = None
            if (form.supervisor_login.data or "").strip():
                who = attempt_login(form.supervisor_login.data,
                                    form.supervisor_password.data or "",
                                    client_address=request.remote_addr)
                if isinstance(who, InvalidCredentials):
                    # Not raised: the failed attempt's audit record is committed.
                    refusal = str(who.message)
                else:
                    approver_id = who.id
            if refusal is None:
                out = ev.hand_over(number=number, office_id=office_id,
                                   clerk_id=current_user.id,
                                   receiver_name=form.receiver_name.data or "",
                                   receiver_id_number=form.receiver_id_number.data or "",
                                   approver_id=approver_id)
                if out.outcome != "accepted":
                    refusal = out.reason or _("Not handed over.")
    except RateLimited as exc:
        refusal = str(exc.message)
    if refusal:
        flash(refusal, "error")
    else:
        flash(_("Handed over."), "success")
    return redirect(url_for("tracking_bo.parcel", number=number))


@bp.post("/<number>/duty")
@role_required(*COUNTER)
def pay_duty(number: str) -> Any:
    form = forms.DutyPaymentForm()
    case = customs.case_for_number(number)
    if form.validate_on_submit():
        with unit_of_work():
            if form.method.data == "post_card":
                customs.pay_duty_with_post_card(
                    case.id, card_number=form.card_number.data or "",
                    pin=form.card_pin.data or "", actor_id=current_user.id,
                    at_counter=True)
            else:
                customs.pay_duty_in_cash(case.id, clerk_id=current_user.id,
                                         office_id=_office_id())
        flash(_("Duty paid."), "success")
    return redirect(url_for("tracking_bo.parcel", number=number))


# ---- scanning ---------------------------------------------------------------------------


def _scan_setup_form() -> forms.ScanSetupForm:
    form = forms.ScanSetupForm(meta={"csrf": False})
    locale = current_locale()
    codes = event_codes()
    form.code.choices = [(c, f"{c} · {codes[c].meaning(locale)}") for c in SCAN_CODES]
    return form


@bp.get("/scan")
@role_required(*COUNTER)
def scan() -> str:
    return render_template("tracking/scan.html", form=_scan_setup_form(),
                           office=current_user.post_office, locale=current_locale())


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value else None


@bp.post("/scan")
@role_required(*COUNTER)
def scan_one() -> Response:
    """One scan from the scanning page (JSON in, JSON out: accepted, duplicate or
    rejected with the reason, for the page to show at once)."""
    data = request.get_json(silent=True) or {}
    number = str(data.get("number", ""))[:60]
    code = str(data.get("code", ""))[:3]
    if code not in SCAN_CODES:
        return jsonify({"outcome": "rejected", "tracking_number": number, "code": code,
                        "reason_code": "unknown_code", "reason": str(ev.REASONS["unknown_code"])
                        }), 200
    # The scan happens at the clerk's own office; an office_id in the request, forged
    # or left over from an older page, is ignored.
    office_id = current_user.post_office_id
    with unit_of_work():
        out = ev.record_scan(
            number=number, code=code, office_id=office_id, actor_id=current_user.id,
            reason_code=_text(data.get("reason_code"), 32),
            action_code=_text(data.get("action_code"), 32),
            receiver_name=_text(data.get("receiver_name"), 200),
            receiver_id_number=_text(data.get("receiver_id_number"), 40),
        )
    body = out.as_dict()
    body["status_text"] = status_text(out.status) if out.status else None
    return jsonify(body)


# ---- bulk ingest ------------------------------------------------------------------------


@bp.route("/ingest", methods=["GET", "POST"])
@role_required(*COUNTER)
def ingest() -> Any:
    form = forms.UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        rows = bulk.parse_csv(upload.read())
        with unit_of_work():
            batch = bulk.submit_batch(rows, source="csv", submitted_by_id=current_user.id,
                                      filename=upload.filename or "")
        return redirect(url_for("tracking_bo.batch", batch_id=batch.id))
    return render_template("tracking/ingest.html", form=form,
                           columns=bulk.REQUIRED_COLUMNS + bulk.OPTIONAL_COLUMNS)


@bp.get("/ingest/<int:batch_id>")
@role_required(*COUNTER)
def batch(batch_id: int) -> str:
    b = bulk.get_batch(batch_id)
    rows = bulk.batch_rows(b.id) if b.state == "done" else []
    return render_template("tracking/batch.html", batch=b, rows=rows)


# ---- supervision ------------------------------------------------------------------------


@bp.get("/delayed")
@role_required(*SUPERVISION)
def delayed() -> str:
    office = office_filter(current_user, request.args.get("office"))
    return render_template("tracking/delayed.html",
                           parcels=delivery.delayed_parcels(office_id=office))


@bp.get("/")
@role_required(*SUPERVISION)
def parcels() -> str:
    """The parcels behind the dashboard's figures: by status, accepted or delivered on a
    day, at an office (a supervisor's own; an admin's choice)."""
    office = office_filter(current_user, request.args.get("office"), own_by_default=True)
    status = (request.args.get("status") or "").strip()[:24] or None
    accepted = day_filter(request.args.get("accepted"))
    delivered = day_filter(request.args.get("delivered"))
    found = figures.list_parcels(status=status, office_id=office, accepted=accepted,
                                 delivered=delivered)
    return render_template("tracking/parcels.html", parcels=found, status=status,
                           accepted=accepted, delivered=delivered,
                           office=db.get(PostOffice, office) if office else None,
                           limit=figures.MAX_LIST)


# ---- customs ----------------------------------------------------------------------------


@customs_bp.get("/")
@role_required(*CUSTOMS)
def queue() -> str:
    office = office_filter(current_user, request.args.get("office"))
    return render_template("tracking/customs_queue.html",
                           cases=customs.held_cases(office_id=office))


@customs_bp.get("/<int:case_id>")
@role_required(*CUSTOMS)
def case(case_id: int) -> str:
    c = db.get(CustomsCase, case_id)
    if c is None:
        abort(404)
    return render_template("tracking/customs_case.html", case=c,
                           revalue=forms.RevalueForm(), reclassify=forms.ReclassifyForm(),
                           decision=forms.DecisionForm(),
                           hold_text=customs.hold_reason_text)


@customs_bp.post("/<int:case_id>/revalue")
@role_required(*CUSTOMS)
def revalue(case_id: int) -> Any:
    form = forms.RevalueForm()
    if form.validate_on_submit():
        with unit_of_work():
            customs.revalue(case_id, int(form.article_id.data or 0),
                            value_amount=_amount(form.value.data, form.currency.data),
                            value_currency=form.currency.data, officer_id=current_user.id,
                            note=form.note.data or "")
        flash(_("Value changed; duty recomputed."), "success")
    return redirect(url_for("customs_bo.case", case_id=case_id))


@customs_bp.post("/<int:case_id>/reclassify")
@role_required(*CUSTOMS)
def reclassify(case_id: int) -> Any:
    form = forms.ReclassifyForm()
    if form.validate_on_submit():
        with unit_of_work():
            customs.reclassify(case_id, int(form.article_id.data or 0),
                               hs_code=form.hs_code.data, officer_id=current_user.id,
                               note=form.note.data or "")
        flash(_("Tariff number changed; duty recomputed."), "success")
    return redirect(url_for("customs_bo.case", case_id=case_id))


@customs_bp.post("/<int:case_id>/decide")
@role_required(*CUSTOMS)
def decide(case_id: int) -> Any:
    form = forms.DecisionForm()
    if form.validate_on_submit():
        refusing = bool(form.refuse.data)
        with unit_of_work():
            if refusing:
                customs.refuse(case_id, officer_id=current_user.id,
                               outcome=form.outcome.data, note=form.note.data or "")
            else:
                customs.release(case_id, officer_id=current_user.id,
                                note=form.note.data or "")
        flash(_("Import refused.") if refusing else _("Released."), "success")
    return redirect(url_for("customs_bo.queue"))


@customs_bp.route("/tariff", methods=["GET", "POST"])
@role_required(Role.ADMIN, Role.SUPERVISOR)
def tariff() -> Any:
    form = forms.UploadForm()
    result = None
    if form.validate_on_submit():
        with unit_of_work():
            result = customs.import_tariff(form.file.data.read(), actor_id=current_user.id)
        if not result.errors:
            flash(_("%(created)s lines added, %(updated)s changed.", created=result.created,
                    updated=result.updated), "success")
            return redirect(url_for("customs_bo.tariff"))
    lines = db.scalars(select(TariffLine).order_by(TariffLine.hs_prefix)).all()
    return render_template("tracking/tariff.html", form=form, result=result, lines=lines,
                           columns=customs.TARIFF_COLUMNS)


# The shell translates navigation labels when it shows them; listed for the extractor.
_NAV_WORDS = (_l("Accept a parcel"), _l("Scan parcels"), _l("Upload events"),
              _l("Delayed parcels"), _l("Customs queue"), _l("Customs tariff"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(customs_bp)
    nav_item("tracking_bo.accept", "Accept a parcel", COUNTER, section="counter", order=10)
    nav_item("tracking_bo.scan", "Scan parcels", COUNTER, section="parcels", order=10)
    nav_item("tracking_bo.ingest", "Upload events", COUNTER, section="parcels", order=20)
    nav_item("tracking_bo.delayed", "Delayed parcels", SUPERVISION, section="parcels",
             order=30)
    nav_item("customs_bo.queue", "Customs queue", CUSTOMS, section="customs", order=10)
    nav_item("customs_bo.tariff", "Customs tariff", (Role.ADMIN, Role.SUPERVISOR),
             section="customs", order=20)
