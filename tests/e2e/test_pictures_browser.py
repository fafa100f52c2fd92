"""The demo catalog's pictures in a real browser (Debian's chromium, Playwright): the
home page, a listing and a product page at desktop (1280 px) and phone (390 px) width,
in Arabic and English, and the merchant's picture page. Every picture on screen has
loaded (as WebP), nothing is wider than the screen, and the pages run right to left in
Arabic.

Screenshots go to $BARID_SCREENSHOTS (default /tmp/barid-screenshots) for people to
look at.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.seed import DEMO_PASSWORD, seed_people
from app.database import db
from shop.models import Product
from shop.seed import seed_pictures, seed_shops

pytestmark = pytest.mark.e2e


@pytest.fixture()
def demo_site(app, app_ctx, serve, tmp_path, monkeypatch) -> tuple[str, int]:
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(tmp_path / "media"))
    seed_people()
    seed_shops()
    seed_pictures()
    watch = db.scalar(select(Product.id).where(Product.merchant_sku == "T-011"))
    db.commit()
    return serve(app), watch


# Every image the page shows, loaded (lazy ones are scrolled into view first).
ALL_LOADED = """async () => {
  for (let y = 0; y < document.body.scrollHeight; y += 400) {
    window.scrollTo(0, y); await new Promise(r => setTimeout(r, 40));
  }
  window.scrollTo(0, 0);
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.onload = i.onerror = r; })));
  return imgs.map(i => ({src: i.currentSrc, w: i.naturalWidth, alt: i.alt,
                         cls: i.className}));
}"""
WIDER_THAN_SCREEN = "() => document.documentElement.scrollWidth > window.innerWidth + 1"


def _look(page, url: str, path: str, lang: str, shoot, name: str) -> list[dict]:
    page.goto(url + path)
    page.wait_for_load_state("networkidle")
    images = page.evaluate(ALL_LOADED)
    assert page.evaluate("document.documentElement.dir") == ("rtl" if lang == "ar" else "ltr")
    assert not page.evaluate(WIDER_THAN_SCREEN), f"{name}: wider than the screen"
    broken = [i for i in images if i["w"] == 0]
    assert broken == [], broken
    shoot(page, name)
    return images


@pytest.mark.parametrize("width,height,label", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_demo_pictures_show_on_home_listing_and_product_pages(
        browser, demo_site, screenshots, width, height, label):
    url, watch_id = demo_site
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)

    def shoot(pg, name):
        pg.screenshot(path=str(screenshots / name), full_page=True)

    try:
        for lang in ("ar", "en"):
            page.goto(f"{url}/lang/{lang}")
            home = _look(page, url, "/", lang, shoot, f"pictures-home-{lang}-{label}.png")
            assert any(i["cls"] == "brand-mark" for i in home)
            shop = _look(page, url, "/shop/", lang, shoot, f"pictures-shop-{lang}-{label}.png")
            products = [i for i in shop if "/media/products/" in i["src"]]
            assert len(products) >= 8
            assert all(i["src"].endswith(".webp") for i in products)
            assert all(i["alt"] for i in products)
            listing = _look(page, url, "/shop/c/electronics", lang, shoot,
                            f"pictures-listing-{lang}-{label}.png")
            assert len([i for i in listing if "/media/products/" in i["src"]]) >= 4
            product = _look(page, url, f"/shop/p/{watch_id}", lang, shoot,
                            f"pictures-product-{lang}-{label}.png")
            [big] = [i for i in product if "/media/products/" in i["src"]]
            assert big["alt"] == ("ساعة يد رجالية بسوار جلد" if lang == "ar"
                                  else "Men's wristwatch, leather strap")
    finally:
        context.close()


def test_merchant_sees_and_uploads_pictures(browser, demo_site, screenshots, tmp_path):
    import io

    from PIL import Image

    url, _watch = demo_site
    istanbul = db.scalar(select(Product).where(Product.merchant_sku == "T-001"))
    basra_phone = db.scalar(select(Product.id).where(Product.merchant_sku == "E-001"))
    # An Arabic browser: the file chooser's own words are the browser's, in its language.
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ar-IQ")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(url + "/login")
        page.fill("input[name=identifier]", "istanbul.shop@barid.iq")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("form [type=submit]")
        page.wait_for_load_state()
        photo = tmp_path / "shirt.jpg"
        buf = io.BytesIO()
        Image.new("RGB", (900, 900), (40, 90, 140)).save(buf, "PNG")  # a PNG named .jpg
        photo.write_bytes(buf.getvalue())
        page.goto(f"{url}/merchant/products/{istanbul.id}/images")
        assert page.inner_text(".file-button") == "اختر صورة"
        page.set_input_files("input[name=picture]", str(photo))
        assert page.inner_text(".file-name") == "shirt.jpg"
        page.fill("input[name=alt_ar]", "قميص أزرق")
        page.click("form[enctype] [type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.locator(".picture-item").count() == 2
        assert page.locator(".flash-success").count() == 1
        page.evaluate(ALL_LOADED)
        assert not page.evaluate(WIDER_THAN_SCREEN)
        page.screenshot(path=str(screenshots / "pictures-portal-ar-phone.png"), full_page=True)
        # Another shop's product: not found.
        assert page.goto(f"{url}/merchant/products/{basra_phone}/images").status == 404
    finally:
        context.close()
