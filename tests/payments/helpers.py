"""Small readers shared by the payments tests."""

from __future__ import annotations

from app.database import db

# The PIN make_card gives a card. Not 1234: issuing refuses weak PINs (payments.pins).
CARD_PIN = "4826"


def balance(card) -> int:
    from payments.models import Account

    db.expire_all()
    return db.get(Account, card.account_id).balance


def ledger_problems() -> list:
    from payments.ledger import verify

    db.rollback()
    return [str(p) for p in verify()]
