"""A merchant editing a product in the portal while shoppers buy it (PostgreSQL): the
product form never writes stock, so a page opened before a sale cannot put the sold unit
back; the stock form goes through the stock service (one locked UPDATE), so a stock set
and checkouts at once never take stock below zero."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import threading

import pytest
from sqlalchemy import func, select

from app.auth.services import hash_password
from app.database import db, unit_of_work
from shop.models import Consignment, Merchant, Product
from shop.services import checkout
from shop.services.checkout import SoldOut
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    PASSWORD,
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


def _form(p: Product, **kw) -> dict:
    data = {"title_ar": p.title_ar, "title_en": p.title_en, "category_id": str(p.category_id),
            "merchant_sku": p.merchant_sku or "", "price": str(p.price),
            "weight_g": str(p.weight_g), "hs_code": p.hs_code,
            "origin_country": p.origin_country, "active": "y"}
    data.update(kw)
    return data


def _login(client, merchant: Merchant) -> None:
    merchant.owner.password_hash = hash_password(PASSWORD)
    db.commit()
    res = client.post("/login", data={"identifier": merchant.owner.email,
                                      "password": PASSWORD})
    assert res.status_code in (302, 303)


def test_a_page_opened_before_a_sale_does_not_put_the_unit_back(client, shopper,
                                                               baghdad_shop, shelf):
    last = product(baghdad_shop, shelf, stock=1, merchant_sku="ONE")
    _login(client, baghdad_shop)
    stale = _form(last, title_en="Renamed", stock="1")  # what the open page held
    assert 'name="stock"' in client.get(f"/merchant/products/{last.id}").get_data(
        as_text=True)  # only the stock form's own field
    put_in_cart(shopper, last)
    place(shopper, door(make_address(shopper)))
    db.expire_all()
    assert db.get(Product, last.id).stock == 0
    assert client.post(f"/merchant/products/{last.id}", data=stale).status_code == 302
    db.expire_all()
    p = db.get(Product, last.id)
    assert (p.title_en, p.stock) == ("Renamed", 0)


@pytest.mark.commits  # threads race on their own sessions
def test_stock_set_while_shoppers_check_out_never_goes_below_zero(app, baghdad_shop, shelf):
    item = product(baghdad_shop, shelf, stock=3, merchant_sku="RACE")
    item_id = item.id
    people = [make_shopper(f"Racer {i}") for i in range(6)]
    plans = []
    for person in people:
        put_in_cart(person, item)
        dest = door(make_address(person))
        quote = checkout.quote_cart(person, checkout.destination_for(person, **dest))
        plans.append((person.id, dest, quote.digest))
    owner_client = app.test_client()
    merchant = db.get(Merchant, baghdad_shop.id)
    _login(owner_client, merchant)
    db.remove()
    barrier = threading.Barrier(len(plans) + 1)
    sold: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()

    def shop(user_id, dest, digest):
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    checkout.place_order(user_id, dest,
                                         payment=checkout.PaymentChoice("stripe"),
                                         seen_digest=digest, checkout_key=f"race-{user_id}")
                with lock:
                    sold.append(user_id)
            except SoldOut:
                with lock:
                    refused.append("sold out")
            finally:
                db.remove()

    def merchant_counts():
        with app.app_context():
            barrier.wait()
            owner_client.post(f"/merchant/products/{item_id}/stock", data={"stock": "2"})
            db.remove()

    threads = [threading.Thread(target=shop, args=plan) for plan in plans]
    threads.append(threading.Thread(target=merchant_counts))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(sold) + len(refused) == 6
    stock = db.scalar(select(Product.stock).where(Product.id == item_id))
    orders = db.scalar(select(func.count()).select_from(Consignment))
    assert stock >= 0 and orders == len(sold)
    # Whatever the order, at most the 3 units there were plus the 2 the merchant counted
    # were sold, and what is left is what the last writer left minus later sales.
    assert len(sold) <= 5 and stock <= 2
