"""What the shop tells a shopper: order placed, order paid, a consignment shipped, a
buy-for-me quote ready.

The shop knows who owns an order or a request, so the shopper is told in their own
language on the channels they chose (app.notify.citizen). The subscribers in shop.jobs
call these; each is safe to run twice (app.notify.tell sends once per event and channel).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from app.auth.models import User
from app.database import db
from app.events import DomainEvent
from app.i18n import local_time
from app.money import format_money
from app.notify import citizen, message_kind, tell
from shop.models import BuyRequest, Consignment, Order

_ORDER_SAMPLE = {"number": "BR-7K2M9Q", "name": "زينب", "total": "45,000 IQD",
                 "link": "https://barid.iq/shop/orders/1"}

ORDER_PLACED = message_kind(
    "order_placed", _l("Order placed"), sample=_ORDER_SAMPLE,
    subject={"ar": "استلمنا طلبك {{ number }}", "en": "We received your order {{ number }}"},
    email={"ar": "مرحباً {{ name }}،\n\nاستلمنا طلبك {{ number }} بمبلغ {{ total }}. "
                 "سنخبرك حين يتم الدفع.\n\nتفاصيل الطلب: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nWe received your order {{ number }} for {{ total }}. "
                 "We will tell you when it is paid.\n\nYour order: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: استلمنا طلبك {{ number }} بمبلغ {{ total }}.",
         "en": "Iraqi Post: we received your order {{ number }} for {{ total }}."},
)

ORDER_PAID = message_kind(
    "order_paid", _l("Order paid"), sample=_ORDER_SAMPLE,
    subject={"ar": "تم دفع طلبك {{ number }}", "en": "Your order {{ number }} is paid"},
    email={"ar": "مرحباً {{ name }}،\n\nتم دفع طلبك {{ number }} ({{ total }}). نجهزه الآن "
                 "وسنخبرك حين يُشحن.\n\nتفاصيل الطلب: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nYour order {{ number }} ({{ total }}) is paid. We are "
                 "preparing it and will tell you when it ships.\n\nYour order: {{ link }}"
                 "\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: تم دفع طلبك {{ number }} ({{ total }}).",
         "en": "Iraqi Post: your order {{ number }} ({{ total }}) is paid."},
)

CONSIGNMENT_SHIPPED = message_kind(
    "consignment_shipped", _l("Consignment shipped"),
    sample={**_ORDER_SAMPLE, "tracking_number": "RR123456785IQ",
            "track_link": "https://barid.iq/track/RR123456785IQ"},
    subject={"ar": "شُحن طلبك {{ number }}", "en": "Your order {{ number }} has shipped"},
    email={"ar": "مرحباً {{ name }}،\n\nشُحن جزء من طلبك {{ number }} برقم التتبع "
                 "{{ tracking_number }}.\n\nتتبع الطرد: {{ track_link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nPart of your order {{ number }} has shipped as "
                 "parcel {{ tracking_number }}.\n\nTrack it: {{ track_link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: شُحن طلبك {{ number }}، رقم التتبع {{ tracking_number }}.",
         "en": "Iraqi Post: your order {{ number }} has shipped as {{ tracking_number }}."},
)

BUY_FOR_ME_QUOTED = message_kind(
    "buy_for_me_quoted", _l("Buy-for-me quote ready"),
    sample={"number": "BFM-3H8K2P", "name": "زينب", "title": "Bluetooth headphones",
            "total": "98,500 IQD", "expires": "5 Dec 2026, 14:00",
            "link": "https://barid.iq/shop/buy-for-me/1"},
    subject={"ar": "عرض السعر لطلبك {{ number }} جاهز",
             "en": "The quote for your request {{ number }} is ready"},
    email={"ar": "مرحباً {{ name }}،\n\nعرض السعر لطلب الشراء {{ number }} ({{ title }}) "
                 "جاهز: {{ total }}. اقبله قبل {{ expires }}.\n\nالعرض: {{ link }}\n\n"
                 "البريد العراقي",
           "en": "Hello {{ name }},\n\nThe quote for your request {{ number }} "
                 "({{ title }}) is ready: {{ total }}. Accept it before {{ expires }}."
                 "\n\nThe quote: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: عرض السعر لطلبك {{ number }} جاهز: {{ total }}. {{ link }}",
         "en": "Iraqi Post: the quote for {{ number }} is ready: {{ total }}. {{ link }}"},
)


def _link(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _tell_owner(user_id: int, kind: str, fields: Any, event: DomainEvent) -> None:
    user = db.get(User, user_id)
    if user is not None and user.active:
        tell(citizen(user), kind, fields, event=event)


def _order_fields(order: Order, **extra: Any):
    def fields(locale: str) -> dict[str, Any]:
        return {"number": order.number, "name": db.get(User, order.user_id).full_name,
                "total": format_money(order.total, order.currency, locale),
                "link": _link(f"/shop/orders/{order.id}"), **extra}

    return fields


def order_news(event: DomainEvent) -> None:
    """Tell the owner of an order that it was placed (`order.placed`) or paid
    (`order.paid`). Stages messages (app.notify.tell); flushes."""
    order = db.get(Order, (event.payload or {}).get("order_id"))
    if order is None:
        return
    kind = ORDER_PLACED.key if event.name == "order.placed" else ORDER_PAID.key
    _tell_owner(order.user_id, kind, _order_fields(order), event)


def consignment_shipped(event: DomainEvent) -> None:
    """Tell the owner of an order that a consignment of it shipped
    (`consignment.shipped`), with its tracking number. Stages messages; flushes."""
    c = db.get(Consignment, (event.payload or {}).get("consignment_id"))
    if c is None:
        return
    order = db.get(Order, c.order_id)
    number = c.tracking_number or ""
    _tell_owner(order.user_id, CONSIGNMENT_SHIPPED.key, _order_fields(
        order, tracking_number=number, track_link=_link(f"/track/{number}")), event)


def buy_request_quoted(event: DomainEvent) -> None:
    """Tell a shopper that procurement's quote for their buy-for-me request is ready
    (`buy_request.quoted`), while it still is. Stages messages; flushes."""
    req = db.get(BuyRequest, (event.payload or {}).get("request_id"))
    if req is None or req.status != "quoted":
        return

    def fields(locale: str) -> dict[str, Any]:
        with force_locale(locale):
            expires = local_time(req.quote_expires_at, "medium") if req.quote_expires_at \
                else ""
        return {"number": req.number, "name": req.user.full_name, "title": req.title,
                "total": format_money(req.total, "IQD", locale), "expires": expires,
                "link": _link(f"/shop/buy-for-me/{req.id}")}

    _tell_owner(req.user_id, BUY_FOR_ME_QUOTED.key, fields, event)
