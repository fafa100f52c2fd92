"""The public duty page takes a card number and PIN from anyone, signed in or not. An
anonymous visitor walking card numbers gets one answer whatever the card and is stopped
after a few tries, checked against almost no card; paying with a card you do not hold
takes the one-time code its holder gets by SMS."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the payments tests)
import re
import secrets

import pytest
from sqlalchemy import select

from app.database import db, utcnow
from app.notify import sent_messages
from payments import cards
from payments.models import Payment
from tests.payments.conftest import usd_rate  # noqa: F401 (fixture)
from tests.payments.helpers import ledger_problems
from tests.tracking.test_duty_card import (
    NUMBER,
    _balance,
    _case,
    _drain,
    _hand_over,
    _held_then_released,
    _post_card,
)

REFUSED_AR = "رقم البطاقة أو الرمز السري غير صحيح"
TOO_MANY_AR = "محاولات كثيرة جداً ببطاقات البريد"
CODE_SENT_AR = "أرسلنا رمز تحقق برسالة قصيرة إلى هاتف حامل البطاقة المنتهي بـ 22"
WRONG_CODE_AR = "رمز التحقق غير صحيح أو لم يعد صالحاً"


def _random_card_number() -> str:
    body = f"{cards.CARD_PREFIX}{secrets.randbelow(10 ** cards.CARD_RANDOM_DIGITS):011d}"
    return body + cards.luhn_check_digit(body)


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", html)


@pytest.fixture()
def spied(monkeypatch):
    """How many card numbers were looked up and how many PINs hashed."""
    seen = {"looked_up": 0, "hashed": 0}
    find, match = cards.find_card, cards._pin_matches

    def counting_find(number):
        seen["looked_up"] += 1
        return find(number)

    def counting_match(card, pin):
        seen["hashed"] += 1
        return match(card, pin)

    monkeypatch.setattr(cards, "find_card", counting_find)
    monkeypatch.setattr(cards, "_pin_matches", counting_match)
    return seen


def test_an_anonymous_visitor_walking_1000_card_numbers_learns_nothing_and_is_stopped(
        app, usd_rate, offices, clerk, officer, fast_pins, spied, monkeypatch):
    monkeypatch.setitem(app.config, "TRACKING_LOOKUPS_PER_MINUTE", 0)  # this limit only
    _held_then_released(offices, clerk, officer)
    real = _post_card(clerk, offices, balance=30_000)
    locked = _post_card(clerk, offices, balance=40_000)
    locked.locked_at = utcnow()
    db.commit()
    # A real card with a wrong PIN, a locked card with its right PIN, and guesses.
    tries = [(real.number, "9753"), (locked.number, "1357")]
    tries += [(_random_card_number(), f"{1000 + i}") for i in range(998)]
    client = app.test_client()
    answers = []
    for number, pin in tries:
        res = client.post(f"/track/{NUMBER}/duty",
                          data={"card_number": number, "card_pin": pin})
        answers.append((res.status_code, _without_csrf(res.get_data(as_text=True))))

    limit = app.config["CARD_TRIES_PER_CLIENT"]
    refused, stopped = answers[:limit], answers[limit:]
    # The same answer for a wrong PIN, a locked card and a card that does not exist.
    assert len(set(refused)) == 1 and refused[0][0] == 422
    assert REFUSED_AR in refused[0][1]
    # Then the same "too many tries", whatever the number: nothing more is checked.
    assert len(set(stopped)) == 1 and stopped[0][0] == 429
    assert TOO_MANY_AR in stopped[0][1] and REFUSED_AR not in stopped[0][1]
    assert spied == {"looked_up": limit, "hashed": 1}  # the locked card is never hashed
    assert _case(_held_case_id()).paid_at is None
    assert not db.scalars(select(Payment).where(Payment.method == "post_card")).all()
    assert not [m for m in sent_messages if "Barid code" in m["body"]]  # no code sent


def _held_case_id() -> int:
    from tracking.models import CustomsCase

    return db.scalar(select(CustomsCase.id))


@pytest.mark.commits  # the code is kept apart from the request that sent it
def test_an_anonymous_visitor_pays_the_duty_only_with_the_holders_code(
        app, usd_rate, offices, clerk, officer, fast_pins):
    case = _held_then_released(offices, clerk, officer)
    card = _post_card(clerk, offices, balance=30_000)  # linked to no account
    client = app.test_client()
    sent_messages.clear()

    res = client.post(f"/track/{NUMBER}/duty", data={"card_number": card.number,
                                                     "card_pin": "1357"})
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and CODE_SENT_AR in page
    assert "+9647711112222" not in page and 'name="one_time_code"' in page
    assert _balance(card) == 30_000 and _case(case.id).paid_at is None
    [sms] = sent_messages
    assert sms["phone"] == "+9647711112222"
    code = re.search(r"\b(\d{6})\b", sms["body"]).group(1)
    assert "21,550" in sms["body"]

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    bad = client.post(f"/track/{NUMBER}/duty", data={"card_number": card.number,
                                                     "one_time_code": wrong})
    assert bad.status_code == 422 and WRONG_CODE_AR in bad.get_data(as_text=True)
    assert _balance(card) == 30_000

    ok = client.post(f"/track/{NUMBER}/duty", data={"card_number": card.number,
                                                    "one_time_code": code})
    assert ok.status_code == 302, ok.get_data(as_text=True)[:2000]
    _drain()
    assert _case(case.id).paid_at is not None and _balance(card) == 30_000 - 21_550
    assert _hand_over(offices, clerk).outcome == "accepted"
    assert ledger_problems() == []
    sent_messages.clear()
