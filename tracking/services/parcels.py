"""Parcels coming into the network: at the counter, pre-advised by a shop, or from abroad."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit import record_audit
from app.auth.identifiers import BAD_ANY_PHONE, parse_phone
from app.auth.models import PostOffice
from app.database import db
from app.errors import NotFound, ValidationFailed
from app.geo import governorate
from app.numbers import ascii_digits
from payments import services as pay
from tracking import s10
from tracking.models import (
    SERVICE_INDICATORS,
    ContentsCategory,
    Direction,
    Parcel,
    ParcelArticle,
    Service,
)
from tracking.services.events import EventReport, ingest_for_parcel

# Postage by service: (IQD up to the first band, grams in the first band, IQD for each
# further step, grams in a step). A simple public tariff; the counter shows the result.
POSTAGE_TARIFF: dict[Service, tuple[int, int, int, int]] = {
    Service.PARCEL: (5000, 1000, 1000, 500),
    Service.EMS: (10000, 500, 2000, 500),
    Service.REGISTERED: (3000, 500, 1000, 500),
    Service.ECOMMERCE: (4000, 1000, 750, 500),
}
REGISTERED_MAX_GRAMS = 2000
# Couriers charge the larger of the real weight and the volume weight (cm3 / 5000 = kg).
VOLUMETRIC_DIVISOR = 5000
_HS = re.compile(r"^[0-9]{6,10}$")


@dataclass
class Address:
    name: str
    phone: str = ""
    governorate: str | None = None
    district: str = ""
    landmark: str = ""
    address: str = ""
    country: str = "IQ"
    email: str | None = None


@dataclass
class Article:
    description: str
    quantity: int = 1
    net_weight_grams: int = 0
    value_amount: int = 0
    value_currency: str = "IQD"
    hs_code: str | None = None
    origin_country: str | None = None


@dataclass
class ParcelDraft:
    sender: Address
    recipient: Address
    weight_grams: int
    service: str = Service.PARCEL
    direction: str = Direction.DOMESTIC
    length_cm: int = 0
    width_cm: int = 0
    height_cm: int = 0
    articles: list[Article] = field(default_factory=list)
    customs_category: str | None = None
    pickup_office_id: int | None = None
    order_ref: str | None = None
    invoice_number: str = ""
    importer_reference: str = ""


def chargeable_grams(weight_grams: int, length_cm: int, width_cm: int, height_cm: int) -> int:
    volume = length_cm * width_cm * height_cm
    return max(weight_grams, (volume * 1000) // VOLUMETRIC_DIVISOR)


def postage_for(service: str, weight_grams: int, length_cm: int = 0, width_cm: int = 0,
                height_cm: int = 0) -> int:
    """Postage in IQD for a parcel of this service, weight and size."""
    base, first, step, step_grams = POSTAGE_TARIFF[Service(service)]
    grams = chargeable_grams(weight_grams, length_cm, width_cm, height_cm)
    if grams <= first:
        return base
    steps = int((Decimal(grams - first) / step_grams).to_integral_value(ROUND_CEILING))
    return base + steps * step


def _phone(addr: Address) -> str:
    """The address's phone in E.164 ("" when none was given or it is not a valid number;
    validate_draft has said so by then). A number without its country code is read as
    one of the address's country, else as an Iraqi one (people abroad keep Iraqi
    mobiles)."""
    return (parse_phone(addr.phone, iraqi_mobile=False, region=addr.country or "IQ")
            or parse_phone(addr.phone, iraqi_mobile=False) or "")


def validate_draft(draft: ParcelDraft) -> dict[str, Any]:
    """Field errors of a draft (empty when it is acceptable)."""
    errors: dict[str, Any] = {}
    max_grams = int(current_app.config["MAX_PARCEL_WEIGHT_GRAMS"])
    try:
        service = Service(draft.service)
    except ValueError:
        errors["service"] = _l("Choose a service.")
        service = None
    if draft.direction not in tuple(Direction):
        errors["direction"] = _l("Choose domestic or international.")
    if not isinstance(draft.weight_grams, int) or draft.weight_grams <= 0:
        errors["weight_grams"] = _l("Weigh the parcel: the weight must be more than zero.")
    elif draft.weight_grams > max_grams:
        errors["weight_grams"] = _l("This parcel is heavier than the %(kg)s kg limit.",
                                    kg=max_grams // 1000)
    elif service == Service.REGISTERED and draft.weight_grams > REGISTERED_MAX_GRAMS:
        errors["weight_grams"] = _l("Registered items weigh at most 2 kg; send it as a "
                                    "parcel.")
    for dim in ("length_cm", "width_cm", "height_cm"):
        value = getattr(draft, dim)
        if not isinstance(value, int) or value < 0 or value > 300:
            errors[dim] = _l("Enter a size between 0 and 300 cm.")
    for side in ("sender", "recipient"):
        addr: Address = getattr(draft, side)
        if not (addr.name or "").strip():
            errors[f"{side}_name"] = _l("Enter a name.")
        typed = ascii_digits(addr.phone or "").strip()
        phone = _phone(addr)
        if typed and not phone:
            errors[f"{side}_phone"] = BAD_ANY_PHONE
        if addr.country == "IQ":
            if not addr.governorate or governorate(addr.governorate) is None:
                errors[f"{side}_governorate"] = _l("Choose a governorate.")
            if side == "recipient" and not phone:
                errors["recipient_phone"] = _l("The recipient's phone is needed to deliver.")
    if draft.direction != Direction.DOMESTIC:
        if not draft.articles:
            errors["articles"] = _l("An international parcel needs its contents declared.")
        if draft.customs_category and draft.customs_category not in tuple(ContentsCategory):
            errors["customs_category"] = _l("Choose what kind of contents these are.")
    for i, art in enumerate(draft.articles):
        prefix = f"articles.{i}"
        if not (art.description or "").strip():
            errors[f"{prefix}.description"] = _l("Describe the article.")
        if not isinstance(art.quantity, int) or art.quantity <= 0:
            errors[f"{prefix}.quantity"] = _l("The quantity must be at least 1.")
        if draft.direction != Direction.DOMESTIC:
            if not art.hs_code or not _HS.match(art.hs_code):
                errors[f"{prefix}.hs_code"] = _l("Enter the 6-digit HS tariff number.")
            if not isinstance(art.value_amount, int) or art.value_amount <= 0:
                errors[f"{prefix}.value_amount"] = _l("Enter the article's value.")
    return errors


def _new_parcel(draft: ParcelDraft, number: str) -> Parcel:
    s, r = draft.sender, draft.recipient
    parcel = Parcel(
        tracking_number=number, service=str(draft.service), direction=str(draft.direction),
        sender_name=s.name.strip(), sender_phone=_phone(s), sender_email=s.email,
        sender_country=s.country, sender_governorate=s.governorate,
        sender_district=s.district.strip(), sender_landmark=s.landmark.strip(),
        sender_address=s.address.strip(),
        recipient_name=r.name.strip(), recipient_phone=_phone(r),
        recipient_email=r.email, recipient_country=r.country,
        recipient_governorate=r.governorate, recipient_district=r.district.strip(),
        recipient_landmark=r.landmark.strip(), recipient_address=r.address.strip(),
        weight_grams=draft.weight_grams, length_cm=draft.length_cm, width_cm=draft.width_cm,
        height_cm=draft.height_cm, pickup_office_id=draft.pickup_office_id,
        order_ref=draft.order_ref, customs_category=draft.customs_category,
        invoice_number=draft.invoice_number, importer_reference=draft.importer_reference,
    )
    for i, a in enumerate(draft.articles, start=1):
        parcel.articles.append(ParcelArticle(
            position=i, description=a.description.strip(), quantity=a.quantity,
            net_weight_grams=a.net_weight_grams, value_amount=a.value_amount,
            value_currency=a.value_currency, hs_code=a.hs_code,
            origin_country=a.origin_country,
        ))
    return parcel


@dataclass
class PaymentChoice:
    method: str  # cash, post_card
    card_number: str | None = None
    pin: str | None = None


def take_postage(parcel: Parcel, choice: PaymentChoice, *, office_id: int,
                 clerk_id: int) -> str:
    """The one place acceptance asks payments for money; returns the payment id. Flushes
    (payments flushes); raises payments' DomainErrors (card refused, PIN wrong, ...)."""
    common = dict(amount=parcel.postage_amount, currency=parcel.postage_currency,
                  reference_kind="postage", reference_id=str(parcel.id), purpose="postage",
                  idempotency_key=f"postage:{parcel.tracking_number}")
    if choice.method == "cash":
        payment = pay.receive_cash(office_id=office_id, clerk_id=clerk_id, **common)
    elif choice.method == "post_card":
        # At the counter: the clerk sees the holder, so no one-time code is asked.
        payment = pay.pay_with_post_card(card_number=choice.card_number or "",
                                         pin=choice.pin or "", actor_id=clerk_id,
                                         at_counter=True, **common)
    else:
        raise ValidationFailed(_l("Choose how the postage is paid."),
                               fields={"payment_method": _l("Choose cash or post card.")})
    return str(payment.id)


def accept_at_counter(draft: ParcelDraft, *, clerk_id: int, office_id: int,
                      payment: PaymentChoice, acceptance_key: str | None = None,
                      accepted_at: datetime | None = None) -> Parcel:
    """A clerk accepts a parcel: number it, price it, take the postage, record EMA.

    Creates the parcel with a new S10 number, the postage payment (through payments) and
    its acceptance event at the clerk's office, and flushes; the caller's unit of work
    commits it all or, when anything raises, none of it. Submitting the same
    `acceptance_key` again returns the first parcel. Raises ValidationFailed for a bad
    draft, NotFound for an unknown office, and payments' errors when payment fails.
    """
    if acceptance_key:
        done = db.scalar(select(Parcel).where(Parcel.acceptance_key == acceptance_key))
        if done is not None:
            return done
    errors = validate_draft(draft)
    if errors:
        raise ValidationFailed(_l("Please correct the marked fields."), fields=errors)
    office = db.get(PostOffice, office_id)
    if office is None:
        raise NotFound(_l("Unknown post office."))
    number = s10.next_identifier(SERVICE_INDICATORS[Service(draft.service)])
    parcel = _new_parcel(draft, number)
    parcel.origin_office_id = office.id
    parcel.accepted_by_id = clerk_id
    parcel.acceptance_key = acceptance_key
    parcel.postage_amount = postage_for(draft.service, draft.weight_grams, draft.length_cm,
                                        draft.width_cm, draft.height_cm)
    db.add(parcel)
    db.flush()
    parcel.payment_id = take_postage(parcel, payment, office_id=office.id, clerk_id=clerk_id)
    parcel.payment_method = payment.method
    out = ingest_for_parcel(parcel, EventReport(
        code="EMA", occurred_at=accepted_at, office_id=office.id, actor_id=clerk_id,
        source="counter",
    ))
    if not out.ok:  # cannot happen for a new parcel; refuse rather than half-accept
        raise ValidationFailed(out.reason)
    record_audit("parcel.accepted", object_type="parcel", object_id=number, actor_id=clerk_id,
                 details={"office_id": office.id, "postage": parcel.postage_amount,
                          "payment_id": parcel.payment_id})
    return parcel


def preadvise(draft: ParcelDraft, *, order_ref: str | None = None) -> Parcel:
    """A shop or merchant announces a parcel before handing it in: it gets its number and
    label now and status `pending` until a counter scans its acceptance (EMA).

    Flushes, so the caller's unit of work (e.g. the shop's checkout) commits the parcel
    with the rest of its use case. Raises ValidationFailed for a bad draft.
    """
    errors = validate_draft(draft)
    if errors:
        raise ValidationFailed(_l("Please correct the marked fields."), fields=errors)
    number = s10.next_identifier(SERVICE_INDICATORS[Service(draft.service)])
    parcel = _new_parcel(draft, number)
    parcel.order_ref = order_ref or draft.order_ref
    parcel.postage_amount = postage_for(draft.service, draft.weight_grams, draft.length_cm,
                                        draft.width_cm, draft.height_cm)
    db.add(parcel)
    db.flush()
    return parcel


def register_inbound(number: str, draft: ParcelDraft, *, order_ref: str | None = None) -> Parcel:
    """Record an international parcel coming to Iraq under its foreign S10 number (from the
    origin post's ITMATT data or a "buy for me" purchase). Idempotent on the number.

    Flushes; the caller's unit of work commits. Raises ValidationFailed for an invalid
    number or declaration.
    """
    validity = s10.validate(number)
    if not validity:
        raise ValidationFailed(validity.reason, fields={"tracking_number": validity.reason})
    existing = db.scalar(select(Parcel).where(Parcel.tracking_number == validity.number))
    if existing is not None:
        return existing
    draft.direction = Direction.INBOUND
    errors = validate_draft(draft)
    if errors:
        raise ValidationFailed(_l("Please correct the marked fields."), fields=errors)
    parcel = _new_parcel(draft, validity.number)
    parcel.order_ref = order_ref or draft.order_ref
    db.add(parcel)
    db.flush()
    return parcel


def get_parcel(number: str) -> Parcel:
    """The parcel with this number; raises ValidationFailed (invalid) or NotFound."""
    validity = s10.validate(number)
    if not validity:
        raise ValidationFailed(validity.reason, code=validity.reason_code)
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == validity.number))
    if parcel is None:
        raise NotFound(_l("No parcel has this number."))
    return parcel
