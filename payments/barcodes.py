"""What payments' barcodes open, and what the back-office search finds in payments.

A receipt's QR opens its payment (at a counter: refund, reprint); a post card's QR, shown
on the holder's phone, opens the card (top up, freeze). The public learn only that the
document is Barid's. The search box finds a payment by its receipt number (P-00000012)
or Stripe reference, and a card by its number, the holder's national ID or mobile.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from app.backoffice import MAX_HITS, SearchHit, SearchQuery
from app.barcodes import Opened, Page
from app.database import db
from app.money import format_money
from app.numbers import MAX_BIGINT
from payments.models import Payment, PostCard


def _row_id(reference: str) -> int | None:
    return int(reference) if reference.isdigit() and int(reference) <= MAX_BIGINT else None


def open_receipt(reference: str) -> Opened | None:
    """A receipt's reference is its payment's id (signed, so not guessable)."""
    pid = _row_id(reference)
    payment = db.get(Payment, pid) if pid is not None else None
    if payment is None:
        return None
    return Opened(Page("payments_bo.payment", {"payment_id": payment.id}),
                  what=_l("A payment receipt"), owner_id=payment.payer_user_id,
                  owner=Page("payments.receipt", {"payment_id": payment.id}))


def open_card(reference: str) -> Opened | None:
    """A post card's reference is the card's id (its number is never put in a QR)."""
    cid = _row_id(reference)
    card = db.get(PostCard, cid) if cid is not None else None
    if card is None:
        return None
    return Opened(Page("payments_bo.card", {"card_id": card.id}), what=_l("A post card"),
                  owner_id=card.user_id, owner=Page("payments.statement", {"card_id": card.id}))


def find_payments(query: SearchQuery) -> Iterable[SearchHit]:
    """A payment by its receipt number ("P-00000012", "p12") or Stripe PaymentIntent id."""
    wheres = []
    if query.compact.startswith("P") and query.compact[1:].isdigit():
        pid = _row_id(query.compact[1:].lstrip("0") or "0")
        if pid:
            wheres.append(Payment.id == pid)
    if query.text.startswith("pi_") and len(query.text) <= 64:
        wheres.append(Payment.stripe_payment_intent == query.text)
    if not wheres:
        return []
    return [SearchHit(_l("Payment"), f"P-{p.id:08d}", "payments_bo.payment",
                      {"payment_id": p.id}, format_money(p.amount, p.currency))
            for p in db.scalars(select(Payment).where(or_(*wheres)).limit(MAX_HITS))]


def _mobiles(query: SearchQuery) -> set[str]:
    """The spellings a card's mobile may be stored in (the counter form keeps what the
    clerk typed, spaces removed)."""
    if not query.phone:
        return set()
    local = query.phone[4:]
    return {query.phone, "0" + local, "964" + local, "00964" + local}


def find_cards(query: SearchQuery) -> Iterable[SearchHit]:
    """Post cards by number, by the holder's national ID or by the holder's mobile."""
    digits = query.compact
    wheres = []
    if digits:
        wheres += [PostCard.number == digits, PostCard.national_id == digits,
                   PostCard.national_id == query.raw.strip()]
    mobiles = _mobiles(query)
    if mobiles:
        wheres.append(PostCard.mobile.in_(mobiles))
    if not wheres:
        return []
    cards = db.scalars(select(PostCard).where(or_(*wheres)).order_by(PostCard.id)
                       .limit(MAX_HITS))
    return [SearchHit(_l("Post card"), c.masked, "payments_bo.card", {"card_id": c.id},
                      c.holder_name) for c in cards]
