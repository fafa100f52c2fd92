"""Random top-ups, holds, captures, voids, spends and refunds keep every ledger invariant."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)
from sqlalchemy import text

from app.database import Base, db, get_engine, unit_of_work
from payments import cards, services
from payments.errors import InsufficientFunds, RefundTooLarge, TopUpLimitExceeded
from payments.ledger import verify
from payments.models import Account
from tests.payments.conftest import make_user
from tests.payments.helpers import CARD_PIN

amounts = st.integers(min_value=1, max_value=40_000)
_keys = itertools.count()


def key(prefix: str) -> str:
    return f"{prefix}-{next(_keys)}"


def _truncate() -> None:
    db.remove()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class LedgerMachine(RuleBasedStateMachine):
    """The model: what each card should hold, and what each payment may still refund."""

    cards_b = Bundle("cards")
    holds_b = Bundle("holds")
    paid_b = Bundle("paid")

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[int, int] = {}
        self.refundable: dict[int, int] = {}
        self.max_balance = 150_000

    @initialize(target=cards_b)
    def setup(self):
        from app.auth.models import PostOffice

        _truncate()
        from flask import current_app

        current_app.config.update(PAYMENTS_CARD_MAX_BALANCE=self.max_balance,
                                  PAYMENTS_TOPUP_MAX=60_000)
        office = PostOffice(code="P1", name_ar="مكتب", name_en="Office", governorate="IQ-BG")
        db.add(office)
        db.commit()
        self.office_id = office.id
        self.clerk_id = make_user("machine@barid.iq", "clerk", office_id=office.id).id
        made = []
        with unit_of_work():  # issue_card flushes only
            for _ in range(2):
                card = cards.issue_card(holder_name="Ali", national_id="1",
                                        mobile="+9647700000000", pin=CARD_PIN, user_id=None,
                                        clerk_id=self.clerk_id, office_id=office.id)
                self.expected[card.id] = 0
                made.append(card.number)
        return multiple(*made)

    def _card_id(self, number: str) -> int:
        return cards.find_card(number).id

    @rule(card=cards_b, amount=amounts)
    def top_up(self, card, amount):
        cid = self._card_id(card)
        try:
            services.receive_cash(office_id=self.office_id, clerk_id=self.clerk_id,
                                  amount=amount, currency="IQD", reference_kind="post_card",
                                  reference_id=str(cid), purpose="card_topup",
                                  idempotency_key=key("top"))
            db.commit()
            self.expected[cid] += amount
        except TopUpLimitExceeded:
            db.rollback()
            assert amount > 60_000 or self.expected[cid] + amount > self.max_balance

    @rule(target=paid_b, card=cards_b, amount=amounts)
    def spend(self, card, amount):
        cid = self._card_id(card)
        k = key("spend")
        try:
            p = services.pay_with_post_card(
                card_number=card, pin=CARD_PIN, amount=amount, currency="IQD",
                reference_kind="parcel", reference_id=k, purpose="postage",
                idempotency_key=k, actor_id=self.clerk_id, at_counter=True)
            db.commit()
        except InsufficientFunds:
            db.rollback()
            assert amount > self.expected[cid]
            return multiple()
        assert amount <= self.expected[cid]
        self.expected[cid] -= amount
        self.refundable[p.id] = amount
        # The same request again moves nothing.
        again = services.pay_with_post_card(
            card_number=card, pin=CARD_PIN, amount=amount, currency="IQD",
            reference_kind="parcel", reference_id=k, purpose="postage",
            idempotency_key=k, actor_id=self.clerk_id, at_counter=True)
        db.commit()
        assert again.id == p.id
        return p.id

    @rule(target=holds_b, card=cards_b, amount=amounts)
    def authorize(self, card, amount):
        cid = self._card_id(card)
        k = key("hold")
        try:
            p = services.authorize_post_card(
                card_number=card, pin=CARD_PIN, amount=amount, currency="IQD",
                reference_kind="order", reference_id=k, purpose="shop_order",
                idempotency_key=k, actor_id=self.clerk_id, at_counter=True)
            db.commit()
        except InsufficientFunds:
            db.rollback()
            assert amount > self.expected[cid]
            return multiple()
        self.expected[cid] -= amount
        return (p.id, cid, amount)

    @rule(target=paid_b, hold=consumes(holds_b), data=st.data())
    def capture(self, hold, data):
        pid, cid, amount = hold
        take = data.draw(st.integers(min_value=1, max_value=amount))
        services.capture_payment(pid, amount=take)
        db.commit()
        self.expected[cid] += amount - take
        self.refundable[pid] = take
        return pid

    @rule(hold=consumes(holds_b))
    def void(self, hold):
        pid, cid, amount = hold
        services.void_payment(pid)
        services.void_payment(pid)  # twice: resolved once
        db.commit()
        self.expected[cid] += amount

    @rule(pid=paid_b, data=st.data())
    def refund(self, pid, data):
        left = self.refundable[pid]
        amount = data.draw(st.integers(min_value=1, max_value=left + 1000))
        try:
            services.refund(pid, amount, "test", self.clerk_id, key("refund"))
            db.commit()
        except RefundTooLarge:
            db.rollback()
            assert amount > left
            return
        except Exception as exc:  # a fully refunded payment refuses another refund
            db.rollback()
            assert left == 0, exc
            return
        assert amount <= left
        self.refundable[pid] -= amount
        cid = services.get_payment(pid).card_id
        self.expected[cid] += amount

    @invariant()
    def balances_match_the_model(self):
        if not self.expected:
            return
        db.rollback()
        for cid, want in self.expected.items():
            card = cards.get_card(cid)
            assert db.get(Account, card.account_id).balance == want >= 0

    @invariant()
    def ledger_verifies(self):
        if not self.expected:
            return
        db.rollback()
        assert [str(p) for p in verify()] == []

    def teardown(self):
        db.rollback()


@pytest.mark.commits  # empties the ledger between examples itself
def test_random_operations_keep_the_ledger_sound(app_ctx):
    old = {k: app_ctx.config[k] for k in ("PAYMENTS_CARD_MAX_BALANCE", "PAYMENTS_TOPUP_MAX")}
    try:
        LedgerMachine.TestCase.settings = settings(
            max_examples=20, stateful_step_count=20, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        LedgerMachine.TestCase().runTest()
    finally:
        app_ctx.config.update(old)
