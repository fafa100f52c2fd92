"""The merchant portal for a shop without a developer: products (add, edit, stock, on
and off sale), the CSV import (preview, rejected rows, all or nothing, idempotent),
orders (acknowledge, ready with a label, cancel with refund, refusals from the wrong
state), and only ever the merchant's own: another shop's ids answer 404."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from app.database import db
from shop.models import Consignment, ConsignmentStatus, Merchant, Product
from tests.shop.checkout_helpers import PASSWORD
from tests.shop.helpers import make_category, make_merchant, make_product
from tests.shop.test_merchant_orders_api import make_order


def set_password(user, password: str) -> None:
    from app.auth.services import hash_password

    user.password_hash = hash_password(password)


def _login(client, merchant_id: int):
    owner = db.get(Merchant, merchant_id).owner
    res = client.post("/login", data={"identifier": owner.email, "password": PASSWORD})
    assert res.status_code in (302, 303)
    return res


@pytest.fixture()
def two_shops(app_ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    category = make_category("phones")
    product = make_product(mine, category, stock=8, merchant_sku="PH-1", price=10_000)
    other_product = make_product(theirs, category, stock=5, merchant_sku="OT-1")
    for m in (mine, theirs):
        set_password(m.owner, PASSWORD)
    db.commit()
    _login(client, mine.id)
    return {"mine": mine.id, "theirs": theirs.id, "product": product.id,
            "other_product": other_product.id, "category": category.id}


def _text(res) -> str:
    return res.get_data(as_text=True)


def test_login_as_merchant_lands_on_the_portal_and_the_nav_shows_it(app_ctx, client):
    m = make_merchant()
    set_password(m.owner, PASSWORD)
    db.commit()
    res = _login(client, m.id)
    assert res.headers["Location"].endswith("/merchant")
    page = _text(client.get("/merchant"))
    assert 'href="/merchant/products"' in page and 'href="/merchant/money"' in page
    home = _text(client.get("/"))
    assert 'href="/merchant"' in home


def test_another_shops_products_and_orders_are_not_found(client, two_shops):
    theirs = two_shops["other_product"]
    their_order = make_order(db.get(Merchant, two_shops["theirs"]), db.get(Product, theirs))
    cid = their_order.id
    for url in (f"/merchant/products/{theirs}", f"/merchant/orders/{cid}",
                f"/merchant/orders/{cid}/label.pdf", "/merchant/products/999999999",
                "/merchant/orders/999999999"):
        assert client.get(url).status_code == 404, url
    for url, data in ((f"/merchant/products/{theirs}", {"title_ar": "x"}),
                      (f"/merchant/products/{theirs}/stock", {"stock": "0"}),
                      (f"/merchant/products/{theirs}/active", {"active": "0"}),
                      (f"/merchant/orders/{cid}/acknowledge", {}),
                      (f"/merchant/orders/{cid}/ready", {}),
                      (f"/merchant/orders/{cid}/cancel", {"reason": "no"})):
        assert client.post(url, data=data).status_code == 404, url
    db.expire_all()
    p = db.get(Product, theirs)
    assert (p.stock, p.active) == (5, True)
    c = db.get(Consignment, cid)
    assert (c.status, c.acknowledged_at) == (ConsignmentStatus.OPEN, None)
    listing = _text(client.get("/merchant/products"))
    assert "PH-1" in listing and "OT-1" not in listing
    assert their_order.order.number not in _text(client.get("/merchant/orders"))


def _product_form(category_id: int, **kw) -> dict:
    data = {"title_ar": "هاتف ذكي", "title_en": "Smart phone", "category_id": str(category_id),
            "merchant_sku": "NEW-1", "price": "٢٥٠٠٠", "stock": "١٢", "weight_g": "300",
            "hs_code": "851712", "origin_country": "cn", "active": "y"}
    data.update(kw)
    return data


def test_add_and_edit_a_product_with_arabic_digits(client, two_shops):
    res = client.post("/merchant/products/new", data=_product_form(two_shops["category"]))
    assert res.status_code == 302
    p = db.scalar(select(Product).where(Product.merchant_sku == "NEW-1"))
    assert (p.price, p.stock, p.origin_country, p.active, p.merchant_id) == (
        25_000, 12, "CN", True, two_shops["mine"])
    page = _text(client.get(f"/merchant/products/{p.id}"))
    assert 'value="25000"' in page
    res = client.post(f"/merchant/products/{p.id}",
                      data=_product_form(two_shops["category"], price="30,000", title_en="Phone"))
    assert res.status_code == 302
    db.expire_all()
    assert (p.price, p.title_en) == (30_000, "Phone")
    # A bad price: the field says so and nothing changes.
    page = _text(client.post(f"/merchant/products/{p.id}",
                             data=_product_form(two_shops["category"], price="abc",
                                                title_en="Changed")))
    assert "Enter the amount in digits" in page or "أدخل" in page
    db.expire_all()
    assert (p.price, p.title_en) == (30_000, "Phone")
    # A code the shop already uses for another product is refused.
    page = _text(client.post(f"/merchant/products/{p.id}",
                             data=_product_form(two_shops["category"], merchant_sku="PH-1")))
    db.expire_all()
    assert p.merchant_sku == "NEW-1"


def test_stock_and_sale_state(client, two_shops):
    pid = two_shops["product"]
    client.post(f"/merchant/products/{pid}/stock", data={"stock": "٣"})
    client.post(f"/merchant/products/{pid}/active", data={"active": "0"})
    db.expire_all()
    p = db.get(Product, pid)
    assert (p.stock, p.active) == (3, False)
    client.post(f"/merchant/products/{pid}/stock", data={"stock": "-4"})
    client.post(f"/merchant/products/{pid}/active", data={"active": "1"})
    db.expire_all()
    assert (p.stock, p.active) == (3, True)


def test_product_edit_links_pictures_only_when_that_page_exists(app, client, two_shops):
    page = _text(client.get(f"/merchant/products/{two_shops['product']}"))
    has_images = "merchant_portal.product_images" in app.view_functions
    assert (f"/merchant/products/{two_shops['product']}/images" in page) == has_images


# -- CSV import ------------------------------------------------------------------------------

HEADER = "merchant_sku,title_ar,title_en,category,price,stock,weight_g,hs_code,origin_country"


def _upload(client, text: str):
    return client.post("/merchant/products/import",
                       data={"file": (io.BytesIO(text.encode("utf-8")), "catalog.csv")},
                       content_type="multipart/form-data")


def _apply_form(page: str) -> dict:
    import html
    import re

    text = re.search(r'name="text" type="hidden" value="([^"]*)"', page) or \
        re.search(r'id="text" name="text" type="hidden" value="([^"]*)"', page)
    digest = re.search(r'name="digest" type="hidden" value="([^"]*)"', page) or \
        re.search(r'id="digest" name="digest" type="hidden" value="([^"]*)"', page)
    assert text and digest, "no apply form"
    return {"text": html.unescape(text.group(1)), "digest": digest.group(1)}


def _count(merchant_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Product)
                     .where(Product.merchant_id == merchant_id))


def test_csv_preview_then_apply_then_apply_again_changes_nothing(client, two_shops):
    csv_text = (f"{HEADER}\n"
                "PH-1,هاتف,Phone,phones,١٢٠٠٠,٤,300,851712,CN\n"
                "CASE-9,غطاء,Case,phones,\"2,500\",40,50,392690,IQ\n")
    page = _text(_upload(client, csv_text))
    assert "PH-1" in page and "CASE-9" in page
    assert _count(two_shops["mine"]) == 1  # a preview changes nothing
    form = _apply_form(page)
    form["text"] = form["text"].replace("\n", "\r\n")  # as a browser sends it back
    assert client.post("/merchant/products/import/apply", data=form).status_code == 302
    db.expire_all()
    ph = db.get(Product, two_shops["product"])
    assert (ph.price, ph.stock) == (12_000, 4)
    case = db.scalar(select(Product).where(Product.merchant_sku == "CASE-9"))
    assert (case.price, case.stock, case.merchant_id) == (2_500, 40, two_shops["mine"])
    # The same file again: everything unchanged, no second CASE-9.
    page = _text(_upload(client, csv_text))
    assert _count(two_shops["mine"]) == 2
    assert 'name="digest"' not in page
    # Even a replayed apply form adds nothing.
    client.post("/merchant/products/import/apply", data=form)
    assert _count(two_shops["mine"]) == 2


def test_csv_with_any_bad_row_is_rejected_whole_with_reasons(client, two_shops):
    csv_text = (f"{HEADER}\n"
                "PH-1,هاتف,Phone,phones,9000,1,300,851712,CN\n"
                "BAD-1,سيء,Bad,no-such-shelf,100,1,300,851712,CN\n"
                "BAD-2,سيء,Bad,phones,abc,1,300,851712,CN\n"
                "BAD-3,سيء,Bad,phones,-5,1,300,851712,CN\n")
    page = _text(_upload(client, csv_text))
    assert "no-such-shelf" in page
    assert page.count("tag-bad") >= 3
    assert 'name="digest"' not in page
    # A forged apply of the same text is refused and changes nothing.
    from shop.portal_catalog import _digest

    client.post("/merchant/products/import/apply",
                data={"text": csv_text, "digest": _digest(two_shops["mine"], csv_text)})
    db.expire_all()
    assert db.get(Product, two_shops["product"]).price == 10_000
    assert _count(two_shops["mine"]) == 1
    # A tampered text with the old digest is refused too.
    good = f"{HEADER}\nZZ-1,س,S,phones,100,1,300,851712,CN\n"
    client.post("/merchant/products/import/apply",
                data={"text": good, "digest": _digest(two_shops["mine"], csv_text)})
    assert _count(two_shops["mine"]) == 1


def test_csv_with_a_wrong_header_says_so_and_changes_nothing(client, two_shops):
    page = _text(_upload(client, "sku,name,price\nPH-1,Phone,100\n"))
    assert "merchant_sku" in page and 'name="digest"' not in page
    page = _text(_upload(client, "\xff\xfe"))
    assert 'name="digest"' not in page
    assert _count(two_shops["mine"]) == 1


def test_csv_import_writes_only_the_merchants_own_product_of_that_sku(client, two_shops):
    """Another shop's OT-1 is not touched: the sku names a product of this shop only."""
    csv_text = f"{HEADER}\nOT-1,آخر,Other,phones,700,1,300,851712,CN\n"
    page = _text(_upload(client, csv_text))
    client.post("/merchant/products/import/apply", data=_apply_form(page))
    db.expire_all()
    assert db.get(Product, two_shops["other_product"]).price != 700
    assert _count(two_shops["mine"]) == 2


# -- orders ----------------------------------------------------------------------------------

def test_acknowledge_ready_with_label_and_refusals(client, two_shops):
    c = make_order(db.get(Merchant, two_shops["mine"]), db.get(Product, two_shops["product"]))
    cid = c.id
    page = _text(client.get("/merchant/orders?status=open"))
    assert c.order.number in page
    client.post(f"/merchant/orders/{cid}/acknowledge")
    db.expire_all()
    assert db.get(Consignment, cid).acknowledged_at is not None
    res = client.post(f"/merchant/orders/{cid}/ready", data={"weight_g": "٧٠٠"})
    assert res.status_code == 302
    db.expire_all()
    c = db.get(Consignment, cid)
    assert c.status == ConsignmentStatus.READY and c.tracking_number
    label = client.get(f"/merchant/orders/{cid}/label.pdf")
    assert label.status_code == 200 and label.data.startswith(b"%PDF")
    page = _text(client.get(f"/merchant/orders/{cid}"))
    assert c.tracking_number in page
    # Handed over: it can no longer be cancelled.
    page = _text(client.post(f"/merchant/orders/{cid}/cancel", data={"reason": "late"},
                             follow_redirects=True))
    db.expire_all()
    assert db.get(Consignment, cid).status == ConsignmentStatus.READY


def test_unpaid_consignment_cannot_be_acknowledged_or_handed_over(client, two_shops):
    c = make_order(db.get(Merchant, two_shops["mine"]), db.get(Product, two_shops["product"]),
                   paid=False)
    cid = c.id
    client.post(f"/merchant/orders/{cid}/acknowledge", follow_redirects=True)
    client.post(f"/merchant/orders/{cid}/ready", data={}, follow_redirects=True)
    db.expire_all()
    c = db.get(Consignment, cid)
    assert (c.status, c.acknowledged_at, c.parcel_id) == (
        ConsignmentStatus.AWAITING_PAYMENT, None, None)


def test_cancel_needs_a_reason_then_gives_stock_back(client, two_shops):
    c = make_order(db.get(Merchant, two_shops["mine"]), db.get(Product, two_shops["product"]),
                   quantity=2)
    cid = c.id
    client.post(f"/merchant/orders/{cid}/cancel", data={"reason": ""})
    db.expire_all()
    assert db.get(Consignment, cid).status == ConsignmentStatus.OPEN
    client.post(f"/merchant/orders/{cid}/cancel", data={"reason": "out of stock"})
    db.expire_all()
    assert db.get(Consignment, cid).status == ConsignmentStatus.CANCELLED
    assert db.get(Product, two_shops["product"]).stock == 10  # 8 + the 2 given back
    client.post(f"/merchant/orders/{cid}/acknowledge")
    db.expire_all()
    assert db.get(Consignment, cid).acknowledged_at is None
