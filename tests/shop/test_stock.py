"""Stock is changed by the database, never from a number the session read earlier: the
last unit is sold once (PostgreSQL in tests/shop/test_checkout.py, SQLite here), units
given back add to what is there now, and a merchant's count is written whatever the
session had loaded."""

# ruff: noqa: F811  (pytest fixtures imported from tests.shop.checkout_helpers)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.database import db, unit_of_work
from shop.models import Cart, Order, OrderLine, Product
from shop.services import catalog, merchant_api, orders
from shop.services.checkout import SoldOut
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    door,
    make_address,
    place,
    product,
    put_in_cart,
    shelf,
    shopper,
)

ROOT = Path(__file__).resolve().parents[2]


def stock_in_database(product_id: int) -> int:
    """What the row says now, past anything the session has loaded."""
    return db.execute(text("SELECT stock FROM products WHERE id = :id"),
                      {"id": product_id}).scalar_one()


def someone_else_sets_stock(product_id: int, n: int) -> None:
    """A change the session does not see (another request's, in effect): plain SQL
    leaves the loaded Product as it was."""
    db.execute(text("UPDATE products SET stock = :n WHERE id = :id"),
               {"n": n, "id": product_id})


def test_four_shoppers_racing_for_the_last_unit_on_sqlite(tmp_path):
    """The embedded default has no row locks: the conditional UPDATE alone must decide."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.shop.sqlite_race", str(tmp_path), "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dialect"] == "sqlite"
    answers = result["answers"]
    assert len(answers) == 4, answers
    assert [a for a in answers if a.startswith("order ")] != [], answers
    assert sum(a.startswith("order ") for a in answers) == 1, answers
    assert sum(a.startswith("sold_out: ") for a in answers) == 3, answers
    assert (result["stock"], result["orders"], result["units_sold"]) == (0, 1, 1)


def test_taking_stock_goes_by_the_row_not_by_what_the_session_read(baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf, stock=1)
    assert lamp.stock == 1
    someone_else_sets_stock(lamp.id, 0)  # the last one sold meanwhile
    assert catalog.take_stock({lamp.id: 1}) == [lamp.id]
    assert stock_in_database(lamp.id) == 0
    someone_else_sets_stock(lamp.id, 3)
    # Two products, one short: the short one is named and keeps its stock.
    vase = product(baghdad_shop, shelf, stock=2)
    assert catalog.take_stock({vase.id: 1, lamp.id: 4}) == [lamp.id]
    assert (stock_in_database(lamp.id), stock_in_database(vase.id)) == (3, 1)
    # The session's object follows the row, so no later flush writes an old number.
    assert vase.stock == 1
    vase.title_en = "Vase"
    db.flush()
    assert stock_in_database(vase.id) == 1


def test_checkout_refuses_when_the_row_has_fewer_units_than_the_price_saw(
        shopper, baghdad_shop, shelf, monkeypatch):
    """The pricing read two units, then another order took one before the stock was
    taken: sold out, and nothing of the order is written."""
    lamp = product(baghdad_shop, shelf, stock=2)
    put_in_cart(shopper, lamp, 2)
    dest = door(make_address(shopper))
    real_take = catalog.take_stock

    def another_order_first(wanted):
        someone_else_sets_stock(lamp.id, 1)
        return real_take(wanted)

    monkeypatch.setattr(catalog, "take_stock", another_order_first)
    with pytest.raises(SoldOut) as refused:
        place(shopper, dest)
    assert "Product" in str(refused.value.message)
    # The unit of work rolled it all back: no order, no line, the cart still full.
    assert db.scalar(select(Order.id)) is None
    assert db.scalar(select(OrderLine.id)) is None
    assert [ln.quantity for ln in db.scalar(select(Cart)).lines] == [2]


def test_cancelled_order_gives_its_units_back_to_what_is_there_now(shopper, baghdad_shop,
                                                                  shelf):
    lamp = product(baghdad_shop, shelf, stock=5)
    put_in_cart(shopper, lamp, 2)
    order = place(shopper, door(make_address(shopper)))
    assert stock_in_database(lamp.id) == 3
    loaded = db.get(Product, lamp.id)
    assert loaded.stock == 3
    someone_else_sets_stock(lamp.id, 10)  # the merchant restocked meanwhile
    with unit_of_work():
        orders.cancel_order(order.id, shopper.id)
    assert stock_in_database(lamp.id) == 12
    assert loaded.stock == 12


def test_merchant_stock_level_is_written_even_if_the_session_held_the_same_number(
        baghdad_shop, shelf):
    lamp = product(baghdad_shop, shelf, stock=5)
    assert lamp.stock == 5
    someone_else_sets_stock(lamp.id, 0)  # sold out meanwhile
    with unit_of_work():
        merchant_api.set_stock_levels(baghdad_shop.id, [{"product_id": lamp.id, "stock": 5}])
    assert stock_in_database(lamp.id) == 5
    someone_else_sets_stock(lamp.id, 0)
    with unit_of_work():
        catalog.update_product(baghdad_shop.id, lamp.id, {"stock": 5})
    assert stock_in_database(lamp.id) == 5
