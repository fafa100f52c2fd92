"""Foreign prices are shown in dinars at the stored rate, with the original beside them."""

from __future__ import annotations

from decimal import Decimal

from app.database import db
from shop.pricing import price_in_iqd
from tests.shop.helpers import make_merchant, make_product, set_rate


def test_foreign_price_is_converted_at_the_current_stored_rate(app_ctx, category):
    turkish = make_merchant(country="TR", currency="TRY")
    kettle = make_product(turkish, category, title_en="Kettle", price=129_990)  # 1,299.90 TRY
    db.commit()
    set_rate("TRY", "38.45")

    price = price_in_iqd(kettle)
    assert (price.iqd, price.original, price.currency) == (49_981, 129_990, "TRY")
    assert price.rate == Decimal("38.45") and price.rate_id is not None

    set_rate("TRY", "40")  # a new rate replaces the old one from now on
    assert price_in_iqd(kettle).iqd == 51_996


def test_local_price_is_already_in_dinars(app_ctx, local_shop, category):
    lamp = make_product(local_shop, category, price=35_000)
    db.commit()
    price = price_in_iqd(lamp)
    assert (price.iqd, price.original, price.currency, price.is_foreign) == (
        35_000, 35_000, "IQD", False)


def test_without_a_stored_rate_there_is_no_dinar_price(app_ctx, category):
    chinese = make_merchant(country="CN", currency="CNY")
    fan = make_product(chinese, category, price=9_900)
    db.commit()
    assert price_in_iqd(fan).iqd is None


def test_product_page_shows_dinars_with_the_original_price(client, category):
    emirati = make_merchant(country="AE", currency="AED")
    perfume = make_product(emirati, category, title_ar="عطر عود", title_en="Oud perfume",
                           price=25_000)  # 250.00 AED
    db.commit()
    set_rate("AED", "356.7")
    client.get("/lang/en")
    html = client.get(f"/shop/p/{perfume.id}").get_data(as_text=True)
    assert "89,175 IQD" in html
    assert "Original price" in html and "250.00 AED" in html
    assert "<bdi dir=\"ltr\">1 AED = 356.7 IQD</bdi>" in html
