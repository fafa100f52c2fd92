"""A shopper in a real browser (Debian's chromium, Playwright) against a live server:
finds a product, puts it in the cart, checks out to their door, pays with their post
card and PIN, and sees the order paid once the outbox has run. Then "buy for me".

Screenshots of the checkout, order and buy-for-me pages, in Arabic and English, go to
$BARID_SCREENSHOTS (default /tmp/barid-screenshots) for people to look at.
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import pytest
from sqlalchemy import select

from app.database import db
from tests.payments.conftest import (  # noqa: F401
    _fast_pins,
    clerk,
    localstripe,
    make_card,
    office,
    stripe_app,
)
from tests.payments.helpers import CARD_PIN
from tests.shop.checkout_helpers import (
    PASSWORD,
    make_address,
    make_shopper,
    product,
)
from tests.shop.helpers import make_category, make_merchant

pytestmark = pytest.mark.e2e



@pytest.fixture()
def live_server(app, serve) -> str:
    # The outbox runs as under `barid run`.
    return serve(app, jobs=True)


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


@pytest.fixture()
def shoot(screenshots):
    return lambda page, name: page.screenshot(path=str(screenshots / name), full_page=True)


def _switch(page, label: str) -> None:
    page.click(f".lang-switch >> text={label}")
    page.wait_for_load_state()


def test_shopper_checks_out_with_the_post_card_and_sees_the_order_paid(
        page, live_server, app_ctx, make_card, shoot):
    from payments.rates import add_rate
    from shop.models import Order, Product

    add_rate("USD", "1310")
    shop = make_merchant()
    shop.name_ar, shop.name_en = "مكتبة المتنبي", "Al-Mutanabbi Bookshop"
    lamp = product(shop, make_category(), title_ar="مصباح مكتب نحاسي",
                   title_en="Brass desk lamp", price=35_000, weight_g=1_400, stock=2)
    lamp_id = lamp.id
    shopper = make_shopper("Zainab Ali")
    email = shopper.email
    make_address(shopper, "IQ-BA", recipient_name="زينب علي", district="العشار",
                 landmark="مقابل سوق حنا الشيخ")
    card = make_card(balance=200_000, user_id=shopper.id)
    number = card.number
    db.commit()

    page.goto(live_server + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server}/shop/search?q=مصباح")
    page.click("text=مصباح مكتب نحاسي")
    page.click(".add-to-cart button")
    page.wait_for_load_state()
    page.click(".cart-link")
    page.click("text=إتمام الشراء")
    page.wait_for_load_state()
    page.click("text=اعرض المجموع")
    page.wait_for_load_state()
    # 35,000 + Basra from Baghdad: 6,000 for 1 kg + 1,000 for the second + 2,000 door.
    total = page.locator(".quote .grand .total-row td").inner_text()
    assert total.strip() == "44,000 IQD"
    shoot(page, "checkout-ar.png")
    _switch(page, "English")
    assert page.locator("h1").inner_text() == "Checkout"
    shoot(page, "checkout-en.png")
    _switch(page, "العربية")

    page.fill("#card_number", number)
    page.fill("#pin", CARD_PIN)
    page.click(".pay-form button[type=submit]")
    page.wait_for_load_state()
    assert "/shop/orders/" in page.url
    # The hold is captured by the order.placed job; the page shows paid after it ran.
    for _ in range(40):
        if page.locator('#order-status[data-status="paid"]').count():
            break
        page.wait_for_timeout(250)
        page.reload()
    assert page.locator('#order-status[data-status="paid"]').count() == 1
    assert page.locator("#order-status").inner_text() == "مدفوع"
    shoot(page, "order-ar.png")
    _switch(page, "English")
    assert page.locator("#order-status").inner_text() == "Paid"
    shoot(page, "order-en.png")
    _switch(page, "العربية")

    db.rollback()
    order = db.scalar(select(Order))
    assert (order.status, order.total) == ("paid", 44_000)
    assert db.get(Product, lamp_id, populate_existing=True).stock == 1


def test_shopper_asks_for_an_estimate_to_buy_abroad(page, live_server, app_ctx, shoot):
    from payments.rates import add_rate

    add_rate("USD", "1310")
    shopper = make_shopper("Omar Hassan")
    email = shopper.email
    db.commit()
    page.goto(live_server + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()

    def estimate() -> str:
        page.fill("#url", "https://www.example.com/p/winter-jacket-42")
        page.fill("#title", "Winter jacket")
        page.fill("#price", "49.99")
        page.select_option("#currency", "USD")
        page.fill("#quantity", "2")
        page.fill("#options", "M, navy")
        page.fill("#weight_g", "400")
        page.select_option("#customs_category", "clothing")
        page.click("button[value=estimate]")
        page.wait_for_load_state()
        return page.locator(".quote .total-row td").inner_text().strip()

    page.goto(live_server + "/shop/buy-for-me")
    assert estimate() == "200,718 IQD"  # with 15,000 of customs fees
    shoot(page, "buyforme-ar.png")
    _switch(page, "English")
    assert estimate() == "200,718 IQD"  # with 15,000 of customs fees
    shoot(page, "buyforme-en.png")
    page.click("button[value=send]")
    page.wait_for_load_state()
    assert page.locator('#request-status[data-status="submitted"]').count() == 1
    shoot(page, "buyforme-request-en.png")
    _switch(page, "العربية")
    shoot(page, "buyforme-request-ar.png")


def _both_languages(page, shoot, name: str) -> None:
    """A screenshot of the page in Arabic and in English, then back to Arabic."""
    shoot(page, f"{name}-ar.png")
    _switch(page, "English")
    shoot(page, f"{name}-en.png")
    _switch(page, "العربية")


def test_visitor_goes_from_the_home_page_to_an_order_awaiting_payment_for_pickup(
        page, live_server, app_ctx, shoot):
    from app.auth.models import PostOffice
    from shop.models import Order

    shop = make_merchant()
    shop.name_ar, shop.name_en = "دار الورّاق", "Dar Al-Warraq"
    bag = product(shop, make_category(), title_ar="حقيبة جلدية للكتب",
                  title_en="Leather book bag", price=25_000, weight_g=800, stock=3,
                  hs_code="420221")
    basra = PostOffice(code="BSR01", name_ar="مكتب بريد البصرة المركزي",
                       name_en="Basra Central Post Office", governorate="IQ-BA")
    db.add(basra)
    shopper = make_shopper("Zainab Ali")
    email, office_id, bag_id = shopper.email, basra.id, bag.id
    db.commit()

    # A visitor, not logged in yet, from the home page to the shops and a search in
    # Arabic written without the ta marbuta ("حقيبه" finds "حقيبة").
    page.goto(live_server + "/")
    page.click(".card-link >> text=اذهب إلى المتاجر")
    page.wait_for_load_state()
    page.fill("#shop-q", "حقيبه")
    page.press("#shop-q", "Enter")
    page.wait_for_load_state()
    assert "/shop/search" in page.url
    _both_languages(page, shoot, "catalog-search")
    page.click("text=حقيبة جلدية للكتب")
    page.wait_for_load_state()
    _both_languages(page, shoot, "catalog-product")
    page.click(".add-to-cart button")
    page.wait_for_load_state()
    assert page.locator(".cart-count").inner_text().strip() == "1"
    page.click(".cart-link")
    page.wait_for_load_state()
    _both_languages(page, shoot, "cart")

    # Checkout asks them to log in; the cart comes with them.
    page.click("text=إتمام الشراء")
    page.wait_for_load_state()
    assert "/login" in page.url
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert "/shop/checkout" in page.url
    assert page.locator(".cart-count").inner_text().strip() == "1"

    page.check("input[name=method][value=pickup]")
    page.select_option("#office_id", str(office_id))
    page.fill("#recipient_name", "زينب علي")
    page.fill("#phone", "0770 123 4567")
    page.click("text=اعرض المجموع")
    page.wait_for_load_state()
    # 25,000 + Basra from a Baghdad shop: 6,000 for the first kilogram, no door fee.
    assert page.locator(".quote .grand .total-row td").inner_text().strip() == "31,000 IQD"
    shoot(page, "checkout-pickup-ar.png")

    page.check("input[name=payment][value=stripe]")
    page.click(".pay-form button[type=submit]")
    page.wait_for_load_state()
    assert "/pay" in page.url  # bank card: the shopper pays from the order later
    page.click("text=العودة إلى الطلب")
    page.wait_for_load_state()

    assert page.locator('#order-status[data-status="pending_payment"]').count() == 1
    assert page.locator("#order-status").inner_text().strip() == "بانتظار الدفع"
    facts = page.locator("dl.facts").inner_text()
    assert "مكتب بريد البصرة المركزي" in facts and "زينب علي" in facts
    _switch(page, "English")
    assert page.locator("#order-status").inner_text().strip() == "Awaiting payment"
    assert "Basra Central Post Office" in page.locator("dl.facts").inner_text()
    shoot(page, "order-pickup-en.png")
    _switch(page, "العربية")
    shoot(page, "order-pickup-ar.png")

    db.rollback()
    order = db.scalar(select(Order))
    assert (order.status, order.delivery_method, order.pickup_office_id, order.total) == (
        "pending_payment", "pickup", office_id, 31_000)
    assert [ln.product_id for ln in order.lines] == [bag_id]


@pytest.fixture()
def stripe_live(stripe_app, localstripe, monkeypatch, serve) -> str:
    """The shop with card payments against localstripe, jobs running, Stripe's script
    allowed by the CSP as for the real Stripe."""
    from tests.payments.conftest import SECRET

    for key in ("CSP_SCRIPT_SRC", "CSP_CONNECT_SRC", "CSP_FRAME_SRC"):
        monkeypatch.setitem(stripe_app.config, key,
                            [*stripe_app.config.get(key, []), localstripe.url])
    url = serve(stripe_app, jobs=True)
    localstripe.register_webhook(f"{url}/payments/stripe/webhook", SECRET, name="shop-e2e")
    return url


def test_a_bank_card_payment_lands_on_the_order_page_on_a_phone_in_arabic(
        stripe_live, browser, screenshots):
    """390 px, Arabic: the shopper pays an order with a test bank card and the browser
    comes back to the order page by itself, which shows the payment and then the order
    paid; nothing in English, nothing wider than the screen."""
    from payments.rates import add_rate
    from shop.models import Order
    from tests.shop.checkout_helpers import door, place, put_in_cart

    add_rate("USD", "1310")
    shop = make_merchant()
    shop.name_ar, shop.name_en = "مكتبة المتنبي", "Al-Mutanabbi Bookshop"
    lamp = product(shop, make_category(), title_ar="مصباح مكتب نحاسي",
                   title_en="Brass desk lamp", price=35_000, weight_g=1_400, stock=2)
    shopper = make_shopper("Zainab Ali")
    email = shopper.email
    put_in_cart(shopper, lamp)
    order = place(shopper, door(make_address(shopper, "IQ-BA", district="العشار",
                                             landmark="مقابل سوق حنا الشيخ")))
    order_id = order.id
    db.commit()

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(stripe_live + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form [type=submit]")
    page.wait_for_load_state()
    page.goto(f"{stripe_live}/shop/orders/{order_id}")
    page.click("text=ادفع ببطاقة مصرفية")
    page.wait_for_url("**/payments/pay/*")
    page.fill("#card-element input[placeholder=number]", "4242424242424242")
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "34")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "10001")
    page.click("#card-pay")
    page.wait_for_url(f"**/shop/orders/{order_id}")
    assert page.locator('[data-payment-status="succeeded"]').count() == 1
    for _ in range(40):
        if page.locator('#order-status[data-status="paid"]').count():
            break
        page.wait_for_timeout(250)
        page.reload()
    assert page.locator("#order-status").inner_text() == "مدفوع"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_attribute("html", "dir") == "rtl"
    page.screenshot(path=str(screenshots / "order-after-card-390-ar.png"), full_page=True)
    context.close()
    db.rollback()
    assert db.get(Order, order_id, populate_existing=True).status == "paid"
