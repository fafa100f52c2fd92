"""What tracking tells a parcel's recipient: out for delivery, ready for pickup, a failed
delivery attempt, customs duty due and duty paid.

Tracking knows a parcel's recipient by the mobile number and e-mail on the parcel, not
by an account: when an account has that mobile (or e-mail) its language and chosen
channels are used (app.notify.contact), otherwise the recipient is told in Arabic on
both channels the parcel gives an address for. The subscribers in tracking.jobs call
these; each is safe to run twice (app.notify.tell sends once per event and channel).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.auth.models import PostOffice
from app.database import db
from app.events import DomainEvent
from app.money import format_money
from app.notify import contact, message_kind, tell
from tracking.models import CustomsCase, Parcel, ParcelEvent

_TRACK_SAMPLE = {"tracking_number": "RR123456785IQ", "name": "فاطمة",
                 "link": "https://barid.iq/track/RR123456785IQ"}

OUT_FOR_DELIVERY = message_kind(
    "parcel_out_for_delivery", _l("Parcel out for delivery"), sample=_TRACK_SAMPLE,
    subject={"ar": "طردك {{ tracking_number }} في الطريق إليك اليوم",
             "en": "Your parcel {{ tracking_number }} is out for delivery"},
    email={"ar": "مرحباً {{ name }}،\n\nطردك {{ tracking_number }} خرج مع موزع البريد "
                 "وسيصلك اليوم. يرجى إبقاء هاتفك قريباً.\n\nتتبع الطرد: {{ link }}"
                 "\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nYour parcel {{ tracking_number }} is out for "
                 "delivery today. Please keep your phone at hand.\n\nTrack it: {{ link }}"
                 "\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: طردك {{ tracking_number }} في الطريق إليك اليوم. {{ link }}",
         "en": "Iraqi Post: your parcel {{ tracking_number }} is out for delivery today. "
               "{{ link }}"},
)

READY_FOR_PICKUP = message_kind(
    "parcel_ready_for_pickup", _l("Parcel ready for pickup"),
    sample={**_TRACK_SAMPLE, "office": "مكتب بريد العشار"},
    subject={"ar": "طردك {{ tracking_number }} جاهز للاستلام",
             "en": "Your parcel {{ tracking_number }} is ready for pickup"},
    email={"ar": "مرحباً {{ name }}،\n\nطردك {{ tracking_number }} جاهز للاستلام في "
                 "{{ office }}. أحضر هويتك عند الاستلام.\n\nتتبع الطرد: {{ link }}"
                 "\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nYour parcel {{ tracking_number }} is ready for "
                 "pickup at {{ office }}. Bring your identity document.\n\nTrack it: "
                 "{{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: طردك {{ tracking_number }} جاهز للاستلام في {{ office }}. "
               "أحضر هويتك.",
         "en": "Iraqi Post: parcel {{ tracking_number }} is ready for pickup at "
               "{{ office }}. Bring your ID."},
)

DELIVERY_FAILED = message_kind(
    "parcel_delivery_failed", _l("Delivery attempt failed"), sample=_TRACK_SAMPLE,
    subject={"ar": "تعذر تسليم طردك {{ tracking_number }}",
             "en": "We could not deliver your parcel {{ tracking_number }}"},
    email={"ar": "مرحباً {{ name }}،\n\nحاول موزع البريد تسليم طردك {{ tracking_number }} "
                 "ولم يتمكن. سنحاول مرة أخرى، أو يمكنك مراجعة مكتب البريد.\n\n"
                 "تتبع الطرد: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nOur postman tried to deliver your parcel "
                 "{{ tracking_number }} but could not. We will try again, or you can ask "
                 "at the post office.\n\nTrack it: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: تعذر تسليم طردك {{ tracking_number }}. سنحاول مجدداً. "
               "{{ link }}",
         "en": "Iraqi Post: we could not deliver parcel {{ tracking_number }}. We will "
               "try again. {{ link }}"},
)

_DUTY_SAMPLE = {**_TRACK_SAMPLE, "amount": "20,240 IQD",
                "link": "https://barid.iq/track/RR123456785IQ/duty"}

DUTY_DUE = message_kind(
    "customs_duty_due", _l("Customs duty due"), sample=_DUTY_SAMPLE,
    subject={"ar": "رسوم كمركية مستحقة على طردك {{ tracking_number }}",
             "en": "Customs duty due on your parcel {{ tracking_number }}"},
    email={"ar": "مرحباً {{ name }}،\n\nاجتاز طردك {{ tracking_number }} الكمرك. الرسوم "
                 "المستحقة: {{ amount }}. ادفعها عبر الإنترنت أو في مكتب البريد لتستلم "
                 "طردك.\n\nالدفع: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nYour parcel {{ tracking_number }} has passed "
                 "customs. Duty and fees due: {{ amount }}. Pay online or at the post "
                 "office to receive it.\n\nPay: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: رسوم كمركية {{ amount }} مستحقة على طردك "
               "{{ tracking_number }}. ادفع: {{ link }}",
         "en": "Iraqi Post: customs duty of {{ amount }} is due on parcel "
               "{{ tracking_number }}. Pay: {{ link }}"},
)

DUTY_PAID = message_kind(
    "customs_duty_paid", _l("Customs duty paid"), sample=_DUTY_SAMPLE,
    subject={"ar": "تم دفع الرسوم الكمركية لطردك {{ tracking_number }}",
             "en": "Customs duty paid for your parcel {{ tracking_number }}"},
    email={"ar": "مرحباً {{ name }}،\n\nاستلمنا {{ amount }} رسوماً كمركية لطردك "
                 "{{ tracking_number }}. سيصلك الطرد قريباً.\n\nتتبع الطرد: {{ link }}\n\n"
                 "البريد العراقي",
           "en": "Hello {{ name }},\n\nWe received {{ amount }} of customs duty for "
                 "your parcel {{ tracking_number }}. It will reach you soon.\n\nTrack it: "
                 "{{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: تم دفع الرسوم الكمركية {{ amount }} لطردك "
               "{{ tracking_number }}.",
         "en": "Iraqi Post: customs duty of {{ amount }} paid for parcel "
               "{{ tracking_number }}."},
)

# The parcel statuses a recipient is told of, and the message for each.
STATUS_MESSAGES = {"out_for_delivery": OUT_FOR_DELIVERY.key,
                   "ready_for_pickup": READY_FOR_PICKUP.key,
                   "delivery_failed": DELIVERY_FAILED.key}


def _link(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _recipient_of(parcel: Parcel):
    return contact(email=parcel.recipient_email, phone=parcel.recipient_phone)


def _office_name(parcel: Parcel, locale: str) -> str:
    office_id = db.scalar(select(ParcelEvent.office_id).where(
        ParcelEvent.parcel_id == parcel.id, ParcelEvent.office_id.is_not(None))
        .order_by(ParcelEvent.occurred_at.desc(), ParcelEvent.id.desc()).limit(1))
    office = db.get(PostOffice, office_id) if office_id else None
    if office is None:
        return "مكتب البريد" if locale == "ar" else "the post office"
    return office.name(locale)


def parcel_moved(event: DomainEvent) -> None:
    """Tell the recipient that their parcel is out for delivery, ready for pickup or
    could not be delivered, when `event` (parcel.status_changed) says so and the parcel
    is still in that status. Stages messages (app.notify.tell); flushes."""
    payload = event.payload or {}
    kind = STATUS_MESSAGES.get(str(payload.get("status")))
    parcel = db.get(Parcel, payload.get("parcel_id")) if kind else None
    # A parcel that moved on since (delivered meanwhile) is not told of an old step.
    if parcel is None or parcel.status != payload.get("status"):
        return

    def fields(locale: str) -> dict[str, Any]:
        return {"tracking_number": parcel.tracking_number, "name": parcel.recipient_name,
                "link": _link(f"/track/{parcel.tracking_number}"),
                "office": _office_name(parcel, locale)}

    tell(_recipient_of(parcel), kind, fields, event=event)


def _duty_fields(case: CustomsCase, amount: int):
    parcel = case.parcel

    def fields(locale: str) -> dict[str, Any]:
        return {"tracking_number": parcel.tracking_number, "name": parcel.recipient_name,
                "amount": format_money(amount, "IQD", locale),
                "link": _link(f"/track/{parcel.tracking_number}/duty")}

    return fields


def duty_due(event: DomainEvent) -> None:
    """Tell the recipient what customs duty is due once customs released the parcel
    (`customs.released`) with duty outstanding. Stages messages; flushes."""
    case = db.get(CustomsCase, (event.payload or {}).get("case_id"))
    if case is None or not case.duty_outstanding:
        return
    tell(_recipient_of(case.parcel), DUTY_DUE.key, _duty_fields(case, case.total_due_iqd),
         event=event)


def duty_paid(event: DomainEvent) -> None:
    """Tell the recipient their duty was received (`customs.duty_paid`). Stages
    messages; flushes."""
    case = db.get(CustomsCase, (event.payload or {}).get("case_id"))
    if case is None or case.paid_at is None:
        return
    tell(_recipient_of(case.parcel), DUTY_PAID.key, _duty_fields(case, case.total_due_iqd),
         event=event)
