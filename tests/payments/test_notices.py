"""A post card's holder is told of each top-up with the balance now: the account holder
in their language on their channels, a holder without an account by SMS in Arabic."""

from __future__ import annotations

import pytest

from app.auth.models import User
from app.database import db, unit_of_work
from app.jobs import drain
from app.notify import sent_messages
from payments import services
from tests.payments.helpers import ledger_problems


@pytest.fixture(autouse=True)
def _clear():
    sent_messages.clear()
    yield
    sent_messages.clear()


def _top_up(card_id: int, amount: int, clerk, office, key: str) -> None:
    with unit_of_work():
        services.cash_top_up(card_id, amount=amount, clerk_id=clerk.id, office_id=office.id,
                             idempotency_key=key)


def test_holder_with_an_account_is_told_in_english_with_the_balance(app, make_card, clerk,
                                                                    office):
    holder = User(email="layla@example.iq", phone="+9647811112222", full_name="Layla",
                  password_hash="x", locale="en")
    db.add(holder)
    db.commit()
    card = make_card(balance=20_000, user_id=holder.id)
    card_id, masked = card.id, card.masked
    drain(app)
    sent_messages.clear()
    _top_up(card_id, 50_000, clerk, office, "t1")
    drain(app)
    told = {m["channel"]: m for m in sent_messages if m["kind"] == "post_card_topped_up"}
    assert set(told) == {"email", "sms"}
    assert told["email"]["email"] == "layla@example.iq"
    assert told["sms"]["phone"] == "+9647811112222"  # the account's, not the card's mobile
    assert "50,000 IQD" in told["sms"]["body"] and "70,000 IQD" in told["sms"]["body"]
    assert masked in told["email"]["subject"] and "topped up" in told["email"]["subject"]
    assert ledger_problems() == []


def test_holder_without_an_account_gets_an_sms_in_arabic(app, make_card, clerk, office):
    card = make_card()
    _top_up(card.id, 30_000, clerk, office, "t2")
    drain(app)
    [sms] = [m for m in sent_messages if m["kind"] == "post_card_topped_up"]
    assert (sms["channel"], sms["phone"], sms["locale"]) == ("sms", "+9647701234567", "ar")
    assert "أضفنا 30,000 IQD" in sms["body"]
