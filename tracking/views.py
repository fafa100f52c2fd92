"""Public tracking: the page anyone opens from the QR code, and its JSON twin."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

from app import ratelimit
from app.api.platform import document_route
from app.barcodes import barcode_url
from app.database import unit_of_work
from app.errors import DomainError, RateLimited
from app.i18n import current_locale
from payments.cards import cards_of
from payments.errors import OneTimeCodeSent, WrongOneTimeCode
from payments.gateway import card_payments_enabled
from tracking import s10
from tracking.forms import OnlineDutyForm
from tracking.labels import PARCEL_BARCODE, render_duty_receipt
from tracking.models import CustomsCase, CustomsState
from tracking.services import customs
from tracking.services.lookup import find_public, public_view, status_text

bp = Blueprint("tracking", __name__, static_folder="static",
               static_url_path="/static/tracking")


def _client() -> str:
    return request.remote_addr or "unknown"


def check_lookup(client: str) -> None:
    """Count one public lookup by `client`; raises RateLimited past
    TRACKING_LOOKUPS_PER_MINUTE in a minute (0 turns the limit off). Counted by
    app.ratelimit (Redis, or memory), outside the database: a GET writes nothing."""
    limit = int(current_app.config["TRACKING_LOOKUPS_PER_MINUTE"])
    if limit <= 0:
        return
    allowance = ratelimit.hit(ratelimit.Rule("track", limit, 60), client[:60])
    if not allowance.allowed:
        raise RateLimited(_l("Too many lookups from your connection. Please wait a minute "
                             "and try again."), retry_after=allowance.reset)


@bp.get("/track")
def track() -> Response | tuple[str, int] | str:
    """The form's target: tidy what was typed and go to the parcel's own page."""
    raw = request.args.get("number", "")
    if not raw.strip():
        return render_template("tracking/track.html", record=None, error=None, typed="")
    validity = s10.validate(raw)
    if not validity:
        return render_template("tracking/track.html", record=None, error=validity.reason,
                               typed=raw[:40]), 400
    return redirect(url_for("tracking.track_number", number=validity.number), code=303)


@bp.get("/track/<number>")
def track_number(number: str) -> Response | tuple[str, int] | str:
    validity = s10.validate(number)
    if not validity:
        return render_template("tracking/track.html", record=None, error=validity.reason,
                               typed=number[:40]), 400
    if validity.number != number:
        return redirect(url_for("tracking.track_number", number=validity.number), code=301)
    check_lookup(_client())
    parcel = find_public(validity.number)
    if parcel is None:
        return render_template(
            "tracking/track.html", record=None, typed=validity.number,
            error=_l("We have no parcel with this number yet. If it was sent recently, "
                     "try again later."), not_found=True), 404
    record = public_view(parcel, current_locale())
    receipt = _duty_receipt_case(parcel.tracking_number) if parcel.customs_paid_at else None
    # The parcel's own QR: the same signed reference as its label, so a clerk's scanner
    # opens the parcel while anyone else who scans it lands back on this public page.
    return render_template("tracking/track.html", record=record, error=None,
                           typed=validity.number, duty_receipt=receipt is not None,
                           qr_url=barcode_url(PARCEL_BARCODE, parcel.tracking_number))


# The session key listing the customs cases this browser paid: their duty receipts are
# its to download, signed in or not.
PAID_HERE = "duty_paid_here"


def _duty_receipt_case(number: str) -> CustomsCase | None:
    user_id = current_user.id if current_user.is_authenticated else None
    return customs.duty_receipt_for(number, user_id=user_id,
                                    paid_here=tuple(session.get(PAID_HERE, ())))


def duty_return_page(reference_id: str) -> str | None:
    """Payments' return page for a duty payment: the parcel's tracking page."""
    described = customs.duty_described(reference_id)
    return (url_for("tracking.track_number", number=described.number)
            if described else None)


@bp.get("/track/<number>/duty-receipt.pdf")
def duty_receipt(number: str) -> Response:
    """The customs duty receipt, for whoever paid it (404 for anyone else)."""
    validity = s10.validate(number)
    if not validity:
        abort(404)
    case = _duty_receipt_case(validity.number)
    if case is None:
        abort(404)
    return Response(render_duty_receipt(case), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="duty-{validity.number}.pdf"',
        "Cache-Control": "no-store"})


@bp.get("/track/<number>/show")
def track_show(number: str) -> Response | tuple[str, int] | str:
    """The parcel's QR code full screen, to show at the counter: it opens the parcel
    there; anyone else who scans it sees only this public tracking page."""
    validity = s10.validate(number)
    if not validity:
        return render_template("tracking/track.html", record=None, error=validity.reason,
                               typed=number[:40]), 400
    check_lookup(_client())
    parcel = find_public(validity.number)
    if parcel is None:
        abort(404)
    return render_template("web/show_qr.html",
                           url=barcode_url(PARCEL_BARCODE, parcel.tracking_number),
                           number=parcel.tracking_number, heading=_l("Parcel"),
                           back=url_for("tracking.track_number",
                                        number=parcel.tracking_number))


@bp.route("/track/<number>/duty", methods=["GET", "POST"])
def pay_duty(number: str) -> Response | str | tuple[str, int]:
    """Anyone holding the number may pay its customs duty with a post card here (paying
    someone else's duty harms no one; the card's PIN and the one-time code payments sends
    to its holder protect the card), or with a bank card on payments' page for the case,
    after signing in."""
    check_lookup(_client())
    case = customs.case_for_number(number)
    form = OnlineDutyForm()
    code_step: DomainError | None = None
    status = 200
    if form.validate_on_submit():
        actor = current_user.id if current_user.is_authenticated else None
        # A refused payment (wrong PIN, no balance) raises out of the block: nothing of
        # the use case is kept, and the error handler shows why. A card that is not the
        # signed-in person's own needs the code payments sends to its holder: the form
        # comes back asking for it (or saying the code was wrong).
        try:
            with unit_of_work():
                customs.pay_duty_with_post_card(
                    case.id, card_number=form.card_number.data, pin=form.card_pin.data,
                    actor_id=actor, one_time_code=form.one_time_code.data or "")
        except (OneTimeCodeSent, WrongOneTimeCode) as exc:
            code_step, status = exc, exc.http_status
            form.one_time_code.data = ""
        else:
            # This browser paid: its receipt is offered on the tracking page.
            session[PAID_HERE] = [*session.get(PAID_HERE, ())[-19:], case.id]
            flash(_l("Duty paid. The parcel can now be handed over. Your receipt is on "
                     "this page."), "success")
            return redirect(url_for("tracking.track_number",
                                    number=case.parcel.tracking_number))
    if (request.method == "GET" and current_user.is_authenticated
            and not form.card_number.data):
        # A holder pays with their own card unless they type another.
        own = cards_of(current_user.id)
        if own:
            form.card_number.data = own[0].grouped
    return render_template("tracking/pay_duty.html", case=case, form=form,
                           code_step=code_step, number=case.parcel.tracking_number,
                           card_payments=card_payments_enabled(),
                           bank_card_url=url_for("payments.pay_for",
                                                 kind=customs.DUTY_REFERENCE_KIND,
                                                 reference_id=str(case.id))), status


api = Blueprint("tracking_api", __name__, url_prefix="/api/v1/tracking")


class LookupQuery(Schema):
    lang = fields.String(validate=validate.OneOf(["ar", "en"]), metadata={
        "description": "Language of the texts (default: Accept-Language, else Arabic)."})


class PublicEventSchema(Schema):
    """One scan of the parcel, as the public sees it."""

    code = fields.String(required=True, metadata={"description": "UPU event code",
                                                  "example": "EMC"})
    status = fields.String(required=True)
    description = fields.String(required=True)
    office_city = fields.String(required=True, allow_none=True)
    time = fields.AwareDateTime(required=True)
    local_time = fields.String(required=True, metadata={
        "description": "the same time in Baghdad, YYYY-MM-DD HH:MM"})


class PublicCustomsSchema(Schema):
    state = fields.String(required=True, validate=validate.OneOf(
        [s.value for s in CustomsState]))
    duty_due_iqd = fields.Integer(required=True, allow_none=True, metadata={
        "description": "whole dinars, once customs released the parcel"})
    paid = fields.Boolean(required=True)


class PublicTrackingSchema(Schema):
    """The public tracking record of a parcel: no personal data, events newest first."""

    tracking_number = fields.String(required=True, metadata={"example": "EE123456785IQ"})
    status = fields.String(required=True)
    status_text = fields.String(required=True)
    closed = fields.Boolean(required=True)
    international = fields.Boolean(required=True)
    events = fields.List(fields.Nested(PublicEventSchema), required=True)
    next_step = fields.String(required=True, metadata={
        "description": "what is expected to happen next, in words; empty once closed"})
    customs = fields.Nested(PublicCustomsSchema, metadata={
        "description": "international parcels with a customs case only"})


document_route(
    "GET", "/api/v1/tracking/<number>", endpoint="tracking_api.api_lookup",
    summary="Track a parcel", tag="Public tracking", query=LookupQuery,
    response=PublicTrackingSchema,
    errors={400: "Not a valid S10 tracking number; `reason` says why (length, country, "
                 "check digit).",
            404: "No parcel has this number.",
            429: "Too many lookups from this client address; see Retry-After."},
    description="Public, without a key, and rate-limited per client address.")


@api.get("/<number>")
def api_lookup(number: str) -> Response | tuple[Response, int]:
    """JSON: tracking number, normalized status, events (code, status, description, office
    city, time). 400 with the reason for an invalid number, 404 for an unknown one."""
    lang = request.args.get("lang")
    locale = lang if lang in ("ar", "en") else current_locale()
    with force_locale(locale):
        validity = s10.validate(number)
        if not validity:
            return jsonify({"error": "invalid_tracking_number",
                            "reason": validity.reason_code,
                            "message": str(validity.reason), "fields": {}}), 400
        check_lookup(_client())
        parcel = find_public(validity.number)
        if parcel is None:
            return jsonify({"error": "not_found", "tracking_number": validity.number,
                            "message": str(_l("No parcel has this number.")),
                            "fields": {}}), 404
        # A client (or a cache) that has this version is told so without the events
        # query; a new event changes the version, and max-age keeps it seconds stale.
        etag = parcel.version(locale)
        if request.if_none_match.contains(etag):
            res = Response(status=304)
        else:
            res = jsonify(public_view(parcel, locale))
        res.set_etag(etag)
        res.cache_control.public = True
        res.cache_control.max_age = int(current_app.config["TRACKING_CACHE_SECONDS"])
        res.vary.update(("Accept-Language", "Cookie"))
        return res


@bp.app_context_processor
def _tracking_context() -> dict:
    return {"status_text": status_text}
