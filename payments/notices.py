"""What payments tells a payer: a refund made, a post-card top-up.

Payments knows who paid (`payer_user_id`, set for every payment a shopper makes online,
orders included) and who holds a post card (its account, or only its mobile number), so
it tells them itself: the registered person in their language on the channels they
chose, a card holder without an account by SMS in Arabic. A cash payment at the counter
for someone unknown has nobody to tell. The subscribers in payments.jobs call these;
each is safe to run twice (app.notify.tell sends once per event and channel).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.auth.models import User
from app.database import db
from app.events import DomainEvent
from app.money import format_money
from app.notify import Recipient, citizen, contact, message_kind, tell
from payments.models import TOPUP, Payment, PostCard
from payments.services import account_balance

REFUND_MADE = message_kind(
    "refund_made", _l("Refund made"),
    sample={"name": "زينب", "amount": "15,000 IQD", "reference": "PAY-1042",
            "reason": "order cancelled", "link": "https://barid.iq/payments/receipts/1042.pdf"},
    subject={"ar": "أعدنا لك {{ amount }}", "en": "We refunded {{ amount }}"},
    email={"ar": "مرحباً {{ name }}،\n\nأعدنا لك {{ amount }} من الدفعة {{ reference }} "
                 "إلى وسيلة الدفع نفسها.\n\nالإيصال: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nWe refunded {{ amount }} of payment {{ reference }} "
                 "to the way you paid.\n\nReceipt: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: أعدنا لك {{ amount }} من الدفعة {{ reference }}.",
         "en": "Iraqi Post: we refunded {{ amount }} of payment {{ reference }}."},
)

POST_CARD_TOPPED_UP = message_kind(
    "post_card_topped_up", _l("Post card topped up"),
    sample={"name": "زينب", "amount": "50,000 IQD", "balance": "72,500 IQD",
            "card": "•••• 4821", "link": "https://barid.iq/payments/cards"},
    subject={"ar": "تم شحن بطاقتك البريدية {{ card }}",
             "en": "Your post card {{ card }} was topped up"},
    email={"ar": "مرحباً {{ name }}،\n\nأضفنا {{ amount }} إلى بطاقتك البريدية {{ card }}. "
                 "رصيدك الآن {{ balance }}.\n\nبطاقاتك: {{ link }}\n\nالبريد العراقي",
           "en": "Hello {{ name }},\n\nWe added {{ amount }} to your post card {{ card }}. "
                 "Your balance is now {{ balance }}.\n\nYour cards: {{ link }}\n\nIraqi Post"},
    sms={"ar": "البريد العراقي: أضفنا {{ amount }} إلى بطاقتك {{ card }}. الرصيد {{ balance }}.",
         "en": "Iraqi Post: {{ amount }} added to card {{ card }}. Balance {{ balance }}."},
)


def _link(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _payer(p: Payment) -> tuple[Recipient | None, str]:
    """Who is told of a payment, and the name to greet them by."""
    for user_id in (p.payer_user_id, p.card.user_id if p.card is not None else None):
        user = db.get(User, user_id) if user_id else None
        if user is not None and user.active:
            return citizen(user), user.full_name
    if p.card is not None and p.card.mobile:
        return contact(phone=p.card.mobile), p.card.holder_name
    return None, ""


def refund_made(event: DomainEvent) -> None:
    """Tell the payer a refund was made (`refund.succeeded`): how much, of which
    payment. Stages messages (app.notify.tell); flushes."""
    payload = event.payload or {}
    p = db.get(Payment, payload.get("payment_id"))
    if p is None:
        return
    recipient, name = _payer(p)
    if recipient is None:
        return
    amount = int(payload.get("refund_amount") or 0)

    def fields(locale: str) -> dict[str, Any]:
        return {"name": name, "amount": format_money(amount, p.currency, locale),
                "reference": f"PAY-{p.id}", "reason": "",
                "link": _link(f"/payments/receipts/{p.id}.pdf")}

    tell(recipient, REFUND_MADE.key, fields, event=event)


def card_topped_up(event: DomainEvent) -> None:
    """Tell a post card's holder that it was topped up (`payment.succeeded` of a
    top-up), with the balance now. Stages messages; flushes."""
    payload = event.payload or {}
    if payload.get("reference_kind") != "post_card" or payload.get("purpose") != TOPUP:
        return
    p = db.get(Payment, payload.get("payment_id"))
    card = db.get(PostCard, int(p.reference_id)) if p is not None else None
    if card is None:
        return
    if card.user_id and (holder := db.get(User, card.user_id)) is not None:
        recipient, name = citizen(holder), holder.full_name
    elif card.mobile:
        recipient, name = contact(phone=card.mobile), card.holder_name
    else:
        return

    def fields(locale: str) -> dict[str, Any]:
        return {"name": name, "amount": format_money(p.amount, p.currency, locale),
                "balance": format_money(account_balance(card.account_id), card.currency,
                                        locale),
                "card": card.masked, "link": _link("/payments/cards")}

    tell(recipient, POST_CARD_TOPPED_UP.key, fields, event=event)
