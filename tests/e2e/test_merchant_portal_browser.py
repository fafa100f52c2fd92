"""A merchant without a developer in a real browser (Debian's chromium, Playwright):
logs in and lands on their portal, edits a product, and reads their statement.

Screenshots of the product list, the product page and the statement, at 1280 and 390
pixels wide, in Arabic (and the statement in English), go to $BARID_SCREENSHOTS for
people to look at.
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import pytest

from app.auth.services import hash_password
from app.database import db, unit_of_work
from payments import ledger, payouts
from payments.models import AccountKind
from shop.services import settlement
from tests.shop.checkout_helpers import PASSWORD, product
from tests.shop.helpers import make_category, make_merchant

pytestmark = pytest.mark.e2e


@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def shop(app_ctx):
    m = make_merchant()
    m.name_ar, m.name_en = "مكتبة المتنبي", "Al-Mutanabbi Bookshop"
    m.owner.password_hash = hash_password(PASSWORD)
    m.commission_bps = 500
    shelf = make_category("books")
    shelf.name_ar, shelf.name_en = "كتب", "Books"
    first = product(m, shelf, title_ar="ديوان المتنبي، طبعة مجلدة", title_en="Diwan al-Mutanabbi",
                    price=35_000, weight_g=900, stock=4, merchant_sku="BK-001")
    product(m, shelf, title_ar="مصباح مكتب نحاسي", title_en="Brass desk lamp", price=125_000,
            weight_g=1_400, stock=0, merchant_sku="LMP-7", active=False)
    product(m, shelf, title_ar="دفتر ملاحظات بغلاف جلدي", title_en="Leather notebook",
            price=12_500, weight_g=300, stock=37, merchant_sku="NB-22")
    revenue = ledger.get_account("revenue:shop_order:IQD", AccountKind.REVENUE, "IQD")
    with unit_of_work():
        payable = payouts.payable_account(m.id)
        commission = ledger.get_account("revenue:commission:IQD", AccountKind.REVENUE, "IQD")
        for n, amount in enumerate((70_000, 35_000, 12_500)):
            ledger.post_entry(idempotency_key=f"sale:consignment:-{m.id}{n}",
                              kind=settlement.SALE,
                              legs=[ledger.debit(revenue, amount),
                                    ledger.credit(payable, amount)])
            cut = settlement.commission_of(amount, 500)
            ledger.post_entry(idempotency_key=f"commission:consignment:-{m.id}{n}",
                              kind=settlement.COMMISSION,
                              legs=[ledger.debit(payable, cut), ledger.credit(commission, cut)])
        payouts.record_payout(m.id, 60_000, "RAF-2026-0042", actor_id=None)
    from shop.models import Product
    from tests.shop.test_merchant_orders_api import make_order

    c = make_order(m, db.get(Product, first.id))
    return {"email": m.owner.email, "product": first.id, "consignment": c.id}


def _login(page, live_server, email):
    page.goto(live_server + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("width", [1280, 390])
def test_merchant_portal_pages_in_the_browser(browser, live_server, shop, screenshots, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _login(page, live_server, shop["email"])
        assert page.url.rstrip("/").endswith("/merchant")
        assert page.locator("html").get_attribute("dir") == "rtl"

        page.goto(live_server + "/merchant/products")
        assert page.locator("text=ديوان المتنبي").count() == 1
        page.screenshot(path=str(screenshots / f"merchant-products-{width}.png"), full_page=True)

        page.goto(f"{live_server}/merchant/products/{shop['product']}")
        page.fill("input[name=price]", "٣٦٠٠٠")
        page.click("form.product-form [type=submit]")
        page.wait_for_load_state()
        assert page.locator("input[name=price]").input_value() == "36000"
        page.screenshot(path=str(screenshots / f"merchant-product-{width}.png"), full_page=True)

        page.goto(live_server + "/merchant/products/import")
        csv_path = screenshots / "merchant-import.csv"
        csv_path.write_text(
            "merchant_sku,title_ar,title_en,category,price,stock,weight_g,hs_code,origin_country\n"
            "BK-001,ديوان المتنبي,Diwan,books,٣٧٠٠٠,٥,900,490199,IQ\n"
            "NEW-5,قلم حبر,Fountain pen,books,8500,12,40,960830,IQ\n"
            "BAD-1,شيء,Thing,toys,abc,1,40,960830,IQ\n", encoding="utf-8")
        page.set_input_files("input[name=file]", str(csv_path))
        page.click("form [type=submit][name=submit]")
        page.wait_for_load_state()
        assert page.locator(".tag-bad").count() == 1
        page.screenshot(path=str(screenshots / f"merchant-import-{width}.png"), full_page=True)

        page.goto(f"{live_server}/merchant/orders/{shop['consignment']}")
        page.click("text=استلمت الطلب: أنا أجهّزه")
        page.wait_for_load_state()
        page.click("form.handover [type=submit]")
        page.wait_for_load_state()
        assert page.locator("text=اطبع الملصق").count() == 1
        page.screenshot(path=str(screenshots / f"merchant-order-{width}.png"), full_page=True)

        page.goto(live_server + "/merchant/money")
        assert "RAF-2026-0042" in page.content()
        page.screenshot(path=str(screenshots / f"merchant-statement-{width}.png"),
                        full_page=True)
        page.click(".lang-switch")
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        page.screenshot(path=str(screenshots / f"merchant-statement-en-{width}.png"),
                        full_page=True)
    finally:
        context.close()
