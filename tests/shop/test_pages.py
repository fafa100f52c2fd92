"""Catalog pages: Arabic first, only what may be sold, out of stock marked, pages."""

from __future__ import annotations

from app.database import db, unit_of_work
from shop.models import MerchantStatus
from shop.services import merchants
from tests.shop.helpers import make_category, make_merchant, make_product, make_user


def _html(response) -> str:
    return response.get_data(as_text=True)


def test_catalog_is_arabic_by_default_and_english_on_request(client, local_shop, category):
    make_product(local_shop, category, title_ar="مصباح مكتب", title_en="Desk lamp")
    db.commit()
    page = _html(client.get("/shop/"))
    assert 'lang="ar" dir="rtl"' in page
    assert "مصباح مكتب" in page and "تسوّق مع البريد العراقي" in page
    assert "<bdi dir=\"ltr\">10,000 IQD</bdi>" in page
    client.get("/lang/en")
    page = _html(client.get("/shop/"))
    assert 'lang="en" dir="ltr"' in page and "Desk lamp" in page


def test_category_page_shows_its_own_and_its_childrens_products(client, local_shop):
    clothing = make_category("clothing")
    shoes = make_category("shoes", parent=clothing)
    books = make_category("books")
    make_product(local_shop, clothing, title_en="Scarf")
    make_product(local_shop, shoes, title_en="Sandals")
    make_product(local_shop, books, title_en="Novel")
    db.commit()
    client.get("/lang/en")
    page = _html(client.get("/shop/c/clothing"))
    assert "Scarf" in page and "Sandals" in page and "Novel" not in page
    assert client.get("/shop/c/no-such-shelf").status_code == 404


def test_suspending_a_merchant_hides_its_shop_and_products(client, category):
    shop = make_merchant(slug="basra-books")
    book = make_product(shop, category, title_en="Basra history")
    admin = make_user()
    db.commit()
    client.get("/lang/en")
    assert client.get("/shop/m/basra-books").status_code == 200
    assert "Basra history" in _html(client.get("/shop/search?q=basra"))

    with unit_of_work():
        merchants.suspend_merchant(shop.id, reason="Complaints", actor_id=admin.id)

    assert client.get("/shop/m/basra-books").status_code == 404
    assert client.get(f"/shop/p/{book.id}").status_code == 404
    assert "Basra history" not in _html(client.get("/shop/"))
    assert "Basra history" not in _html(client.get("/shop/search?q=basra"))


def test_pending_merchant_and_inactive_product_are_not_shown(client, category):
    pending = make_merchant(status=MerchantStatus.PENDING, slug="new-shop")
    hidden = make_product(pending, category)
    shop = make_merchant()
    retired = make_product(shop, category, active=False)
    db.commit()
    assert client.get("/shop/m/new-shop").status_code == 404
    assert client.get(f"/shop/p/{hidden.id}").status_code == 404
    assert client.get(f"/shop/p/{retired.id}").status_code == 404


def test_out_of_stock_product_is_marked_and_cannot_be_added(client, local_shop, category):
    radio = make_product(local_shop, category, title_en="Radio", stock=0)
    db.commit()
    client.get("/lang/en")
    page = _html(client.get(f"/shop/p/{radio.id}"))
    assert "Out of stock" in page and "This product is out of stock for now." in page
    assert "Add to cart" not in page
    assert "Out of stock" in _html(client.get("/shop/"))


def test_search_page_pages_through_results_in_arabic(client, local_shop, category):
    for i in range(30):
        make_product(local_shop, category, title_ar=f"دفتر مدرسي {i}", title_en=f"Notebook {i}")
    db.commit()
    first = _html(client.get("/shop/search?q=دفتر"))
    assert "عدد المنتجات: 30" in first and "الصفحة 1 من 2" in first
    assert first.count('class="product-card') == 24
    assert 'rel="next" href="/shop/search?page=2&amp;q=%D8%AF%D9%81%D8%AA%D8%B1"' in first
    second = _html(client.get("/shop/search?q=دفتر&page=2"))
    assert second.count('class="product-card') == 6 and "الصفحة 2 من 2" in second
    # A page past the end is empty, not an error.
    assert client.get("/shop/search?q=دفتر&page=99").status_code == 200
    assert "لا توجد نتائج" in _html(client.get("/shop/search?q=غير+موجود"))
