"""The post card at the counter and at checkout: each refusal is clear and moves no money."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app.audit import AuditRecord
from app.database import db, get_engine, unit_of_work
from app.i18n import baghdad_today
from payments import cards, services
from payments.errors import (
    CardExpired,
    CardFrozen,
    CardLocked,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidCardNumber,
    InvalidPin,
    RefundTooLarge,
    TopUpLimitExceeded,
    WrongPin,
)
from payments.models import Account, JournalEntry, Payment, Posting
from tests.payments.helpers import CARD_PIN, balance, ledger_problems


def pay(card, amount=1000, pin=CARD_PIN, key="k1", purpose="postage", actor_id=None):
    """Pay at the counter, by the clerk who issued the card unless another is given
    (online, someone other than the holder needs a one-time code: test_one_time_code)."""
    p = services.pay_with_post_card(card_number=card.number, pin=pin, amount=amount,
                                    currency="IQD", reference_kind="parcel",
                                    reference_id="RR000000080IQ", purpose=purpose,
                                    idempotency_key=key, at_counter=True,
                                    actor_id=actor_id or card.issued_by_id)
    db.commit()
    return p


def money_snapshot():
    db.rollback()
    return (db.scalar(select(text("count(*)")).select_from(Posting)),
            tuple(db.scalars(select(Account.balance).order_by(Account.id))))


def test_card_number_has_prefix_luhn_and_is_never_reused(make_card):
    a, b = make_card(), make_card()
    for c in (a, b):
        assert len(c.number) == 16 and c.number.startswith(cards.CARD_PREFIX)
        assert cards.luhn_valid(c.number)
    assert a.number != b.number
    assert cards.luhn_check_digit("7992739871") == "3"  # the textbook example
    assert a.pin_hash.startswith("$argon2id$") and CARD_PIN not in a.pin_hash


def test_cash_top_up_then_pay_moves_money_and_keeps_the_books(make_card, office):
    card = make_card(balance=50_000)
    assert balance(card) == 50_000
    p = pay(card, amount=12_500)
    assert p.status == "succeeded" and balance(card) == 37_500
    revenue = db.scalar(select(Account).where(Account.code == "revenue:postage:IQD"))
    drawer = db.scalar(select(Account).where(Account.code == f"drawer:{office.id}:IQD"))
    assert revenue.balance == 12_500 and drawer.balance == 50_000
    names = list(db.scalars(text("select name from domain_events")))
    assert names.count("payment.succeeded") == 2
    assert ledger_problems() == []


def test_same_idempotency_key_moves_money_once(make_card):
    card = make_card(balance=10_000)
    first = pay(card, amount=3000, key="same")
    second = pay(card, amount=3000, key="same")
    assert first.id == second.id and balance(card) == 7000
    assert db.query(Payment).filter_by(idempotency_key="same").count() == 1
    with pytest.raises(IdempotencyConflict):
        pay(card, amount=3500, key="same")
    db.rollback()
    assert balance(card) == 7000


@pytest.mark.commits  # the attempt is kept on a connection of its own
def test_wrong_pin_five_times_locks_even_when_caller_rolls_back(make_card, clerk):
    card = make_card(balance=10_000)
    before = money_snapshot()
    for left in (4, 3, 2, 1):
        with pytest.raises(WrongPin) as exc:
            pay(card, pin="9999", key=f"w{left}", actor_id=clerk.id)
        assert exc.value.attempts_left == left
        db.rollback()  # the caller's transaction is thrown away; the count is not
    with pytest.raises(CardLocked):
        pay(card, pin="9999", key="w0", actor_id=clerk.id)
    db.rollback()
    # Now even the right PIN is refused until a clerk unlocks.
    with pytest.raises(CardLocked):
        pay(card, pin=CARD_PIN, key="right", actor_id=clerk.id)
    db.rollback()
    assert money_snapshot() == before
    failed = db.scalars(select(AuditRecord).where(AuditRecord.action == "post_card.pin_failed")
                        .order_by(AuditRecord.id)).all()
    assert len(failed) == 5 and failed[-1].details["locked"] is True
    with unit_of_work():  # the clerk's page commits the unlock
        cards.unlock_card(card.id, clerk_id=clerk.id)
    assert pay(card, pin=CARD_PIN, key="after").status == "succeeded"
    assert balance(card) == 9000


def test_frozen_and_expired_cards_are_refused(make_card, clerk):
    card = make_card(balance=10_000)
    with unit_of_work():  # freeze_card flushes only
        cards.freeze_card(card.id, clerk_id=clerk.id)
    with pytest.raises(CardFrozen):  # at the counter the clerk is told why
        pay(card, actor_id=clerk.id)
    db.rollback()
    with pytest.raises(CardFrozen):
        services.receive_cash(office_id=1, clerk_id=clerk.id, amount=100, currency="IQD",
                              reference_kind="post_card", reference_id=str(card.id),
                              purpose="card_topup", idempotency_key="t-frozen")
    db.rollback()
    with unit_of_work():
        cards.unfreeze_card(card.id, clerk_id=clerk.id)
    card = db.get(type(card), card.id)
    card.expires_on = baghdad_today() - timedelta(days=1)
    db.commit()
    with pytest.raises(CardExpired):
        pay(card, key="exp", actor_id=clerk.id)
    db.rollback()
    assert balance(card) == 10_000


def test_bad_number_bad_amount_and_insufficient_balance(make_card):
    card = make_card(balance=1000)
    before = money_snapshot()
    wrong_luhn = card.number[:-1] + str((int(card.number[-1]) + 1) % 10)
    with pytest.raises(InvalidCardNumber):
        services.pay_with_post_card(card_number=wrong_luhn, pin=CARD_PIN, amount=10,
                                    currency="IQD", reference_kind="x", reference_id="1",
                                    purpose="postage", idempotency_key="a", actor_id=None)
    for bad in (0, -5):
        with pytest.raises(InvalidAmount):
            pay(card, amount=bad, key=f"bad{bad}")
    with pytest.raises(InsufficientFunds):
        pay(card, amount=1001, key="too-much")
    db.rollback()
    assert money_snapshot() == before
    assert db.query(Payment).filter_by(idempotency_key="too-much").count() == 0


def test_pin_must_be_4_to_6_digits(make_card):
    for pin in ("123", "1234567", "12a4", ""):
        with pytest.raises(InvalidPin):
            make_card(pin=pin)
        db.rollback()


def test_top_up_above_the_limit_is_refused(make_card, app, office, clerk):
    card = make_card(balance=0)
    with pytest.raises(TopUpLimitExceeded):
        services.receive_cash(office_id=office.id, clerk_id=clerk.id,
                              amount=app.config["PAYMENTS_TOPUP_MAX"] + 1, currency="IQD",
                              reference_kind="post_card", reference_id=str(card.id),
                              purpose="card_topup", idempotency_key="big")
    db.rollback()
    assert balance(card) == 0 and db.query(JournalEntry).count() == 0


def test_refund_back_onto_the_card_and_never_above_what_was_paid(make_card, clerk):
    card = make_card(balance=10_000)
    p = pay(card, amount=4000)
    r = services.refund(p.id, 1500, "parcel lost", clerk.id, "r1")
    db.commit()
    assert balance(card) == 7500 and r.amount == 1500
    assert db.get(Payment, p.id).status == "partially_refunded"
    with pytest.raises(RefundTooLarge):
        services.refund(p.id, 2501, "again", clerk.id, "r2")
    db.rollback()
    again = services.refund(p.id, 1500, "parcel lost", clerk.id, "r1")  # retried request
    db.commit()
    assert again.id == r.id and balance(card) == 7500
    services.refund(p.id, 2500, "rest", clerk.id, "r3")
    db.commit()
    assert db.get(Payment, p.id).status == "refunded" and balance(card) == 10_000
    assert ledger_problems() == []


def test_hold_capture_and_void_resolve_once(make_card):
    card = make_card(balance=10_000)
    args = dict(card_number=card.number, pin=CARD_PIN, currency="IQD", reference_kind="order",
                purpose="shop_order", actor_id=card.issued_by_id, at_counter=True)
    held = services.authorize_post_card(amount=6000, reference_id="1", idempotency_key="h1",
                                        **args)
    db.commit()
    assert held.status == "pending" and balance(card) == 4000
    with pytest.raises(InsufficientFunds):
        services.authorize_post_card(amount=4001, reference_id="2", idempotency_key="h2",
                                     **args)
    db.rollback()
    captured = services.capture_payment(held.id, amount=5000)
    db.commit()
    assert captured.status == "succeeded" and balance(card) == 5000  # 1000 released
    assert services.capture_payment(held.id).status == "succeeded"  # no second effect
    db.commit()
    held2 = services.authorize_post_card(amount=3000, reference_id="3", idempotency_key="h3",
                                         **args)
    db.commit()
    services.void_payment(held2.id)
    services.void_payment(held2.id)
    db.commit()
    assert balance(card) == 5000
    assert ledger_problems() == []


def test_expired_holds_are_voided_by_the_job(make_card):
    from payments.jobs import expire_stale_holds

    card = make_card(balance=10_000)
    held = services.authorize_post_card(
        card_number=card.number, pin=CARD_PIN, amount=6000, currency="IQD",
        reference_kind="order", reference_id="9", purpose="shop_order",
        idempotency_key="hx", actor_id=card.issued_by_id, at_counter=True, hold_minutes=1)
    db.commit()
    assert expire_stale_holds() == []  # not stale yet
    from payments.models import Hold

    hold = db.scalar(select(Hold).where(Hold.payment_id == held.id))
    hold.expires_at = hold.expires_at - timedelta(minutes=5)
    db.commit()
    assert expire_stale_holds() == [held.id]
    assert balance(card) == 10_000 and db.get(Payment, held.id).status == "cancelled"


@pytest.mark.commits  # raw SQL on another connection must see the rows
def test_postings_and_entries_refuse_update_and_delete(make_card):
    make_card(balance=500)
    for sql in ("UPDATE ledger_postings SET amount = amount + 1",
                "DELETE FROM ledger_postings", "DELETE FROM ledger_entries"):
        with pytest.raises(Exception, match="append-only"), get_engine().begin() as conn:
            conn.execute(text(sql))


@pytest.mark.commits  # tampers through another connection
def test_verify_command_reports_a_tampered_balance(make_card, app):
    card = make_card(balance=500)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["ledger", "verify"])
    assert ok.exit_code == 0, ok.output
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE ledger_accounts SET balance = -7 WHERE id = :i"),
                     {"i": card.account_id})
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code == 1
    assert f"cached balance differs from postings: {card.account_id}" in bad.output
    assert f"card account below zero: {card.account_id}" in bad.output
