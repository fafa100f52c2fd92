"""A stranger's refusal costs the same whatever the reason.

A wrong PIN costs one slow hash (argon2). If "no such card" or "card locked" answered
without one, a stranger could tell from the time alone which numbers are real cards. So
every refusal to a stranger checks exactly one hash: the card's, or one kept for this.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from app.database import db, utcnow
from payments import cards, services
from payments.errors import CardRefused
from payments.models import CardStatus, PostCard


@pytest.fixture()
def hashes_checked(monkeypatch) -> list[int]:
    checked: list[int] = []
    real = PasswordHasher.verify

    def counting(self, hash_, password):
        checked.append(1)
        return real(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return checked


def _stranger_pays(number: str, pin: str = "2580") -> None:
    services.pay_with_post_card(card_number=number, pin=pin, amount=100, currency="IQD",
                                reference_kind="parcel", reference_id="RR000000080IQ",
                                purpose="customs_duty", idempotency_key=f"t-{number}-{pin}",
                                actor_id=None)


def _unused_number() -> str:
    while True:
        number = cards.new_card_number()
        if db.scalar(select(PostCard.id).where(PostCard.number == number)) is None:
            return number


@pytest.mark.parametrize("why", ["no such card", "locked", "frozen", "wrong PIN"])
def test_every_refusal_to_a_stranger_checks_one_hash(app_ctx, make_card, hashes_checked, why):
    card = make_card(balance=1000)
    number = card.number
    if why == "no such card":
        number = _unused_number()
    elif why == "locked":
        db.execute(update(PostCard).where(PostCard.id == card.id).values(locked_at=utcnow()))
    elif why == "frozen":
        db.execute(update(PostCard).where(PostCard.id == card.id)
                   .values(status=CardStatus.FROZEN))
    db.flush()
    hashes_checked.clear()
    with pytest.raises(CardRefused):
        _stranger_pays(number, pin="2580" if why != "wrong PIN" else "1357")
    assert len(hashes_checked) == 1, why
