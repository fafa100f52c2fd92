"""From a shop with no developer to a paid order, in a real browser (Debian's chromium,
Playwright) against a live server with the outbox running as under `barid run`:

1. the merchant logs in, lands on their portal, adds a phone with its price and stock,
   and uploads its picture;
2. a shopper searches "الهاتف" (the word with the article), finds the phone with its
   picture, and buys it with her post card;
3. the merchant sees the order and what the post now owes them: the price less the
   post's commission.

Screenshots go to $BARID_SCREENSHOTS for people to look at.
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import io

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from app.auth.services import hash_password
from app.database import db
from tests.payments.conftest import (  # noqa: F401
    _fast_pins,
    clerk,
    make_card,
    office,
)
from tests.payments.helpers import CARD_PIN
from tests.shop.checkout_helpers import PASSWORD, make_address, make_shopper
from tests.shop.helpers import make_category, make_merchant

pytestmark = pytest.mark.e2e

PRICE = 250_000
COMMISSION_BPS = 500  # 5 %


@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app, jobs=True)


def _phone_picture() -> bytes:
    """A phone drawn with Pillow: a dark rounded body and a blue screen."""
    img = Image.new("RGB", (600, 800), "white")
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((170, 80, 430, 720), radius=40, fill="#1f2933")
    d.rectangle((190, 130, 410, 650), fill="#3b82f6")
    d.ellipse((285, 670, 315, 700), fill="#9aa5b1")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()


def test_a_merchant_adds_a_phone_a_shopper_finds_and_buys_it_and_the_merchant_is_owed(
        browser, live_server, app_ctx, make_card, screenshots):
    from payments.rates import add_rate
    from shop.models import Order, Product

    add_rate("USD", "1310")
    shop = make_merchant()
    shop.name_ar, shop.name_en = "متجر الرافدين للهواتف", "Rafidain Phones"
    shop.commission_bps = COMMISSION_BPS
    shop.owner.password_hash = hash_password(PASSWORD)
    phones = make_category("phones")
    phones.name_ar, phones.name_en = "هواتف", "Phones"
    merchant_email = shop.owner.email
    shopper = make_shopper("Zainab Ali")
    shopper_email = shopper.email
    make_address(shopper, "IQ-BG", recipient_name="زينب علي", district="الكرادة",
                 landmark="قرب ساحة الحرية")
    make_card(balance=400_000, user_id=shopper.id)
    db.commit()

    merchant = browser.new_context(viewport={"width": 1280, "height": 900})
    m = merchant.new_page()
    m.set_default_timeout(20_000)
    _log_in(m, live_server, merchant_email)
    assert m.url.rstrip("/").endswith("/merchant")

    # 1. The phone, then its picture.
    m.goto(live_server + "/merchant/products/new")
    m.fill("#title_ar", "هاتف ذكي بشاشة كبيرة")
    m.fill("#title_en", "Smartphone with a large screen")
    m.select_option("#category_id", str(phones.id))
    m.fill("#price", "٢٥٠٬٠٠٠")  # typed on an Arabic keyboard
    m.fill("#stock", "3")
    m.fill("#weight_g", "400")
    m.fill("#hs_code", "٨٥١٧١٣")  # smartphones, in Arabic-Indic digits
    m.click("#submit")
    m.wait_for_load_state()
    m.screenshot(path=str(screenshots / "flow-merchant-product.png"), full_page=True)
    db.rollback()
    phone = db.scalar(select(Product).where(Product.merchant_id == shop.id))
    assert phone is not None and (phone.price, phone.stock) == (PRICE, 3)
    assert phone.hs_code == "851713"  # stored in ASCII digits
    m.goto(f"{live_server}/merchant/products/{phone.id}/images")
    m.set_input_files("#picture", files=[{"name": "phone.png", "mimeType": "image/png",
                                          "buffer": _phone_picture()}])
    m.fill("#alt_ar", "هاتف أسود بشاشة زرقاء")
    m.fill("#alt_en", "A black phone with a blue screen")
    m.click("form[enctype='multipart/form-data'] #submit")
    m.wait_for_load_state()
    m.screenshot(path=str(screenshots / "flow-merchant-pictures.png"), full_page=True)
    assert m.locator("img").count() >= 1

    # 2. The shopper finds it by the word with its article, sees the picture, buys it.
    shopper_ctx = browser.new_context(viewport={"width": 390, "height": 844})
    s = shopper_ctx.new_page()
    s.set_default_timeout(20_000)
    _log_in(s, live_server, shopper_email)
    s.goto(f"{live_server}/shop/search?q=الهاتف")
    s.screenshot(path=str(screenshots / "flow-search-ar.png"), full_page=True)
    result = s.locator("text=هاتف ذكي بشاشة كبيرة").first
    assert result.count() == 1
    result.click()
    s.wait_for_load_state()
    picture = s.locator("picture img").first
    assert picture.get_attribute("alt") == "هاتف أسود بشاشة زرقاء"
    assert "webp" in (s.locator("picture source").first.get_attribute("type") or "")
    assert s.evaluate("img => img.complete && img.naturalWidth > 0", picture.element_handle())
    s.screenshot(path=str(screenshots / "flow-product-ar.png"), full_page=True)
    s.click(".add-to-cart button")
    s.wait_for_load_state()
    s.goto(live_server + "/shop/checkout")
    s.click("text=اعرض المجموع")
    s.wait_for_load_state()
    # Her own card is chosen already: the PIN is all she types.
    s.fill("#pin", CARD_PIN)
    s.click(".pay-form button[type=submit]")
    s.wait_for_load_state()
    assert "/shop/orders/" in s.url
    for _ in range(60):
        if s.locator('#order-status[data-status="paid"]').count():
            break
        s.wait_for_timeout(250)
        s.reload()
    assert s.locator('#order-status[data-status="paid"]').count() == 1
    shopper_ctx.close()

    db.rollback()
    order = db.scalar(select(Order).where(Order.user_id == shopper.id))
    assert order.status == "paid"
    assert db.get(Product, phone.id, populate_existing=True).stock == 2

    # 3. The merchant sees the order and what is owed: the price less 5 %.
    m.goto(live_server + "/merchant/orders")
    assert m.locator(f"text={order.number}").count() >= 1
    m.screenshot(path=str(screenshots / "flow-merchant-orders.png"), full_page=True)
    m.goto(live_server + "/merchant/money")
    owed = PRICE - PRICE * COMMISSION_BPS // 10_000
    assert f"{owed:,} IQD" in m.locator("main").inner_text()
    m.screenshot(path=str(screenshots / "flow-merchant-money.png"), full_page=True)
    merchant.close()
