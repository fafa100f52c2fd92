"""Fixtures for the money side: an office, a clerk, post cards, exchange rates."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from app.database import db, unit_of_work
from tests.payments.helpers import CARD_PIN

_seq = itertools.count(1)
SECRET = "whsec_test_barid"


@pytest.fixture(autouse=True)
def _fast_pins(request):
    """argon2id with small costs: the PIN logic is the same, the suite is faster."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    old = {k: app.config.get(k) for k in ("PIN_ARGON2_TIME_COST", "PIN_ARGON2_MEMORY_KIB",
                                          "PIN_ARGON2_PARALLELISM")}
    app.config.update(PIN_ARGON2_TIME_COST=1, PIN_ARGON2_MEMORY_KIB=1024,
                      PIN_ARGON2_PARALLELISM=1)
    yield
    app.config.update(old)


@pytest.fixture()
def office(app_ctx):
    from app.auth.models import PostOffice

    o = PostOffice(code=f"BGD{next(_seq)}", name_ar="مكتب بريد بغداد",
                   name_en="Baghdad Post Office", governorate="IQ-BG")
    db.add(o)
    db.commit()
    return o


def make_user(email: str, *roles: str, office_id: int | None = None):
    from app.auth.models import User, UserRole

    u = User(email=email, full_name=email.split("@")[0].title(), password_hash="x",
             post_office_id=office_id)
    u.role_rows = [UserRole(role=r) for r in roles]
    db.add(u)
    db.commit()
    return u


@pytest.fixture()
def clerk(app_ctx, office):
    return make_user(f"clerk{next(_seq)}@barid.iq", "clerk", office_id=office.id)


@pytest.fixture()
def make_card(app_ctx, office, clerk):
    """make_card(balance=..., pin=...) -> card, topped up with cash at the counter."""
    from payments import cards, services

    def make(balance: int = 0, pin: str = CARD_PIN, user_id: int | None = None):
        # issue_card and receive_cash flush only: the fixture owns the unit of work.
        with unit_of_work():
            card = cards.issue_card(holder_name="زينب علي",
                                    national_id=f"1990{next(_seq):08d}",
                                    mobile="+9647701234567", pin=pin, user_id=user_id,
                                    clerk_id=clerk.id, office_id=office.id)
            if balance:
                services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=balance,
                                      currency="IQD", reference_kind="post_card",
                                      reference_id=str(card.id), purpose="card_topup",
                                      idempotency_key=f"seed-topup-{card.id}")
        return card

    return make


@pytest.fixture()
def usd_rate(app_ctx):
    from payments.rates import add_rate

    with unit_of_work():  # add_rate flushes only
        return add_rate("USD", Decimal("1310"))


@pytest.fixture(scope="session")
def localstripe():
    from payments.localstripe_server import start

    ls = start()
    yield ls
    ls.stop()


@pytest.fixture()
def stripe_app(app, localstripe):
    keys = ("STRIPE_API_BASE", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
            "STRIPE_WEBHOOK_SECRET")
    old = {k: app.config.get(k) for k in keys}
    app.config.update(STRIPE_API_BASE=localstripe.url, STRIPE_SECRET_KEY="sk_test_barid",
                      STRIPE_PUBLISHABLE_KEY="pk_test_barid", STRIPE_WEBHOOK_SECRET=SECRET)
    with app.app_context():
        yield app
    app.config.update(old)
