"""Amounts a clerk or a card holder types: what is not a whole amount in range is a field
error on the page, never a 500, and moves no money; Arabic-Indic digits are numbers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.database import db
from payments.models import JournalEntry, Payment, Refund
from tests.payments.helpers import balance
from tests.payments.test_pages import login, person

NOT_DIGITS = "دنانير صحيحة، أرقام فقط."            # Whole dinars, digits only.
NOT_ABOVE_ZERO = "يجب أن يكون المبلغ عدداً صحيحاً أكبر من صفر."
TOO_MUCH_TOPUP = "أقصى مبلغ للشحن"                    # A top-up can be at most ...

# (what the clerk typed, the Arabic message the page must show)
BAD_TOPUPS = [
    ("abc", NOT_DIGITS),
    ("-5", NOT_DIGITS),
    ("0", NOT_ABOVE_ZERO),
    ("٠", NOT_ABOVE_ZERO),
    ("1e9999", NOT_DIGITS),
    ("12.5", NOT_DIGITS),
    ("NaN", NOT_DIGITS),
    ("Infinity", NOT_DIGITS),
    ("1,2,3", NOT_DIGITS),
    ("99999999999999999999", TOO_MUCH_TOPUP),
    ("9" * 400, NOT_DIGITS),
    ("5000001", TOO_MUCH_TOPUP),
]


def _counts() -> tuple[int, int, int]:
    return (db.scalar(select(func.count()).select_from(Payment)),
            db.scalar(select(func.count()).select_from(JournalEntry)),
            db.scalar(select(func.count()).select_from(Refund)))


@pytest.fixture()
def counter_clerk(app_ctx, office):
    return person("Bounds Clerk", "clerk", office=office)


@pytest.mark.parametrize(("typed", "message"), BAD_TOPUPS)
def test_a_bad_cash_top_up_is_a_message_and_moves_nothing(client, counter_clerk, make_card,
                                                          typed, message):
    card = make_card(balance=1000)
    before = _counts()
    login(client, counter_clerk)
    res = client.post(f"/backoffice/payments/cards/{card.id}/topup",
                      data={"amount": typed, "key": f"bad-{typed[:20]}"}, follow_redirects=True)
    assert res.status_code == 200
    assert message in res.get_data(as_text=True)
    assert balance(card) == 1000 and _counts() == before


@pytest.mark.parametrize(("typed", "amount"), [
    ("١٢٣", 123), ("٧٥٬٠٠٠", 75_000), ("۴۵۶", 456), (" 75,000 ", 75_000)])
def test_arabic_indic_digits_are_an_amount(client, counter_clerk, make_card, typed, amount):
    card = make_card(balance=0)
    login(client, counter_clerk)
    res = client.post(f"/backoffice/payments/cards/{card.id}/topup",
                      data={"amount": typed, "key": "arabic-digits"})
    assert res.status_code == 302 and "/payments/payments/" in res.location
    assert balance(card) == amount


@pytest.mark.parametrize(("typed", "message"), [
    (t, m) for t, m in BAD_TOPUPS if m != TOO_MUCH_TOPUP] + [
    ("99999999999999999999", "1,000,000,000,000")])
def test_a_bad_refund_amount_is_a_message_and_refunds_nothing(client, counter_clerk, office,
                                                              typed, message):
    from payments import services

    p = services.receive_cash(office_id=office.id, clerk_id=counter_clerk.id, amount=20_000,
                              currency="IQD", reference_kind="parcel", reference_id="EE9",
                              purpose="postage", idempotency_key="cash-bounds")
    db.commit()
    before = _counts()
    login(client, counter_clerk)
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": typed, "reason": "wrong weight", "key": "r-bad"},
                      follow_redirects=True)
    assert res.status_code == 200
    assert message in res.get_data(as_text=True)
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0 and _counts() == before


def test_a_refund_in_arabic_indic_digits_is_taken(client, counter_clerk, office):
    from payments import services

    p = services.receive_cash(office_id=office.id, clerk_id=counter_clerk.id, amount=20_000,
                              currency="IQD", reference_kind="parcel", reference_id="EE8",
                              purpose="postage", idempotency_key="cash-arabic")
    db.commit()
    login(client, counter_clerk)
    client.post(f"/backoffice/payments/payments/{p.id}/refund",
                data={"amount": "٥٠٠٠", "reason": "wrong weight", "key": "r-ar"})
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 5000


@pytest.mark.parametrize(("typed", "message"), BAD_TOPUPS[:4] + BAD_TOPUPS[-3:])
def test_a_bad_online_top_up_is_a_message(client, make_card, typed, message):
    shopper = person("Bounds Shopper", "shopper")
    card = make_card(balance=0, user_id=shopper.id)
    before = _counts()
    login(client, shopper)
    res = client.post(f"/payments/cards/{card.id}/topup",
                      data={"amount": typed, "key": "online-bad"}, follow_redirects=True)
    assert res.status_code != 500
    assert message in res.get_data(as_text=True)
    assert _counts() == before
