"""Orders on PostgreSQL: paid only from payment.succeeded (post card hold and capture,
direct post card, Stripe against localstripe), expiry gives stock and holds back,
cancelling refunds, parcels move consignments, and one shopper never reaches another's
order."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.database import db, unit_of_work, utcnow
from app.errors import NotFound
from app.events import DomainEvent
from app.jobs import drain
from payments.errors import CardRefused, InsufficientFunds
from payments.models import Payment
from shop.jobs import expire_unpaid_orders
from shop.models import Order, OrderEvent, Product
from shop.services import orders
from shop.services.checkout import PaymentChoice
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    _fast_pins,
    clerk,
    localstripe,
    make_card,
    office,
    stripe_app,
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
    shelf,
    shopper,
)

OK_CARD = "4242424242424242"


def _events(name: str) -> list[dict]:
    return [e.payload for e in db.scalars(select(DomainEvent).where(DomainEvent.name == name))]


def balance(account_id: int) -> int:
    """A card's balance now, by account id (drain() detaches the objects a test holds)."""
    from payments.models import Account

    return db.get(Account, account_id, populate_existing=True).balance


def _order(order_id: int) -> Order:
    db.rollback()  # a fresh look, without expiring what the test holds
    order = db.get(Order, order_id, populate_existing=True)
    for c in order.consignments:
        db.refresh(c)
    return order


@pytest.fixture()
def lamp(baghdad_shop, shelf) -> int:
    return product(baghdad_shop, shelf, price=20_000, weight_g=500, stock=3).id


@dataclass(frozen=True)
class Placed:
    """What a test needs of a placed order; plain values survive drain()'s new session."""

    id: int
    payment_id: int | None
    total: int


def _placed(order: Order) -> Placed:
    return Placed(order.id, order.payment_id, order.total)


def _checkout(shopper, lamp, payment, quantity=1) -> Placed:
    put_in_cart(shopper, lamp, quantity)
    return _placed(place(shopper, door(make_address(shopper)), payment=payment))


def stock(product_id: int) -> int:
    return db.get(Product, product_id, populate_existing=True).stock


def test_post_card_is_held_at_checkout_then_captured_and_the_order_paid(
        app, shopper, lamp, make_card):
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    card_account = card.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN))
    total = order.total  # 20,000 + 5,000 delivery
    assert total == 25_000
    held = db.get(Payment, order.payment_id)
    assert (held.status, held.amount, held.reference_kind) == ("pending", total, "shop_order")
    assert balance(card_account) == 100_000 - total  # reserved, not spendable
    assert _order(order.id).status == "pending_payment"

    drain(app)  # order.placed -> capture -> payment.succeeded -> paid
    paid = _order(order.id)
    assert paid.status == "paid" and paid.paid_at is not None
    assert db.get(Payment, order.payment_id).status == "succeeded"
    assert [c.status for c in paid.consignments] == ["open"]
    assert [p["order_id"] for p in _events("order.paid")] == [order.id]
    assert [(e.from_status, e.to_status) for e in paid.history
            if e.consignment_id is None] == [(None, "pending_payment"),
                                              ("pending_payment", "paid")]
    assert balance(card_account) == 100_000 - total
    drain(app)
    assert len(_events("order.paid")) == 1
    assert ledger_problems() == []


def test_confirming_the_order_captures_and_marks_it_paid_in_one_job(
        app, shopper, lamp, make_card):
    """The shopper waits for "paid": the confirmation job captures the hold and marks
    the order paid in one transaction; the captured payment's own payment.succeeded
    job then changes nothing (no second paid, no refund)."""
    from app.database import unit_of_work
    from shop.services import orders as order_service

    card = make_card(balance=100_000, user_id=shopper.id)
    card_account = card.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN))
    with unit_of_work():
        assert order_service.confirm_order(order.id) is True
    paid = _order(order.id)
    assert paid.status == "paid" and [c.status for c in paid.consignments] == ["open"]
    assert db.get(Payment, order.payment_id).status == "succeeded"
    with unit_of_work():
        assert order_service.confirm_order(order.id) is False  # a second delivery
    drain(app)  # order.placed's own confirmation and payment.succeeded: nothing more
    assert _order(order.id).status == "paid"
    assert len(_events("order.paid")) == 1
    assert db.get(Payment, order.payment_id).refunded_amount == 0
    assert balance(card_account) == 100_000 - order.total
    assert ledger_problems() == []


def test_holder_pays_with_their_own_card_chosen_by_id(app, shopper, lamp, make_card):
    mine = make_card(balance=50_000, user_id=shopper.id)
    mine_account = mine.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_id=mine.id, pin=CARD_PIN))
    drain(app)
    assert _order(order.id).status == "paid" and balance(mine_account) == 25_000


def test_someone_elses_card_by_id_is_not_found(shopper, lamp, make_card):
    other = make_shopper("Card Owner")
    theirs = make_card(balance=50_000, user_id=other.id)
    with pytest.raises(NotFound):
        _checkout(shopper, lamp, PaymentChoice("post_card", card_id=theirs.id, pin=CARD_PIN))
    assert db.scalar(select(Order)) is None and balance(theirs.account_id) == 50_000


@pytest.mark.parametrize(("funds", "pin", "error"), [
    (100_000, "9999", CardRefused),  # not the shopper's card: the stranger's one answer
    (10_000, CARD_PIN, InsufficientFunds),
])
@pytest.mark.commits  # wrong PIN attempts are kept on a connection of their own
def test_refused_card_leaves_no_order_and_no_reservation(shopper, lamp, make_card, funds,
                                                         pin, error):
    # A card of the shopper's own is told why; another's PIN gets the stranger's answer.
    card = make_card(balance=funds, user_id=shopper.id if error is InsufficientFunds else None)
    card_account = card.account_id
    with pytest.raises(error):
        _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number, pin=pin))
    db.expire_all()
    assert db.scalar(select(Order)) is None
    assert stock(lamp) == 3
    assert balance(card_account) == funds
    assert _events("order.placed") == []


def test_direct_post_card_payment_still_waits_for_payment_succeeded(app, shopper, lamp,
                                                                    make_card):
    hold = app.config["SHOP_POST_CARD_HOLD"]
    app.config["SHOP_POST_CARD_HOLD"] = False
    try:
        card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
        card_account = card.account_id
        order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                       pin=CARD_PIN))
    finally:
        app.config["SHOP_POST_CARD_HOLD"] = hold
    assert db.get(Payment, order.payment_id).status == "succeeded"
    assert _order(order.id).status == "pending_payment"  # not until the event is handled
    assert balance(card_account) == 100_000 - order.total  # taken at once, no hold
    drain(app)
    assert _order(order.id).status == "paid"


def test_stripe_payment_marks_the_order_paid_only_from_payment_succeeded(
        stripe_app, shopper, lamp):
    from payments import gateway, services
    from payments.rates import add_rate

    add_rate("USD", "1310")
    order = _checkout(shopper, lamp, PaymentChoice("stripe"))
    with unit_of_work():
        start = orders.start_card_payment(order.id, shopper.id)
    # 25,000 IQD at 1,310 IQD per USD: 19.08 USD, the rate kept on the payment.
    assert (start.charged_amount, start.charged_currency) == (1908, "USD")
    pm = gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": OK_CARD, "exp_month": 12, "exp_year": 2034,
                                 "cvc": "123"}}).id
    with unit_of_work():  # payments' services flush only; the caller owns the transaction
        result = services.confirm_card_payment(start.payment.id, payment_method=pm,
                                               payer_user_id=shopper.id)
    assert result["status"] == "succeeded"
    drain(stripe_app)
    # The browser said succeeded; the order waits for the server's own word.
    assert _order(order.id).status == "pending_payment"
    with unit_of_work():
        services.refresh_card_payment(start.payment.id, user_id=shopper.id)  # server re-fetch
    drain(stripe_app)
    paid = _order(order.id)
    assert paid.status == "paid" and paid.payment_id == start.payment.id
    assert ledger_problems() == []


def test_unpaid_order_expires_stock_comes_back_and_the_hold_is_voided(app, shopper, lamp,
                                                                      make_card):
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    card_account = card.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN), quantity=2)
    assert stock(lamp) == 1 and balance(card_account) == 100_000 - order.total
    assert expire_unpaid_orders() == []  # not yet due
    db.get(Order, order.id).expires_at = utcnow() - timedelta(seconds=1)
    db.commit()

    assert expire_unpaid_orders() == [order.id]
    gone = _order(order.id)
    assert gone.status == "expired" and gone.closed_at is not None
    assert [c.status for c in gone.consignments] == ["expired"]
    assert stock(lamp) == 3
    assert db.get(Payment, order.payment_id).status == "cancelled"
    assert balance(card_account) == 100_000
    assert expire_unpaid_orders() == []  # twice changes nothing
    assert stock(lamp) == 3
    drain(app)  # the confirmation job comes too late: nothing is captured
    assert balance(card_account) == 100_000 and _order(order.id).status == "expired"
    assert ledger_problems() == []


def test_payment_arriving_after_expiry_is_given_back(app, shopper, lamp, make_card):
    hold = app.config["SHOP_POST_CARD_HOLD"]
    app.config["SHOP_POST_CARD_HOLD"] = False
    try:
        card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
        card_account = card.account_id
        order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                       pin=CARD_PIN))
    finally:
        app.config["SHOP_POST_CARD_HOLD"] = hold
    db.get(Order, order.id).expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert expire_unpaid_orders() == [order.id]
    drain(app)  # payment.succeeded finds the order expired
    assert _order(order.id).status == "expired"
    assert db.get(Payment, order.payment_id).status == "refunded"
    assert balance(card_account) == 100_000
    assert ledger_problems() == []


def test_cancelling_a_paid_order_refunds_and_restores_stock(app, shopper, lamp, make_card):
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    card_account = card.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN), quantity=2)
    drain(app)
    assert _order(order.id).status == "paid" and stock(lamp) == 1

    with unit_of_work():
        orders.cancel_order(order.id, shopper.id)
    drain(app)
    done = _order(order.id)
    assert done.status == "cancelled" and done.refunded_amount == done.total
    assert [c.status for c in done.consignments] == ["cancelled"]
    assert stock(lamp) == 3
    assert db.get(Payment, order.payment_id).status == "refunded"
    assert balance(card_account) == 100_000
    assert [p["order_id"] for p in _events("order.cancelled")] == [order.id]
    with pytest.raises(orders.NotCancellable):
        orders.cancel_order(order.id, shopper.id)
    assert ledger_problems() == []


def test_cancelling_before_payment_releases_the_hold(app, shopper, lamp, make_card):
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    card_account = card.account_id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN))
    with unit_of_work():
        orders.cancel_order(order.id, shopper.id)
    drain(app)
    assert _order(order.id).status == "cancelled"
    assert db.get(Payment, order.payment_id).status == "cancelled"
    assert balance(card_account) == 100_000 and stock(lamp) == 3


def test_another_shoppers_order_is_not_found(shopper, lamp):
    order = _checkout(shopper, lamp, PaymentChoice("stripe"))
    stranger = make_shopper("Stranger")
    with pytest.raises(NotFound):
        orders.owned_order(order.id, stranger.id)
    with pytest.raises(NotFound):
        orders.cancel_order(order.id, stranger.id)
    with pytest.raises(NotFound):
        orders.start_card_payment(order.id, stranger.id)
    assert _order(order.id).status == "pending_payment"


def test_parcel_scans_move_the_consignment_and_the_order(app, shopper, lamp, make_card,
                                                         clerk, office):
    from tests.tracking.helpers import domestic_draft
    from tracking.services import events as ev
    from tracking.services.parcels import preadvise

    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN))
    drain(app)
    [c] = _order(order.id).consignments
    parcel = preadvise(domestic_draft(pickup_office_id=office.id),
                       order_ref=f"consignment:{c.id}")
    orders.record_handover(c.id, parcel_id=parcel.id, tracking_number=parcel.tracking_number,
                           actor_id=None)
    db.commit()
    moved = _order(order.id)
    assert (moved.status, moved.consignments[0].status) == ("processing", "ready")
    with pytest.raises(orders.NotCancellable):
        orders.cancel_order(order.id, shopper.id)

    for code, kw in (("EMA", {}), ("EMI", {"receiver_name": "Zainab",
                                            "receiver_id_number": "A1234567"})):
        # record_scan flushes; the scan's unit of work commits it (as the scan page does).
        with unit_of_work():
            out = ev.record_scan(number=parcel.tracking_number, code=code,
                                 office_id=office.id, actor_id=clerk.id, **kw)
        assert out.outcome == "accepted", out.reason
        drain(app)
        if code == "EMA":
            assert _order(order.id).status == "shipped"
    done = _order(order.id)
    assert (done.status, done.consignments[0].status) == ("delivered", "delivered")
    assert done.consignments[0].delivered_at is not None
    steps = [e.to_status for e in db.scalars(select(OrderEvent).where(
        OrderEvent.order_id == order.id, OrderEvent.consignment_id.is_(None))
        .order_by(OrderEvent.id))]
    assert steps == ["pending_payment", "paid", "processing", "shipped", "delivered"]


def test_a_consignment_cancelled_by_its_merchant_is_refunded_in_part(app, shopper, make_card,
                                                                     baghdad_shop, shelf):
    from tests.shop.helpers import make_merchant

    other = make_merchant()
    db.commit()
    a = product(baghdad_shop, shelf, price=10_000)
    b = product(other, shelf, price=30_000)
    put_in_cart(shopper, a)
    put_in_cart(shopper, b)
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    card_account = card.account_id
    b_id = b.id
    order = _placed(place(shopper, door(make_address(shopper)),
                          payment=PaymentChoice("post_card", card_number=card.number,
                                                pin=CARD_PIN)))
    drain(app)
    share = next(c for c in _order(order.id).consignments if c.merchant_id == other.id)
    orders.cancel_consignment(share.id, actor_id=other.owner_id, reason="damaged in stock")
    db.commit()
    drain(app)
    part = _order(order.id)
    assert part.status == "partially_refunded" and part.refunded_amount == share.total
    assert balance(card_account) == 100_000 - (part.total - share.total)
    assert stock(b_id) == 10
    assert ledger_problems() == []


def test_transition_table_refuses_moves_it_does_not_list(shopper, lamp):
    order = _checkout(shopper, lamp, PaymentChoice("stripe"))
    with pytest.raises(orders.OrderStateError):
        orders.apply_transition(db.get(Order, order.id), orders.O.SHIPPED)
    db.rollback()
    assert _order(order.id).status == "pending_payment"


def test_a_bank_card_payment_comes_back_to_the_order_page_and_its_receipt_names_the_order(
        stripe_app, shopper, lamp):
    """After the bank's answer the shopper lands on the order page (no extra click), which
    shows the payment and, once booked, the order paid; the receipt prints the order's
    number (not payments' internal reference) and the card's last 4 digits."""
    import io

    from pypdf import PdfReader

    from payments import gateway
    from payments.rates import add_rate
    from tests.shop.checkout_helpers import login

    add_rate("USD", "1310")
    order = _checkout(shopper, lamp, PaymentChoice("stripe"))
    number = db.get(Order, order.id).number
    client = stripe_app.test_client()
    login(client, shopper)
    res = client.post(f"/shop/orders/{order.id}/pay")
    assert res.status_code == 302 and "/payments/pay/" in res.headers["Location"]
    pid = int(res.headers["Location"].rstrip("/").split("/")[-1])
    pm = gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": "5555555555554444", "exp_month": 12,
                                 "exp_year": 2034, "cvc": "123"}}).id
    answer = client.post(f"/payments/pay/{pid}/confirm", json={"payment_method": pm})
    assert answer.get_json()["status"] == "succeeded"
    back = client.get(answer.get_json()["next"])
    assert back.status_code == 302 and back.headers["Location"] == f"/shop/orders/{order.id}"
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    # "Payment received. Thank you." and the payment paid, before the order is booked.
    assert "وصلنا المبلغ. شكرًا لك." in page and 'data-payment-status="succeeded"' in page
    assert "ادفع ببطاقة مصرفية" not in page  # no second "pay by bank card" button
    drain(stripe_app)
    page = client.get(f"/shop/orders/{order.id}").get_data(as_text=True)
    assert 'id="order-status" data-status="paid"' in page

    receipt = client.get(f"/payments/receipts/{pid}.pdf")
    text = PdfReader(io.BytesIO(receipt.data)).pages[0].extract_text()
    assert number in text and "4444" in text
    assert "shop_order" not in text and "5555555555554444" not in text
    assert ledger_problems() == []


def test_a_refused_bank_card_comes_back_to_the_order_page_to_try_again(stripe_app, shopper,
                                                                       lamp):
    from payments import gateway
    from payments.rates import add_rate
    from tests.shop.checkout_helpers import login

    add_rate("USD", "1310")
    order = _checkout(shopper, lamp, PaymentChoice("stripe"))
    client = stripe_app.test_client()
    login(client, shopper)
    pid = int(client.post(f"/shop/orders/{order.id}/pay").headers["Location"].split("/")[-1])
    pm = gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000000000000341", "exp_month": 12,
                                 "exp_year": 2034, "cvc": "123"}}).id
    answer = client.post(f"/payments/pay/{pid}/confirm", json={"payment_method": pm})
    assert answer.get_json()["status"] == "failed"
    back = client.get(answer.get_json()["next"])
    assert back.headers["Location"] == f"/shop/orders/{order.id}"
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    # "The bank refused the payment. Nothing was charged; you can try again."
    assert "رفض المصرف الدفع" in page and 'data-payment-status="failed"' in page
    assert f'action="/shop/orders/{order.id}/pay"' in page


def test_the_post_card_statement_names_the_order_and_its_shop(app, client, shopper, lamp,
                                                             make_card):
    """Each line of the holder's statement says what it paid: "Order BR… from <shop>",
    in Arabic first, on the page and on the receipt; never payments' shop_order id."""
    from tests.shop.checkout_helpers import login

    card = make_card(balance=100_000, user_id=shopper.id)
    card_id = card.id
    order = _checkout(shopper, lamp, PaymentChoice("post_card", card_number=card.number,
                                                   pin=CARD_PIN))
    drain(app)
    placed = _order(order.id)
    number, shop_ar = placed.number, placed.consignments[0].merchant.name_ar
    login(client, shopper)
    page = client.get(f"/payments/cards/{card_id}/statement").get_data(as_text=True)
    assert f"الطلب {number} من {shop_ar}" in page
    assert f"shop_order {order.id}" not in page
