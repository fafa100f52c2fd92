"""A shopper is told what happens to their order and buy-for-me request, in their own
language on the channels they chose: placed, paid, shipped, refunded, quote ready. Each
message goes once however often its subscriber runs; "none" means nothing at all."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import pytest
from sqlalchemy import select

from app.auth.models import Role, User
from app.database import db, unit_of_work
from app.events import DomainEvent
from app.jobs import drain
from app.notify import Notification, sent_messages
from payments.models import PostCard
from shop.jobs import tell_shopper_order_news
from shop.models import Consignment, ConsignmentStatus
from shop.services import buyforme, orders
from shop.services.checkout import PaymentChoice
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    _fast_pins,
    clerk,
    make_card,
    office,
)
from tests.payments.helpers import CARD_PIN, ledger_problems
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    door,
    make_address,
    make_shopper,
    place,
    product,
    put_in_cart,
    rates,
    shelf,
)
from tests.shop.test_buyforme import REQUEST


@pytest.fixture(autouse=True)
def _clear():
    sent_messages.clear()
    yield
    sent_messages.clear()


def _shopper(locale: str = "ar", *, email: bool = True, sms: bool = True) -> tuple[int, str]:
    user = make_shopper("Zainab Ali")
    user.phone = f"+96477012{user.id:05d}"
    user.locale, user.notify_by_email, user.notify_by_sms = locale, email, sms
    db.commit()
    return user.id, user.email


def _paid_order(app, user_id: int, baghdad_shop, shelf, make_card) -> int:
    lamp_id = product(baghdad_shop, shelf, price=20_000, weight_g=500, stock=3).id
    # Their own card: a stranger's would ask for a one-time code. Its top-up message
    # is not what these tests look at.
    make_card(balance=100_000, user_id=user_id)
    drain(app)
    sent_messages.clear()
    user = db.get(User, user_id)
    [card] = _cards_of(user_id)
    put_in_cart(user, lamp_id)
    order = place(user, door(make_address(user)),
                  payment=PaymentChoice("post_card", card_number=card.number, pin=CARD_PIN))
    order_id = order.id
    drain(app)  # order.placed -> capture -> payment.succeeded -> order.paid -> messages
    return order_id


def _cards_of(user_id: int) -> list[PostCard]:
    return list(db.scalars(select(PostCard).where(PostCard.user_id == user_id)))


def _to(user_id: int) -> list[dict]:
    user = db.get(User, user_id, populate_existing=True)
    return [m for m in sent_messages if user.email == m["email"] or
            (m["phone"] and m["phone"] == user.phone)]


def test_order_placed_and_paid_reach_the_shopper_in_english_by_email_and_sms(
        app, baghdad_shop, shelf, make_card):
    user_id, email = _shopper("en")
    order_id = _paid_order(app, user_id, baghdad_shop, shelf, make_card)
    told = sorted((m["kind"], m["channel"]) for m in _to(user_id))
    assert told == [("order_paid", "email"), ("order_paid", "sms"),
                    ("order_placed", "email"), ("order_placed", "sms")]
    paid_mail = next(m for m in _to(user_id) if m["kind"] == "order_paid"
                     and m["channel"] == "email")
    number = orders.lock_order(order_id).number
    assert paid_mail["email"] == email and number in paid_mail["subject"]
    assert "is paid" in paid_mail["subject"] and "25,000 IQD" in paid_mail["body"]
    assert f"/shop/orders/{order_id}" in paid_mail["body"]
    assert ledger_problems() == []


def test_shipped_consignment_reaches_an_arabic_shopper_by_sms_only(
        app, baghdad_shop, shelf, make_card):
    user_id, _email = _shopper("ar", email=False)
    order_id = _paid_order(app, user_id, baghdad_shop, shelf, make_card)
    sent_messages.clear()
    with unit_of_work():
        c = db.scalar(select(Consignment).where(Consignment.order_id == order_id))
        c.tracking_number = "RR123456785IQ"
        orders.apply_consignment_transition(c, ConsignmentStatus.SHIPPED, reason="test")
    drain(app)
    [sms] = [m for m in _to(user_id) if m["kind"] == "consignment_shipped"]
    assert sms["channel"] == "sms" and sms["locale"] == "ar"
    assert "شُحن طلبك" in sms["body"] and "RR123456785IQ" in sms["body"]
    assert not [m for m in _to(user_id) if m["channel"] == "email"]


def test_refund_of_a_cancelled_order_reaches_the_shopper(app, baghdad_shop, shelf,
                                                         make_card):
    user_id, _email = _shopper("en", sms=False)
    order_id = _paid_order(app, user_id, baghdad_shop, shelf, make_card)
    sent_messages.clear()
    with unit_of_work():
        orders.cancel_order(order_id, user_id)
    drain(app)
    [mail] = [m for m in _to(user_id) if m["kind"] == "refund_made"]
    assert mail["channel"] == "email" and "We refunded 25,000 IQD" in mail["subject"]
    assert ledger_problems() == []


def test_a_shopper_who_chose_none_is_told_nothing(app, baghdad_shop, shelf, make_card):
    user_id, _email = _shopper("ar", email=False, sms=False)
    _paid_order(app, user_id, baghdad_shop, shelf, make_card)
    assert _to(user_id) == []
    assert db.scalar(select(Notification).where(Notification.user_id == user_id)) is None


def test_the_subscriber_run_twice_sends_each_message_once(app, baghdad_shop, shelf,
                                                          make_card):
    user_id, _email = _shopper("ar")
    _paid_order(app, user_id, baghdad_shop, shelf, make_card)
    paid = db.scalar(select(DomainEvent).where(DomainEvent.name == "order.paid"))
    with unit_of_work():  # the same event handled again, as a redelivered job would
        tell_shopper_order_news(paid)
        tell_shopper_order_news(paid)
    drain(app)
    kinds = sorted((m["kind"], m["channel"]) for m in _to(user_id))
    assert kinds.count(("order_paid", "sms")) == 1 and kinds.count(("order_paid", "email")) == 1
    assert db.query(Notification).filter_by(kind="order_paid").count() == 2


def test_quote_ready_reaches_the_shopper_with_the_total(app, rates):
    user_id, _email = _shopper("ar", email=False)
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    with unit_of_work():
        rid = buyforme.submit_request(user_id, dict(REQUEST)).id
    with unit_of_work():
        quoted = buyforme.approve_request(rid, reviewer_id=buyer.id, data={})
        total, number = quoted.total, quoted.number
    drain(app)
    [sms] = [m for m in _to(user_id) if m["kind"] == "buy_for_me_quoted"]
    assert number in sms["body"] and f"{total:,} IQD" in sms["body"]
    assert f"/shop/buy-for-me/{rid}" in sms["body"]
