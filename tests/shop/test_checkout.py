"""Checkout on PostgreSQL: totals from the server's prices and stored rates, delivery
zones, the lines of foreign items, re-confirming after a price change, and the race for
the last unit."""

# ruff: noqa: F811  (pytest fixtures imported from tests.shop.checkout_helpers)

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.database import db, unit_of_work, utcnow
from app.errors import ValidationFailed
from app.events import DomainEvent
from shop.models import Cart, Consignment, Order, OrderEvent, Product
from shop.services import checkout
from shop.services.addresses import pickup_offices
from shop.services.checkout import PriceChanged, SoldOut
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    door,
    istanbul_shop,
    make_address,
    make_shopper,
    pickup,
    place,
    product,
    put_in_cart,
    rates,
    shelf,
    shopper,
)
from tests.shop.helpers import make_merchant, make_office


def test_local_order_totals_and_the_stock_taken(shopper, baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf, price=10_000, weight_g=500, stock=5)
    put_in_cart(shopper, lamp, 2)
    order = place(shopper, door(make_address(shopper, "IQ-BG")))

    # 2 x 10,000; one kilogram inside Baghdad: 3,000, brought to the door: +2,000.
    assert (order.items_total, order.delivery_fee, order.total) == (20_000, 5_000, 25_000)
    assert (order.shipping_fee, order.duty_estimate, order.handling_fee) == (0, 0, 0)
    assert order.status == "pending_payment" and order.expires_at > order.placed_at
    db.expire_all()
    assert db.get(Product, lamp.id).stock == 3
    assert db.scalar(select(Cart).where(Cart.user_id == shopper.id)).lines == []
    [c] = order.consignments
    assert (c.merchant_id, c.zone, c.total, c.status) == (
        baghdad_shop.id, "same_governorate", 25_000, "awaiting_payment")
    assert [e.to_status for e in db.scalars(select(OrderEvent))] == ["pending_payment"]
    placed = db.scalars(select(DomainEvent).where(DomainEvent.name == "order.placed")).one()
    assert placed.payload["order_id"] == order.id
    assert placed.payload["merchant_ids"] == [baghdad_shop.id]


@pytest.mark.parametrize(("governorate", "how", "fee"), [
    ("IQ-BG", "door", 3_000 + 2_000),
    ("IQ-BA", "door", 6_000 + 2_000),   # Basra: another governorate
    ("IQ-AR", "door", 8_000 + 2_000),   # Erbil: into the Kurdistan Region
    ("IQ-HA", "pickup", 8_000),         # Halabja, collected at the post office
    ("IQ-NA", "pickup", 6_000),
])
def test_delivery_fee_by_zone(shopper, baghdad_shop, shelf, governorate, how, fee):
    put_in_cart(shopper, product(baghdad_shop, shelf, weight_g=900))
    if how == "door":
        dest = door(make_address(shopper, governorate))
    else:
        office = make_office()
        office.governorate = governorate
        db.commit()
        dest = pickup(office)
    order = place(shopper, dest)
    assert order.delivery_fee == fee
    assert order.delivery_method == how and order.governorate == governorate


def test_weight_over_the_first_kilogram_costs_per_started_kilogram(shopper, baghdad_shop,
                                                                    shelf):
    put_in_cart(shopper, product(baghdad_shop, shelf, weight_g=1_250), 2)  # 2.5 kg
    order = place(shopper, door(make_address(shopper, "IQ-BA")))
    assert order.delivery_fee == 6_000 + 2 * 1_000 + 2_000


def test_foreign_items_have_shipping_duty_and_handling_lines(shopper, istanbul_shop, shelf,
                                                             rates):
    from tracking.models import TariffLine

    db.add(TariffLine(hs_prefix="8517", rate_bp=500, description_en="Phones",
                      description_ar="هواتف"))
    db.commit()
    phone = product(istanbul_shop, shelf, price=50_000, weight_g=400, hs_code="851712")
    scarf = product(istanbul_shop, shelf, price=25_000, weight_g=300, hs_code="611710")
    put_in_cart(shopper, phone)
    put_in_cart(shopper, scarf, 2)
    order = place(shopper, door(make_address(shopper, "IQ-BG")))

    # 500.00 TRY and 2 x 250.00 TRY at 40 IQD per lira.
    assert order.items_total == 20_000 + 20_000
    # Phones 5 % from tracking's tariff; the scarf has no tariff line: the 10 % default.
    assert order.duty_estimate == 1_000 + 2_000
    assert order.shipping_fee == 10_000 + 12_000      # 1 kg started
    assert order.handling_fee == 5_000
    assert order.delivery_fee == 3_000 + 2_000        # from the office of exchange, Baghdad
    assert order.total == 40_000 + 3_000 + 22_000 + 5_000 + 5_000
    assert order.rates == {"TRY": {"rate": "40", "id": rates["TRY"].id}}
    lines = {ln.product_id: ln for ln in order.lines}
    assert (lines[phone.id].unit_price, lines[phone.id].currency) == (50_000, "TRY")
    assert lines[phone.id].rate_id == rates["TRY"].id and lines[phone.id].duty_rate_bps == 500
    assert order.consignments[0].international


def test_mixed_cart_is_split_into_one_consignment_per_merchant(shopper, baghdad_shop,
                                                               istanbul_shop, shelf, rates):
    basra = make_merchant()
    basra.governorate = "IQ-BA"
    db.commit()
    for shop in (baghdad_shop, istanbul_shop, basra):
        put_in_cart(shopper, product(shop, shelf, price=10_000, weight_g=500))
    order = place(shopper, door(make_address(shopper, "IQ-BA")))
    by_merchant = {c.merchant_id: c for c in order.consignments}
    assert set(by_merchant) == {baghdad_shop.id, istanbul_shop.id, basra.id}
    assert by_merchant[basra.id].zone == "same_governorate"
    assert by_merchant[baghdad_shop.id].zone == "other_governorate"
    assert by_merchant[istanbul_shop.id].international
    assert sum(c.total for c in order.consignments) == order.total
    assert {ln.consignment_id for ln in order.lines} == set(
        c.id for c in order.consignments)


def test_price_change_after_the_quote_asks_the_shopper_to_confirm_again(
        shopper, baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf, price=10_000)
    put_in_cart(shopper, lamp)
    dest = door(make_address(shopper))
    seen = checkout.quote_cart(shopper, checkout.destination_for(shopper, **dest))
    lamp.price = 12_000
    db.commit()

    with pytest.raises(PriceChanged) as info:
        place(shopper, dest, digest=seen.digest)
    new = info.value.quote
    assert new.total == seen.total + 2_000 and new.price_changed
    assert db.scalar(select(Order)) is None
    assert db.get(Product, lamp.id).stock == 10  # nothing reserved

    order = place(shopper, dest, digest=new.digest)  # confirmed again
    assert order.items_total == 12_000


def test_exchange_rate_change_also_needs_a_new_confirmation(shopper, istanbul_shop, shelf,
                                                            rates):
    from payments.rates import add_rate

    put_in_cart(shopper, product(istanbul_shop, shelf, price=50_000))
    dest = door(make_address(shopper))
    seen = checkout.quote_cart(shopper, checkout.destination_for(shopper, **dest))
    with unit_of_work():  # payments' add_rate flushes only; the rate must outlive the refusal
        new_rate = add_rate("TRY", "41")
    with pytest.raises(PriceChanged) as info:
        place(shopper, dest, digest=seen.digest)
    order = place(shopper, dest, digest=info.value.quote.digest)
    assert order.items_total == 20_500 and order.rates["TRY"]["id"] == new_rate.id


def test_same_checkout_key_twice_places_one_order(shopper, baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf, stock=5)
    put_in_cart(shopper, lamp)
    dest = door(make_address(shopper))
    first = place(shopper, dest, key="same-key")
    again = place(shopper, dest, key="same-key", digest="whatever")
    assert again.id == first.id
    assert db.scalar(select(Order.id).where(Order.id != first.id)) is None
    assert db.get(Product, lamp.id).stock == 4


def test_bad_destination_changes_nothing(shopper, baghdad_shop, shelf):
    from app.errors import NotFound, ValidationFailed

    lamp = product(baghdad_shop, shelf)
    put_in_cart(shopper, lamp)
    other = make_shopper("Other")
    theirs = make_address(other)
    with pytest.raises(NotFound):
        place(shopper, door(theirs), digest="x")
    with pytest.raises(ValidationFailed):
        place(shopper, {"method": "door"}, digest="x")
    with pytest.raises(ValidationFailed):
        place(shopper, pickup(make_office(), phone="12345"), digest="x")
    assert db.scalar(select(Order)) is None and db.get(Product, lamp.id).stock == 10


def test_inactive_product_cannot_be_checked_out(shopper, baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf)
    put_in_cart(shopper, lamp)
    dest = door(make_address(shopper))
    lamp.active = False
    db.commit()
    with pytest.raises(SoldOut):
        place(shopper, dest)


@pytest.mark.commits  # threads race on their own sessions
def test_two_shoppers_racing_for_the_last_unit(app, baghdad_shop, shelf):
    """Eight shoppers, one unit: exactly one order, the others told it is sold out."""
    last = product(baghdad_shop, shelf, stock=1)
    people = [make_shopper(f"Racer {i}") for i in range(8)]
    plans = []
    for person in people:
        put_in_cart(person, last)
        dest = door(make_address(person))
        quote = checkout.quote_cart(person, checkout.destination_for(person, **dest))
        plans.append((person.id, dest, quote.digest))
    db.remove()
    barrier = threading.Barrier(len(plans))
    results: list[object] = []

    def run(user_id, dest, digest):
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    order = checkout.place_order(
                        user_id, dest, payment=checkout.PaymentChoice("stripe"),
                        seen_digest=digest, checkout_key=f"race-{user_id}")
                results.append(order.id)
            except SoldOut as exc:
                results.append(f"{exc.code}: {exc.message}")
            finally:
                db.remove()

    threads = [threading.Thread(target=run, args=plan) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1 and len(losers) == 7
    # Each loser hears that it is sold out, naming the product.
    assert all(m.startswith("sold_out: ") and "Product" in m for m in losers)
    db.expire_all()
    assert db.get(Product, last.id).stock == 0
    assert db.scalar(select(Consignment.order_id)) == winners[0]


def test_a_closed_office_is_not_offered_for_pickup_nor_accepted(shopper, baghdad_shop, shelf):
    open_office, closed = make_office(), make_office()
    closed.closed_at = utcnow()
    db.commit()
    offered = {o.id for o in pickup_offices()}
    assert open_office.id in offered and closed.id not in offered
    put_in_cart(shopper, product(baghdad_shop, shelf))
    with pytest.raises(ValidationFailed):
        place(shopper, pickup(closed), digest="x")
    assert db.scalar(select(Order)) is None
    assert place(shopper, pickup(open_office)).pickup_office_id == open_office.id
