"""The merchant API's numbers stay inside their columns: a price, a stock level or an id
beyond the business maxima is a 422 naming the field, and changes nothing; an id past
BIGINT in a path is a 404, in a body or query a 422, never a 500."""

from __future__ import annotations

import pytest

from app.database import db
from app.numbers import MAX_PRICE, MAX_STOCK
from shop.models import Product
from tests.shop.helpers import make_category, make_merchant, make_product
from tests.shop.test_merchant_api import auth, count_products, new_key, product_body

HUGE = 2**70


@pytest.fixture()
def shop(app_ctx):
    merchant = make_merchant()
    category = make_category()
    db.commit()
    return merchant, category


@pytest.mark.parametrize(("field", "value"), [
    ("price", MAX_PRICE + 1), ("price", HUGE), ("price", 0),
    ("stock", MAX_STOCK + 1), ("stock", HUGE), ("stock", -1),
    ("category_id", HUGE), ("category_id", 0), ("weight_g", HUGE),
])
def test_a_product_out_of_range_is_422_with_its_field(client, shop, field, value):
    merchant, category = shop
    secret = new_key(merchant.id)
    body = {**product_body(category.id), field: value}
    r = client.post("/api/v1/products", json=body, headers=auth(secret))
    assert r.status_code == 422, r.json
    assert field in r.json["fields"]
    assert count_products() == 0


def test_the_maxima_themselves_are_taken(client, shop):
    merchant, category = shop
    secret = new_key(merchant.id)
    r = client.post("/api/v1/products", headers=auth(secret),
                    json=product_body(category.id, price=MAX_PRICE, stock=MAX_STOCK))
    assert r.status_code == 201, r.json
    assert (r.json["price"], r.json["stock"]) == (MAX_PRICE, MAX_STOCK)


def test_a_stock_update_out_of_range_changes_nothing(client, shop):
    merchant, category = shop
    product = make_product(merchant, category, stock=3)
    db.commit()
    secret = new_key(merchant.id)
    for item in ({"product_id": product.id, "stock": MAX_STOCK + 1},
                 {"product_id": HUGE, "stock": 1},
                 {"product_id": product.id, "stock": HUGE}):
        r = client.post("/api/v1/products/stock", headers=auth(secret),
                        json={"items": [item]})
        assert r.status_code == 422, r.json
        assert "items" in r.json["fields"]
    db.expire_all()
    assert db.get(Product, product.id).stock == 3


def test_huge_ids_in_paths_and_queries_are_never_a_500(client, shop):
    merchant, _category = shop
    secret = new_key(merchant.id)
    for path in (f"/api/v1/products/{HUGE}", f"/api/v1/orders/{HUGE}",
                 f"/api/v1/consignments/{2**63}"):
        assert client.get(path, headers=auth(secret)).status_code == 404, path
    r = client.get(f"/api/v1/consignments?order_id={HUGE}", headers=auth(secret))
    assert r.status_code == 422 and "order_id" in r.json["fields"]


@pytest.mark.parametrize("product_id", [str(HUGE), "99999999999999999999", "-1", "1e9", "abc"])
def test_a_cart_line_for_an_impossible_product_is_a_message(client, shop, product_id):
    merchant, category = shop
    make_product(merchant, category, stock=5)
    db.commit()
    for path in ("/shop/cart/add", "/shop/cart/update", "/shop/cart/remove"):
        res = client.post(path, data={"product_id": product_id, "quantity": "1"},
                          follow_redirects=True)
        assert res.status_code < 500, (path, res.status_code)
    # Arabic first: "This product is not available."
    res = client.post("/shop/cart/add", data={"product_id": product_id, "quantity": "1"},
                      follow_redirects=True)
    assert "غير متوفر" in res.get_data(as_text=True)

