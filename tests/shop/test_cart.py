"""The cart: stock-checked quantities with clear messages, the price seen when added,
subtotals per currency and in dinars, the anonymous cart following the shopper into
their account at login, and forms that work with CSRF protection on."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.auth import services as auth
from app.database import db, unit_of_work
from shop.models import Cart, CartLine, Product
from shop.services import catalog
from shop.services.cart import CartOwner, CartRefused, add_to_cart, cart_summary
from tests.shop.helpers import make_merchant, make_product, set_rate

PASSWORD = "correct horse battery"


def _html(response) -> str:
    return response.get_data(as_text=True)


def _add(client, product_id, quantity, **kw):
    return client.post("/shop/cart/add", data={"product_id": product_id, "quantity": quantity},
                       follow_redirects=True, **kw)


def _account_lines(user_id: int) -> dict[int, int]:
    db.remove()
    cart = db.scalar(select(Cart).where(Cart.user_id == user_id))
    return {ln.product_id: ln.quantity for ln in cart.lines} if cart else {}


def test_adding_more_than_in_stock_is_refused_with_a_clear_message(client, local_shop,
                                                                   category):
    kettle = make_product(local_shop, category, title_en="Kettle", stock=3)
    db.commit()
    # A plain id: a refused add rolls its unit of work back, which expires the objects
    # of the session the test shares with the request.
    kettle_id = kettle.id

    page = _html(_add(client, kettle_id, 5))
    assert "المتوفر في المخزون 3 فقط. اختر كمية أقل." in page
    assert "سلتك فارغة." in _html(client.get("/shop/cart"))

    assert "أُضيف إلى سلتك." in _html(_add(client, kettle_id, 2))
    page = _html(_add(client, kettle_id, 2))
    assert "في سلتك 2 من هذا المنتج، والمتوفر في المخزون 3 فقط." in page

    client.get("/lang/en")
    page = _html(_add(client, kettle_id, 4))
    assert "You already have 2 in your cart and only 3 are in stock." in page
    cart = _html(client.get("/shop/cart"))
    assert 'value="2"' in cart and "20,000 IQD" in cart


@pytest.mark.parametrize(("quantity", "message"), [
    ("0", "Enter a quantity from 1 to 99."),
    ("-1", "Enter a quantity from 1 to 99."),
    ("100", "Enter a quantity from 1 to 99."),
    ("abc", "Enter the quantity as a whole number."),
    ("1.5", "Enter the quantity as a whole number."),
    ("", "Enter a quantity from 1 to 99."),
])
def test_bad_quantities_get_a_message_and_change_nothing(client, local_shop, category,
                                                         quantity, message):
    lamp = make_product(local_shop, category)
    db.commit()
    client.get("/lang/en")
    assert message in _html(_add(client, lamp.id, quantity))
    assert "Your cart is empty." in _html(client.get("/shop/cart"))


def test_arabic_indic_digits_are_a_quantity(client, local_shop, category):
    lamp = make_product(local_shop, category)
    db.commit()
    _add(client, lamp.id, "٢")
    assert 'value="2"' in _html(client.get("/shop/cart"))


def test_unavailable_products_cannot_be_added(client, category):
    shop = make_merchant()
    retired = make_product(shop, category, active=False)
    sold_out = make_product(shop, category, stock=0)
    db.commit()
    client.get("/lang/en")
    assert "This product is no longer available." in _html(_add(client, retired.id, 1))
    assert "Sorry, this product is sold out." in _html(_add(client, sold_out.id, 1))
    assert "This product is no longer available." in _html(_add(client, 999_999, 1))


def test_cart_keeps_the_price_seen_and_flags_changes_and_retired_products(client, local_shop,
                                                                          category):
    lamp = make_product(local_shop, category, title_en="Lamp", price=10_000)
    chair = make_product(local_shop, category, title_en="Chair", price=50_000)
    db.commit()
    _add(client, lamp.id, 1)
    _add(client, chair.id, 1)

    with unit_of_work():
        catalog.update_product(local_shop.id, lamp.id, {"price": 12_000})
        catalog.update_product(local_shop.id, chair.id, {"active": False})
    client.get("/lang/en")
    page = _html(client.get("/shop/cart"))
    assert ('The price changed since you added it (it was <bdi dir="ltr">10,000 IQD</bdi>).'
            in page)
    assert "This product is no longer available. Remove it from your cart." in page
    # The retired chair is not counted; the lamp at today's price is.
    assert re.search(r"Subtotal: <strong><bdi dir=\"ltr\">12,000 IQD", page)

    client.post("/shop/cart/remove", data={"product_id": chair.id})
    page = _html(client.get("/shop/cart"))
    assert "Chair" not in page and "Lamp" in page


def test_subtotals_per_merchant_currency_and_in_dinars(app_ctx, local_shop, category):
    turkish = make_merchant(country="TR", currency="TRY")
    towel = make_product(turkish, category, price=45_000)        # 450.00 TRY
    rug = make_product(local_shop, category, price=75_000)
    shopper = auth.register_shopper("Zainab", "zainab@example.iq", PASSWORD)
    set_rate("TRY", "38.5")
    owner = CartOwner(user_id=shopper.id, session={})
    add_to_cart(owner, towel.id, 2)
    add_to_cart(owner, rug.id, 1)

    summary = cart_summary(owner)
    assert summary.subtotals == {"IQD": 75_000, "TRY": 90_000}
    assert summary.total_iqd == 75_000 + 34_650
    line = db.scalar(select(CartLine).where(CartLine.product_id == towel.id))
    assert (line.seen_price, line.seen_currency, line.seen_price_iqd) == (45_000, "TRY", 17_325)


def test_foreign_product_without_a_rate_cannot_be_added(app_ctx, category):
    chinese = make_merchant(country="CN", currency="CNY")
    fan = make_product(chinese, category)
    db.commit()
    with pytest.raises(CartRefused) as refused:
        add_to_cart(CartOwner(None, {}), fan.id, 1)
    assert refused.value.fields == {"product_id": ["no_rate"]}


def test_anonymous_cart_merges_into_the_account_cart_on_login(client, local_shop, category):
    books = make_product(local_shop, category, title_en="Books", stock=10)
    pens = make_product(local_shop, category, title_en="Pens", stock=2)
    ink = make_product(local_shop, category, title_en="Ink", stock=10)
    shopper = auth.register_shopper("Ali", "ali@example.iq", PASSWORD)
    # Earlier, on another device, Ali put books and pens in his account's cart.
    account = CartOwner(user_id=shopper.id, session={})
    add_to_cart(account, books.id, 1)
    add_to_cart(account, pens.id, 1)

    _add(client, books.id, 2)     # anonymous now
    _add(client, pens.id, 2)
    _add(client, ink.id, 1)
    response = client.post("/login", data={"identifier": "ali@example.iq",
                                           "password": PASSWORD})
    assert response.status_code == 302

    # Books: 1 + 2; pens: 1 + 2 capped at the 2 in stock; ink added.
    assert _account_lines(shopper.id) == {books.id: 3, pens.id: 2, ink.id: 1}
    with client.session_transaction() as session:
        assert "shop_cart" not in session
    client.get("/lang/en")
    page = _html(client.get("/shop/cart"))
    assert f'id="qty-{books.id}" type="number" name="quantity" value="3"' in page
    assert "Cart <bdi class=\"cart-count\">6</bdi>" in page


def test_logged_in_cart_survives_logout_and_new_session(client, app, local_shop, category):
    radio = make_product(local_shop, category, title_en="Radio")
    shopper = auth.register_shopper("Huda", "huda@example.iq", PASSWORD)
    client.post("/login", data={"identifier": "huda@example.iq", "password": PASSWORD})
    _add(client, radio.id, 2)
    assert _account_lines(shopper.id) == {radio.id: 2}

    other_device = app.test_client()
    other_device.post("/login", data={"identifier": "huda@example.iq", "password": PASSWORD})
    other_device.get("/lang/en")
    assert 'value="2"' in _html(other_device.get("/shop/cart"))


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture()
def csrf_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def test_cart_forms_work_with_csrf_protection_on(client, csrf_on, local_shop, category):
    tea = make_product(local_shop, category, title_en="Tea", stock=5)
    db.commit()
    client.get("/lang/en")
    # A forged post (no token) is refused and changes nothing.
    assert client.post("/shop/cart/add", data={"product_id": tea.id, "quantity": 1}
                       ).status_code == 400
    assert "Your cart is empty." in _html(client.get("/shop/cart"))

    token = _csrf(_html(client.get(f"/shop/p/{tea.id}")))
    page = _html(client.post("/shop/cart/add", data={
        "product_id": tea.id, "quantity": 2, "csrf_token": token}, follow_redirects=True))
    assert "Added to your cart." in page

    cart = _html(client.get("/shop/cart"))
    token = _csrf(cart)
    page = _html(client.post("/shop/cart/update", data={
        "product_id": tea.id, "quantity": 4, "csrf_token": token}, follow_redirects=True))
    assert "Quantity updated." in page and 'value="4"' in page
    page = _html(client.post("/shop/cart/update", data={
        "product_id": tea.id, "quantity": 6, "csrf_token": token}, follow_redirects=True))
    assert "Only 5 in stock. Choose a smaller quantity." in page
    page = _html(client.post("/shop/cart/remove", data={
        "product_id": tea.id, "csrf_token": token}, follow_redirects=True))
    assert "Removed from your cart." in page and "Your cart is empty." in page


def test_stock_check_constraint_refuses_negative_stock(app_ctx, local_shop, category):
    from sqlalchemy.exc import IntegrityError

    product = make_product(local_shop, category, stock=1)
    db.commit()
    product.stock = -1
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    assert db.get(Product, product.id).stock == 1
