"""16 threads spend from the same cards at once: no card below zero, no money lost or doubled."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest
from sqlalchemy import func, select

from app.database import db
from payments import services
from payments.errors import InsufficientFunds
from payments.models import Account, Payment
from tests.payments.helpers import CARD_PIN, balance, ledger_problems

THREADS = 16
SPENDS_PER_THREAD = 25
START = 60_000


@pytest.mark.commits  # sixteen threads, each with its own session
def test_sixteen_threads_spending_keep_every_invariant(app, make_card):
    cards = [make_card(balance=START) for _ in range(3)]
    numbers = [c.number for c in cards]
    clerk_id = cards[0].issued_by_id  # spending at the counter: no one-time code
    outcomes: list[tuple[str, int, int, str]] = []  # (key, card index, amount, result)
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        rnd = random.Random(n)
        with app.app_context():
            try:
                barrier.wait()
                for i in range(SPENDS_PER_THREAD):
                    # Threads n and n+8 share keys: a retried request from another
                    # process must move the money once.
                    key = f"spend-{n % 8}-{i}"
                    digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
                    idx, amount = digest % 3, 500 + digest % 4500
                    try:
                        services.pay_with_post_card(
                            card_number=numbers[idx], pin=CARD_PIN, amount=amount,
                            currency="IQD", reference_kind="parcel", reference_id=key,
                            purpose="postage", idempotency_key=key, actor_id=clerk_id,
                            at_counter=True)
                        db.commit()
                        result = "ok"
                    except InsufficientFunds:
                        db.rollback()
                        result = "insufficient"
                    with lock:
                        outcomes.append((key, idx, amount, result))
                    if rnd.random() < 0.1:
                        db.remove()
            except BaseException as exc:  # surfaced below
                db.rollback()
                errors.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors

    db.rollback()
    paid = {p.idempotency_key: p for p in db.scalars(select(Payment).where(
        Payment.purpose == "postage"))}
    ok_keys = {k for k, _, _, r in outcomes if r == "ok"}
    assert ok_keys == set(paid)  # every success is one payment, and no payment unreported
    spent = [0, 0, 0]
    for key, p in paid.items():
        idx = numbers.index(p.card.number)
        spent[idx] += p.amount
        assert p.status == "succeeded" and key.startswith("spend-")
    for i, card in enumerate(cards):
        assert balance(card) == START - spent[i] >= 0
    revenue = db.scalar(select(Account.balance).where(Account.code == "revenue:postage:IQD"))
    assert revenue == sum(spent)
    refused = [o for o in outcomes if o[3] == "insufficient"]
    assert refused, "the cards should run dry under this load"
    assert db.scalar(select(func.count()).select_from(Payment)) == len(paid) + 3  # + top-ups
    assert ledger_problems() == []
