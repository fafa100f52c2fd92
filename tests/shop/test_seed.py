"""The demo shops: four active merchants (two local, two foreign) and forty-two products,
created once however often the seeder runs."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth.seed import seed_people
from app.database import db
from shop.models import Category, Merchant, Product
from shop.pricing import price_in_iqd
from shop.seed import seed_shops
from shop.services import catalog


def test_demo_shops_are_seeded_once_and_searchable(app_ctx):
    seed_people()
    seed_shops()
    seed_shops()

    shops = {m.slug: m for m in db.scalars(select(Merchant))}
    assert set(shops) == {"mutanabbi-books", "basra-electronics", "istanbul-bazaar",
                          "dubai-beauty"}
    assert all(m.is_active for m in shops.values())
    assert shops["basra-electronics"].post_office.code == "BSR-01"
    assert (shops["istanbul-bazaar"].currency, shops["dubai-beauty"].currency) == ("TRY", "AED")
    assert db.scalar(select(func.count()).select_from(Product)) == 42
    assert db.scalar(select(func.count()).select_from(Category)) == 9
    # Foreign products have a dinar price; search finds Arabic typed without hamza.
    for product in db.scalars(select(Product)):
        assert price_in_iqd(product).iqd > 0
    assert [p.title_en for p in catalog.search("المتنبي").items][0] == "Diwan of al-Mutanabbi"
    assert catalog.search("عطر").total >= 1


def test_demo_pictures_are_drawn_once_into_the_storage(app_ctx, tmp_path, monkeypatch):
    import time

    from PIL import Image

    from shop.demo_pictures import BY_WORD, drawer_for, picture_for
    from shop.models import ProductImage
    from shop.seed import PRODUCTS, seed_pictures

    monkeypatch.setitem(app_ctx.config, "MEDIA_ROOT", str(tmp_path / "media"))
    seed_people()
    seed_shops()
    started = time.monotonic()
    seed_pictures()
    took = time.monotonic() - started
    seed_pictures()  # again: nothing more
    rows = list(db.scalars(select(ProductImage)))
    assert len(rows) == 42 and {r.position for r in rows} == {0}
    assert len(list((tmp_path / "media").rglob("*.webp"))) == 42 * 3
    assert took < 60  # a few seconds on the 2-core machine
    # Alt texts are the product's titles in each language.
    watch = db.scalar(select(Product).where(Product.merchant_sku == "T-011"))
    assert (watch.cover.alt_ar, watch.cover.alt_en) == (watch.title_ar, watch.title_en)
    zoom = Image.open(tmp_path / "media" / watch.cover.key("zoom", "webp"))
    assert zoom.format == "WEBP" and zoom.size == (600, 600)
    # Deterministic, and recognisable: every demo product has a drawing of its own kind,
    # chosen by its title (a phone, a watch ...), not only its category.
    assert picture_for("E-001", "phones", "Samsung phone") == \
        picture_for("E-001", "phones", "Samsung phone")
    by_word = {d for _w, d in BY_WORD}
    for items in PRODUCTS.values():
        for sku, category, _ar, title_en, *_ in items:
            if not sku.startswith("B-"):  # books are drawn as books by their category
                assert drawer_for(category, title_en) in by_word, title_en
