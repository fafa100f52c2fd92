"""The post card's PIN (or one-time code) is checked before the stock rows are locked:
a slow PIN hash stalls no other shopper of the same product, a right PIN followed by a
refused placing costs nothing, the one-time code is for the confirmed amount only, and
a check cannot be spent on another payment. Zero oversell still holds."""

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select, text

from app.database import db, unit_of_work
from app.notify import sent_messages
from payments import cards
from payments import services as payments
from payments.errors import (
    CardRefused,
    IdempotencyConflict,
    OneTimeCodeSent,
    WrongOneTimeCode,
    WrongPin,
)
from payments.models import OneTimeCode, Payment, PostCard
from shop.models import Order, Product
from shop.services import catalog, checkout
from shop.services.checkout import PaymentChoice, PriceChanged, SoldOut
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    _fast_pins,
    clerk,
    make_card,
    office,
)
from tests.payments.helpers import CARD_PIN
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    door,
    make_address,
    make_shopper,
    place,
    product,
    put_in_cart,
    shelf,
    shopper,
)

WAIT = 20  # seconds a test waits for another thread before it calls the wait a failure


def _stock(product_id: int) -> int:
    return db.execute(text("SELECT stock FROM products WHERE id = :id"),
                      {"id": product_id}).scalar_one()


def _attempts(card_id: int) -> int:
    return db.execute(text("SELECT failed_pin_attempts FROM post_cards WHERE id = :id"),
                      {"id": card_id}).scalar_one()


def _plan(person, product_id: int) -> tuple[int, dict, str]:
    put_in_cart(person, product_id)
    dest = door(make_address(person))
    quote = checkout.quote_cart(person, checkout.destination_for(person, **dest))
    return person.id, dest, quote.digest


def _place_in_thread(app, plan, payment, results: list, key: str) -> threading.Thread:
    user_id, dest, digest = plan

    def run() -> None:
        with app.app_context():
            try:
                with unit_of_work():
                    order = checkout.place_order(user_id, dest, payment=payment,
                                                 seen_digest=digest, checkout_key=key)
                results.append(order.id)
            except Exception as exc:  # noqa: BLE001 - the test asserts on what came back
                results.append(exc)
            finally:
                db.remove()

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize("pin", ["9999", CARD_PIN], ids=["wrong PIN", "right PIN"])
@pytest.mark.commits  # threads place orders on their own sessions
def test_a_slow_pin_check_holds_no_stock_row(app, baghdad_shop, shelf, make_card,
                                             monkeypatch, pin):
    """While the first shopper's PIN is being hashed (held here until the second one is
    done), another shopper buys the same product to the end: the hash holds no lock on
    the product's row. Then the first one's answer is the PIN's, as before."""
    lamp = product(baghdad_shop, shelf, stock=5, price=20_000).id
    first, second = make_shopper("Slow Payer"), make_shopper("Quick Payer")
    card = make_card(balance=100_000, user_id=first.id)
    card_id, card_number = card.id, card.number
    plans = [_plan(first, lamp), _plan(second, lamp)]
    db.remove()

    hashing, second_done = threading.Event(), threading.Event()
    real = cards._pin_matches

    def slow(card_, pin_):
        hashing.set()
        second_done.wait(WAIT)  # the slow hash: as long as the other shopper takes
        return real(card_, pin_)

    monkeypatch.setattr(cards, "_pin_matches", slow)
    first_results: list = []
    t1 = _place_in_thread(app, plans[0], PaymentChoice("post_card", card_number=card_number,
                                                       pin=pin), first_results, "slow-1")
    assert hashing.wait(WAIT), first_results
    # Nobody holds the product's row while the PIN is hashed.
    with unit_of_work():
        locked = db.execute(text("SELECT id FROM products WHERE id = :id FOR UPDATE NOWAIT"),
                            {"id": lamp}).scalar_one()
    assert locked == lamp
    second_results: list = []
    t2 = _place_in_thread(app, plans[1], PaymentChoice("stripe"), second_results, "quick-1")
    t2.join(WAIT)
    finished_during_hash = not t2.is_alive()
    second_done.set()
    t1.join(WAIT)
    t2.join(WAIT)
    assert finished_during_hash, "the second checkout waited for the first one's PIN hash"
    assert len(second_results) == 1 and isinstance(second_results[0], int), second_results
    db.expire_all()
    if pin == CARD_PIN:
        assert len(first_results) == 1 and isinstance(first_results[0], int), first_results
        assert _stock(lamp) == 3
        assert _attempts(card_id) == 0
    else:
        # The holder's own card is told why; the try stays counted though all rolled back.
        assert len(first_results) == 1 and isinstance(first_results[0], WrongPin)
        assert _stock(lamp) == 4
        assert _attempts(card_id) == 1
        assert db.scalar(select(Order.id).where(Order.user_id == first.id)) is None


@pytest.mark.commits  # threads race on their own sessions
def test_right_pins_racing_for_the_last_unit_sell_it_once(app, baghdad_shop, shelf,
                                                          make_card):
    """Six shoppers, each with their own card and the right PIN, one unit: one order and
    one hold; the others hear it is sold out, and their cards lose nothing, not even a
    try."""
    last = product(baghdad_shop, shelf, stock=1, price=20_000).id
    people = [make_shopper(f"Racer {i}") for i in range(6)]
    racers = []
    for person in people:
        card = make_card(balance=100_000, user_id=person.id)
        racers.append((_plan(person, last), card.id, card.account_id))
    db.remove()
    barrier = threading.Barrier(len(racers))
    results: list = []

    def run(plan, card_id):
        user_id, dest, digest = plan
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    order = checkout.place_order(
                        user_id, dest, payment=PaymentChoice("post_card", card_id=card_id,
                                                             pin=CARD_PIN),
                        seen_digest=digest, checkout_key=f"last-{user_id}")
                results.append(order.id)
            except Exception as exc:  # noqa: BLE001 - asserted below
                results.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=run, args=(plan, card_id))
               for plan, card_id, _acc in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if not isinstance(r, int)]
    assert len(winners) == 1, results
    assert len(losers) == 5 and all(isinstance(r, SoldOut) for r in losers), losers
    db.expire_all()
    assert _stock(last) == 0
    assert db.scalar(select(Order.id)) == winners[0]
    held = list(db.scalars(select(Payment).where(Payment.method == "post_card")))
    assert len(held) == 1 and held[0].status == "pending"
    assert all(_attempts(card_id) == 0 for _plan_, card_id, _acc in racers)
    assert [payments.account_balance(acc) for _p, _c, acc in racers].count(100_000) == 5


@pytest.mark.commits  # the PIN's try is given back on a connection of its own
def test_a_right_pin_then_sold_out_costs_nothing(shopper, baghdad_shop, shelf, make_card,
                                                 monkeypatch):
    """The PIN was right, then the last unit went to someone else before the stock was
    taken: no order, no hold, the card's balance and tries as they were (the two earlier
    wrong PINs are forgiven by the right one, as at any right PIN)."""
    lamp = product(baghdad_shop, shelf, stock=1, price=20_000).id
    card = make_card(balance=100_000, user_id=shopper.id)
    card_id, account = card.id, card.account_id
    plan = _plan(shopper, lamp)
    for _ in range(2):
        with pytest.raises(WrongPin), unit_of_work():
            checkout.place_order(plan[0], plan[1],
                                 payment=PaymentChoice("post_card", card_id=card_id,
                                                       pin="9999"),
                                 seen_digest=plan[2], checkout_key="wrong")
    assert _attempts(card_id) == 2
    real_take = catalog.take_stock

    def another_order_first(wanted):
        db.execute(text("UPDATE products SET stock = 0 WHERE id = :id"), {"id": lamp})
        return real_take(wanted)

    monkeypatch.setattr(catalog, "take_stock", another_order_first)
    with pytest.raises(SoldOut):
        place(shopper, plan[1], payment=PaymentChoice("post_card", card_id=card_id,
                                                       pin=CARD_PIN), digest=plan[2])
    db.expire_all()
    assert _stock(lamp) == 1  # rolled back with the order
    assert db.scalar(select(Order.id)) is None
    assert db.scalar(select(Payment.id).where(Payment.method == "post_card")) is None
    assert payments.account_balance(account) == 100_000
    assert _attempts(card_id) == 0


def _code_sent() -> str:
    return re.search(r"\b(\d{6})\b", sent_messages[-1]["body"]).group(1)


@pytest.mark.commits  # tries and codes are kept on a connection of their own
def test_the_one_time_code_is_for_the_confirmed_total_only(shopper, baghdad_shop, shelf,
                                                           make_card):
    """A card the shopper does not hold: the right PIN sends a code for the total the
    shopper confirmed, before any stock is locked. A wrong code, or the code after the
    price moved, is refused with nothing placed and the code not spent; the code pays
    the amount it was sent for."""
    lamp = product(baghdad_shop, shelf, stock=3, price=20_000).id
    card = make_card(balance=500_000)  # the holder's, not linked to this shopper
    sent_messages.clear()
    user_id, dest, digest = _plan(shopper, lamp)
    by_pin = PaymentChoice("post_card", card_number=card.number, pin=CARD_PIN)
    with pytest.raises(OneTimeCodeSent):
        place(shopper, dest, payment=by_pin, digest=digest, key="c1")
    code = _code_sent()
    total = checkout.quote_cart(shopper, checkout.destination_for(shopper, **dest)).total
    sent = db.scalar(select(OneTimeCode))
    assert (sent.amount, sent.currency, sent.purpose, sent.used_at) == (total, "IQD",
                                                                         "shop_order", None)
    assert _stock(lamp) == 3 and db.scalar(select(Order.id)) is None

    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(WrongOneTimeCode):
        place(shopper, dest, payment=PaymentChoice("post_card", card_number=card.number,
                                                   one_time_code=wrong),
              digest=digest, key="c2")
    # The price moves after the code was sent: the old confirmation is refused before
    # the code is even tried, and the new total is not the code's amount.
    with unit_of_work():
        db.get(Product, lamp).price = 25_000
    by_code = PaymentChoice("post_card", card_number=card.number, one_time_code=code)
    with pytest.raises(PriceChanged) as changed:
        place(shopper, dest, payment=by_code, digest=digest, key="c3")
    new_digest = changed.value.quote.digest
    with pytest.raises(WrongOneTimeCode):
        place(shopper, dest, payment=by_code, digest=new_digest, key="c4")
    db.expire_all()
    assert db.scalar(select(Order.id)) is None and _stock(lamp) == 3
    assert db.scalar(select(OneTimeCode.used_at)) is None
    # Back at the price the code was sent for, with its last try: it pays.
    with unit_of_work():
        db.get(Product, lamp).price = 20_000
    order = place(shopper, dest, payment=by_code, digest=digest, key="c5")
    assert order.total == total and _stock(lamp) == 2
    assert db.scalar(select(OneTimeCode.used_at)) is not None


@pytest.mark.commits  # the stranger's refused PIN is kept on a connection of its own
def test_a_strangers_wrong_pin_gets_the_one_answer_and_locks_no_stock(
        shopper, baghdad_shop, shelf, make_card):
    lamp = product(baghdad_shop, shelf, stock=1, price=20_000).id
    card = make_card(balance=100_000)
    user_id, dest, digest = _plan(shopper, lamp)
    with pytest.raises(CardRefused):
        place(shopper, dest, payment=PaymentChoice("post_card", card_number=card.number,
                                                   pin="9999"), digest=digest)
    assert _attempts(card.id) == 1 and _stock(lamp) == 1


def test_a_check_pays_only_the_payment_it_was_made_for(app_ctx, shopper, make_card):
    """check_card_for_payment's result is spent once, for its amount, currency, purpose
    and actor, in its own transaction; it cannot be made by hand."""
    card = make_card(balance=100_000, user_id=shopper.id)
    kw = dict(currency="IQD", reference_kind="shop_order", reference_id="1",
              purpose="shop_order", actor_id=shopper.id)

    def check(amount=5_000):
        return payments.check_card_for_payment(card_number=card.number, pin=CARD_PIN,
                                               amount=amount, currency="IQD",
                                               purpose="shop_order", actor_id=shopper.id)

    with pytest.raises(TypeError):
        payments.VerifiedCard(card.id, 5_000, "IQD", "shop_order", shopper.id, None, object())
    verified = check()
    with pytest.raises(IdempotencyConflict):
        payments.hold_verified(verified, amount=9_000, idempotency_key="h0", **kw)
    with pytest.raises(IdempotencyConflict):  # another actor
        payments.hold_verified(verified, amount=5_000, idempotency_key="h0",
                               **{**kw, "actor_id": shopper.id + 1000})
    verified = check()
    p = payments.hold_verified(verified, amount=5_000, idempotency_key="h1", **kw)
    assert p.status == "pending" and p.card_id == card.id
    with pytest.raises(IdempotencyConflict):  # spent
        payments.hold_verified(verified, amount=5_000, idempotency_key="h2", **kw)
    verified = check()
    db.rollback()  # another transaction: another request
    with pytest.raises(IdempotencyConflict):
        payments.pay_verified(verified, amount=5_000, idempotency_key="h3", **kw)
    assert db.get(PostCard, card.id).failed_pin_attempts == 0
