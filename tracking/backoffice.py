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
from app.backoffice import figures_page, nav_item
from app.dashboard import day_filter, office_filter
from app.database import db, unit_of_work
from app.errors import DomainError, Forbidden, RateLimited, ValidationFailed
from app.i18n import BAGHDAD, current_locale
from app.listing import Filter, Listing
from app.money import MoneyError, to_minor
from app.overrides import EditableField, editable_group
from tracking import forms, labels
from tracking.models import CustomsCase, CustomsState, Parcel, ParcelEvent, Service, TariffLine
from tracking.services import bulk, customs, figures, postage, tariff
from tracking.services import events as ev
from tracking.services.lookup import STATUS_TEXT, status_text
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


def _parcel_numbered(stmt: Any, number: str) -> Any:
    return stmt.where(Parcel.tracking_number.contains(number.upper().replace(" ", ""),
                                                      autoescape=True))


def _parcel_office(stmt: Any, office_id: str) -> Any:
    """Parcels whose latest event was at the office (as the dashboard counts them)."""
    return stmt.where(figures.whereabouts() == int(office_id))


def _case_office(stmt: Any, office_id: str) -> Any:
    return stmt.where(CustomsCase.parcel_id.in_(
        select(Parcel.id).where(figures.whereabouts() == int(office_id))))


def _office_choices() -> list[tuple[str, str]]:
    """Offices to narrow a list to: any for an admin, else one's own (app.dashboard's
    office_filter answers 403 for another, before the list reads it)."""
    loc = current_locale()
    stmt = select(PostOffice).order_by(PostOffice.code)
    if not current_user.has_role(Role.ADMIN):
        stmt = stmt.where(PostOffice.id == (current_user.post_office_id or 0))
    return [(str(o.id), f"{o.code} — {o.name(loc)}") for o in db.scalars(stmt)]


# Flagged by the sweep and silent since: the longest silence first.
DELAYED_LIST = Listing(
    "delayed_parcels", order=(Parcel.last_activity_at, Parcel.id), newest_first=False,
    filters=(
        Filter("number", _l("Tracking number"), apply=_parcel_numbered, dir="ltr"),
        Filter("status", _l("Status"), "choice", column=Parcel.status,
               choices=lambda: [(k, status_text(k)) for k in STATUS_TEXT if k != "unknown"]),
        Filter("office", _l("Post office"), "choice", apply=_parcel_office,
               choices=_office_choices),
        Filter("since", _l("Silent since (day)"), "date_from", column=Parcel.last_activity_at),
        Filter("until", _l("Silent until (day)"), "date_to", column=Parcel.last_activity_at),
    ))


def _delayed() -> Any:
    return select(Parcel).where(Parcel.closed.is_(False), Parcel.delayed_at.is_not(None))


@bp.get("/delayed")
@role_required(*SUPERVISION)
def delayed() -> str:
    office_filter(current_user, request.args.get("office"))  # another office: 403
    page = DELAYED_LIST.page(_delayed(), DELAYED_LIST.parse(request.args), request.args)
    return render_template("tracking/delayed.html", parcels=page.rows, page=page)


@bp.get("/delayed.csv")
@role_required(*SUPERVISION)
def delayed_csv() -> Response:
    """Every delayed parcel the filters keep, as CSV."""
    office_filter(current_user, request.args.get("office"))
    columns = [
        (_("Tracking number"), lambda p: p.tracking_number),
        (_("Status"), lambda p: status_text(p.status)),
        (_("Last event (UTC)"), lambda p: p.last_event_at.isoformat(timespec="seconds")
            if p.last_event_at else ""),
        (_("Flagged late (UTC)"), lambda p: p.delayed_at.isoformat(timespec="seconds")
            if p.delayed_at else ""),
    ]
    return DELAYED_LIST.csv(_delayed(), DELAYED_LIST.parse(request.args), columns,
                            "delayed-parcels.csv")


# The parcels behind the dashboard's figures; its own arguments (status, office,
# accepted, delivered) narrow the query, app.listing pages it.
PARCEL_LIST = Listing("parcels", order=(Parcel.last_activity_at, Parcel.id))


def _figure_parcels() -> tuple[Any, dict[str, Any]]:
    office = office_filter(current_user, request.args.get("office"), own_by_default=True)
    status = (request.args.get("status") or "").strip()[:24] or None
    accepted = day_filter(request.args.get("accepted"))
    delivered = day_filter(request.args.get("delivered"))
    query = figures.parcels_query(status=status, office_id=office, accepted=accepted,
                                  delivered=delivered)
    shown = {"office": office, "status": status, "accepted": accepted,
             "delivered": delivered}
    return query, shown


@bp.get("/")
@role_required(*SUPERVISION)
def parcels() -> str:
    """The parcels behind the dashboard's figures: by status, accepted or delivered on a
    day, at an office (a supervisor's own; an admin's choice), a page at a time."""
    query, shown = _figure_parcels()
    page = PARCEL_LIST.page(query, {}, request.args)
    url_args = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in shown.items() if v is not None}
    office = shown["office"]
    return render_template("tracking/parcels.html", parcels=page.rows, page=page,
                           url_args=url_args, status=shown["status"],
                           accepted=shown["accepted"], delivered=shown["delivered"],
                           office=db.get(PostOffice, office) if office else None)


@bp.get("/parcels.csv")
@role_required(*SUPERVISION)
def parcels_csv() -> Response:
    """Every parcel behind the figure, as CSV."""
    query, _shown = _figure_parcels()
    columns = [
        (_("Tracking number"), lambda p: p.tracking_number),
        (_("Status"), lambda p: status_text(p.status)),
        (_("Last event (UTC)"), lambda p: p.last_event_at.isoformat(timespec="seconds")
            if p.last_event_at else ""),
    ]
    return PARCEL_LIST.csv(query, {}, columns, "parcels.csv")


# ---- customs ----------------------------------------------------------------------------


CUSTOMS_STATE_LABELS = {CustomsState.ASSESSING: _l("Being assessed"),
                        CustomsState.HELD: _l("Held for a decision"),
                        CustomsState.RELEASED: _l("Released"),
                        CustomsState.REFUSED: _l("Refused")}


def _case_of_parcel(stmt: Any, number: str) -> Any:
    return stmt.where(CustomsCase.parcel_id.in_(select(Parcel.id).where(
        Parcel.tracking_number.contains(number.upper().replace(" ", ""), autoescape=True))))


# The officers' queue: oldest first, as they are to be decided.
CUSTOMS_LIST = Listing(
    "customs_cases", order=(CustomsCase.created_at, CustomsCase.id), newest_first=False,
    filters=(
        Filter("state", _l("State"), "choice", column=CustomsCase.state,
               choices=lambda: [(str(s), CUSTOMS_STATE_LABELS[s]) for s in CustomsState]),
        Filter("number", _l("Tracking number"), apply=_case_of_parcel, dir="ltr"),
        Filter("office", _l("Post office"), "choice", apply=_case_office,
               choices=_office_choices),
        Filter("reason", _l("Why held"), "choice", column=CustomsCase.hold_reason_code,
               choices=lambda: [(k, v) for k, v in customs.HOLD_REASONS.items()]),
        Filter("since", _l("From (day)"), "date_from", column=CustomsCase.created_at),
        Filter("until", _l("To (day)"), "date_to", column=CustomsCase.created_at),
    ))


def _customs_args() -> dict[str, str]:
    """The query string with the queue's default: held parcels (an empty state is all)."""
    args = request.args.to_dict()
    args.setdefault("state", CustomsState.HELD)
    return args


@customs_bp.get("/")
@role_required(*CUSTOMS)
def queue() -> str:
    office_filter(current_user, request.args.get("office"))  # another office: 403
    args = _customs_args()
    page = CUSTOMS_LIST.page(select(CustomsCase), CUSTOMS_LIST.parse(args), args)
    return render_template("tracking/customs_queue.html", cases=page.rows, page=page,
                           state_labels=CUSTOMS_STATE_LABELS)


@customs_bp.get("/export.csv")
@role_required(*CUSTOMS)
def queue_csv() -> Response:
    """Every customs case the filters keep, as CSV."""
    office_filter(current_user, request.args.get("office"))
    args = _customs_args()

    def when(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value else ""

    columns = [
        (_("Tracking number"), lambda c: c.parcel.tracking_number),
        (_("Received (UTC)"), lambda c: when(c.created_at)),
        (_("State"), lambda c: str(CUSTOMS_STATE_LABELS.get(c.state, c.state))),
        (_("Form"), lambda c: c.form),
        (_("Declared value (IQD)"), lambda c: c.declared_value_iqd),
        (_("Duty (IQD)"), lambda c: c.duty_iqd),
        (_("Total due (IQD)"), lambda c: c.total_due_iqd),
        (_("Why held"), lambda c: customs.hold_reason_text(c.hold_reason_code)
            if c.hold_reason_code else (c.hold_reason or "")),
        (_("Decided (UTC)"), lambda c: when(c.decided_at)),
        (_("Decision note"), lambda c: c.decision_note),
        (_("Paid (UTC)"), lambda c: when(c.paid_at)),
    ]
    return CUSTOMS_LIST.csv(select(CustomsCase), CUSTOMS_LIST.parse(args), columns,
                            "customs-cases.csv")


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


# ---- customs tariff: upload, preview, apply -------------------------------------------


def _tariff_page(form: Any, preview: tariff.Preview | None = None, status: int = 200,
                 apply_error: Any = None) -> Any:
    lines = db.scalars(select(TariffLine).order_by(TariffLine.hs_prefix)).all()
    apply_form = forms.TariffApplyForm(formdata=None,
                                       token=preview.token if preview else None)
    return render_template("tracking/tariff.html", form=form, preview=preview, lines=lines,
                           columns=tariff.COLUMNS, apply_form=apply_form,
                           apply_error=apply_error,
                           rejections=tariff.rejection_messages(preview) if preview else []
                           ), status


@customs_bp.route("/tariff", methods=["GET", "POST"], endpoint="tariff")
@role_required(*SUPERVISION)
def tariff_page() -> Any:
    """The tariff, and a file's preview: what it adds and changes, and rows it rejects."""
    form = forms.UploadForm()
    if not form.validate_on_submit():
        return _tariff_page(form, status=422 if request.method == "POST" else 200)
    with unit_of_work():
        preview = tariff.preview_import(form.file.data.read(), actor_id=current_user.id)
    return _tariff_page(form, preview, status=200 if preview.acceptable else 422)


@customs_bp.post("/tariff/apply")
@role_required(*SUPERVISION)
def tariff_apply() -> Any:
    """Apply exactly the file previewed (its token), once; refused if the tariff moved."""
    form = forms.TariffApplyForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Upload the file again."), "error")
        return redirect(url_for("customs_bo.tariff"))
    try:
        with unit_of_work():
            done = tariff.apply_import(form.token.data, actor_id=current_user.id)
    except DomainError as exc:
        return _tariff_page(forms.UploadForm(formdata=None), status=exc.http_status,
                            apply_error=exc.message)
    flash(_("Tariff updated: %(added)s lines added, %(changed)s changed.",
            added=len(done.added), changed=len(done.changed)), "success")
    return redirect(url_for("customs_bo.tariff"))


# ---- customs fees (app.overrides) -------------------------------------------------------

CUSTOMS_FEES = "customs_fees"


@customs_bp.route("/fees", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def fees() -> Any:
    """Supervisors see the customs fees charged on each parcel; an administrator changes
    them (assessments from then on use the new figures)."""
    return figures_page(CUSTOMS_FEES, endpoint="customs_bo.fees", intro=_l(
        "Charged on every parcel customs assesses from now on; parcels already assessed "
        "keep their figures."))


# ---- postage bands ------------------------------------------------------------------

_SERVICES = "any(" + ",".join(str(s) for s in Service) + ")"
_ZONES = "any(" + ",".join((postage.ANY_ZONE, *postage.ZONES)) + ")"


@bp.get("/postage")
@role_required(*SUPERVISION)
def postage_tariff() -> Any:
    """Every service's postage, by zone: the bands in force and where they come from."""
    table = []
    for svc in Service:
        any_bands = postage.bands_of(svc, postage.ANY_ZONE)
        for zone in (postage.ANY_ZONE, *postage.ZONES):
            own = any_bands if zone == postage.ANY_ZONE else postage.bands_of(svc, zone)
            table.append({"service": str(svc), "zone": zone, "bands": own,
                          "built_in": zone == postage.ANY_ZONE and not own})
    return render_template("tracking/postage.html", table=table,
                           services=postage.SERVICE_LABELS, zones=postage.ZONE_LABELS)


@bp.route(f"/postage/<{_SERVICES}:service>/<{_ZONES}:zone>", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def postage_bands(service: str, zone: str) -> Any:
    """One service's bands in one zone; an administrator replaces them all at once."""
    form = forms.PostageBandsForm()
    can_edit = current_user.has_role(Role.ADMIN)
    problems: list[Any] = []
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise Forbidden(_l("Only an administrator changes postage."))
        if form.validate_on_submit():
            bands, line_errors = postage.parse_bands(form.bands.data or "")
            problems = list(line_errors.values())
            if not problems:
                try:
                    with unit_of_work():
                        postage.replace_bands(service, zone, bands,
                                              actor_id=current_user.id)
                except DomainError as exc:
                    problems = list((exc.fields or {}).get("bands") or [exc.message])
                else:
                    flash(_("Postage saved. The counter prices from it now."), "success")
                    return redirect(url_for("tracking_bo.postage_tariff"))
        status = 422
    elif not form.bands.data:
        current = postage.bands_of(service, zone)
        if not current and zone == postage.ANY_ZONE:
            current = postage.built_in_bands(service)
        form.bands.data = "\n".join(f"{b.from_grams} {b.to_grams} {b.price_iqd}"
                                     for b in current)
    return render_template("tracking/postage_bands.html", form=form, service=service,
                           zone=zone, problems=problems, can_edit=can_edit,
                           services=postage.SERVICE_LABELS, zones=postage.ZONE_LABELS,
                           any_zone=postage.ANY_ZONE), status


# The shell translates navigation labels when it shows them; listed for the extractor.
_NAV_WORDS = (_l("Accept a parcel"), _l("Scan parcels"), _l("Upload events"),
              _l("Delayed parcels"), _l("Customs queue"), _l("Customs tariff"),
              _l("Customs inspection and stamp fees"), _l("Postage"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(customs_bp)
    nav_item("tracking_bo.accept", "Accept a parcel", COUNTER, section="counter", order=10)
    nav_item("tracking_bo.scan", "Scan parcels", COUNTER, section="parcels", order=10)
    nav_item("tracking_bo.ingest", "Upload events", COUNTER, section="parcels", order=20)
    nav_item("tracking_bo.delayed", "Delayed parcels", SUPERVISION, section="parcels",
             order=30)
    nav_item("customs_bo.queue", "Customs queue", CUSTOMS, section="customs", order=10)
    nav_item("customs_bo.tariff", "Customs tariff", SUPERVISION, section="customs",
             order=20)
    nav_item("customs_bo.fees", "Customs inspection and stamp fees", SUPERVISION,
             section="customs", order=30)
    nav_item("tracking_bo.postage_tariff", "Postage", SUPERVISION, section="admin",
             order=50)
    editable_group(CUSTOMS_FEES, _l("Customs inspection and stamp fees"), (
        EditableField("CUSTOMS_INSPECTION_FEE_IQD", _l("Inspection fee per parcel"),
                      unit=_l("IQD")),
        EditableField("CUSTOMS_STAMP_FEE_IQD", _l("Stamp fee per parcel"), unit=_l("IQD")),
    ))
