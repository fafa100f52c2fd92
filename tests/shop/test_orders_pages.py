"""The shopper's checkout, order and address pages through the test client: what a
client sends as an amount is ignored, another shopper's order is 404, bad addresses get
their messages, and the back office's procurement pages need the role."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.database import db
from app.jobs import drain
from app.notify import sent_messages
from shop.models import Address, Order, Product
from tests.payments.conftest import _fast_pins, clerk, make_card, office  # noqa: F401
from tests.payments.helpers import CARD_PIN, balance, ledger_problems
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    login,
    make_address,
    make_shopper,
    product,
    put_in_cart,
    shelf,
    shopper,
)


def _html(response) -> str:
    return response.get_data(as_text=True)


def _digest(html: str) -> str:
    return re.search(r'name="digest"[^>]*value="([0-9a-f]+)"', html).group(1)


def _key(html: str) -> str:
    return re.search(r'name="key"[^>]*value="([^"]+)"', html).group(1)


def test_checkout_page_shows_server_totals_and_ignores_a_sent_amount(
        app, client, shopper, baghdad_shop, shelf, make_card):
    lamp = product(baghdad_shop, shelf, price=15_000, weight_g=500, stock=4)
    lamp_id = lamp.id
    put_in_cart(shopper, lamp, 2)
    address = make_address(shopper, "IQ-BA")
    card = make_card(balance=100_000, user_id=shopper.id)  # the shopper's own
    number = card.number
    login(client, shopper)

    page = client.get(f"/shop/checkout?method=door&address_id={address.id}",
                      headers={"Accept-Language": "en"})
    html = _html(page)
    assert page.status_code == 200
    # 2 x 15,000 + 6,000 to another governorate + 2,000 to the door.
    assert "38,000 IQD" in html

    res = client.post("/shop/checkout", data={
        "method": "door", "address_id": address.id, "digest": _digest(html),
        "key": _key(html), "payment": "post_card", "card_number": number, "pin": CARD_PIN,
        # A tampered amount and price: the server has its own.
        "total": "1", "price": "1", "amount": "1"})
    assert res.status_code == 302, _html(res)
    order = db.scalar(select(Order))
    assert order.total == 38_000 and res.headers["Location"].endswith(f"/orders/{order.id}")
    drain(app)
    shown = _html(client.get(f"/shop/orders/{order.id}"))
    assert 'data-status="paid"' in shown and "38,000 IQD" in shown
    assert db.get(Product, lamp_id).stock == 2


@pytest.mark.commits  # the code is kept apart from the checkout that sent it
def test_checkout_with_someone_elses_card_takes_the_code_its_holder_got(
        app, client, shopper, baghdad_shop, shelf, make_card):
    lamp = product(baghdad_shop, shelf, price=15_000, weight_g=500, stock=4)
    put_in_cart(shopper, lamp, 1)
    address = make_address(shopper, "IQ-BG")
    card = make_card(balance=100_000)  # linked to no account: not the shopper's
    login(client, shopper)
    html = _html(client.get(f"/shop/checkout?method=door&address_id={address.id}"))
    form = {"method": "door", "address_id": address.id, "digest": _digest(html),
            "key": _key(html), "payment": "post_card", "card_number": card.number}
    sent_messages.clear()

    first = client.post("/shop/checkout", data={**form, "pin": CARD_PIN})
    page = _html(first)
    assert first.status_code == 200 and "المنتهي بـ 67" in page  # the mobile's last 2
    assert 'name="one_time_code"' in page
    assert db.scalar(select(Order)) is None and balance(card) == 100_000
    [sms] = sent_messages
    code = re.search(r"\b(\d{6})\b", sms["body"]).group(1)

    wrong = client.post("/shop/checkout", data={
        **form, "one_time_code": f"{(int(code) + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 422 and "رمز التحقق غير صحيح" in _html(wrong)
    assert db.scalar(select(Order)) is None and balance(card) == 100_000

    ok = client.post("/shop/checkout", data={**form, "one_time_code": code})
    assert ok.status_code == 302, _html(ok)[:2000]
    order = db.scalar(select(Order))
    assert order is not None and balance(card) == 100_000 - order.total
    assert ledger_problems() == []
    sent_messages.clear()


def test_changed_price_shows_the_new_total_and_places_nothing(client, shopper, baghdad_shop,
                                                              shelf):
    lamp = product(baghdad_shop, shelf, price=15_000)
    put_in_cart(shopper, lamp)
    address = make_address(shopper)
    login(client, shopper)
    html = _html(client.get(f"/shop/checkout?method=door&address_id={address.id}"))
    lamp.price = 17_000
    db.commit()
    res = client.post("/shop/checkout", data={
        "method": "door", "address_id": address.id, "digest": _digest(html),
        "key": _key(html), "payment": "stripe"})
    again = _html(res)
    assert res.status_code == 409
    assert "22,000 IQD" in again  # 17,000 + 5,000: the new total, to confirm again
    assert db.scalar(select(Order)) is None
    assert _digest(again) != _digest(html)


def test_another_shoppers_order_and_receipt_are_404(client, shopper, baghdad_shop, shelf):
    from tests.shop.checkout_helpers import door, place

    put_in_cart(shopper, product(baghdad_shop, shelf))
    order = place(shopper, door(make_address(shopper)))
    stranger = make_shopper("Stranger")
    login(client, stranger)
    for path in (f"/shop/orders/{order.id}", f"/shop/orders/{order.id}/receipt.pdf",
                 f"/shop/orders/{order.id}/pay"):
        assert client.get(path).status_code == 404
    assert client.post(f"/shop/orders/{order.id}/cancel").status_code == 404
    assert order.number not in _html(client.get("/shop/orders"))
    db.expire_all()
    assert db.get(Order, order.id).status == "pending_payment"


def test_order_pages_need_a_login(client):
    for path in ("/shop/checkout", "/shop/orders", "/shop/orders/1", "/shop/addresses",
                 "/shop/buy-for-me"):
        res = client.get(path)
        assert res.status_code == 302 and "/login" in res.headers["Location"]


def test_address_book_refuses_a_bad_phone_and_a_missing_governorate(client, shopper):
    login(client, shopper)
    res = client.post("/shop/addresses", data={
        "recipient_name": "زينب", "phone": "12345", "governorate": "", "district": "الكرادة",
        "landmark": "قرب جامع", "postal_code": "123"})
    html = _html(res)
    assert res.status_code == 422
    assert "اختر المحافظة" in html or "Choose a governorate" in html
    assert db.scalar(select(Address)) is None
    res = client.post("/shop/addresses", data={
        "recipient_name": "زينب علي", "phone": "0770 123 4567", "governorate": "IQ-NA",
        "district": "حي الأمير", "landmark": "قرب مرقد", "postal_code": "٥٤٠٠١"})
    assert res.status_code == 302
    saved = db.scalar(select(Address))
    assert (saved.phone, saved.governorate, saved.postal_code) == (
        "+9647701234567", "IQ-NA", "54001")


def test_cancel_button_cancels_and_refunds(app, client, shopper, baghdad_shop, shelf,
                                           make_card):
    from shop.services.checkout import PaymentChoice
    from tests.shop.checkout_helpers import door, place

    lamp = product(baghdad_shop, shelf, stock=2)
    lamp_id = lamp.id
    put_in_cart(shopper, lamp)
    card = make_card(balance=50_000, user_id=shopper.id)
    order = place(shopper, door(make_address(shopper)), payment=PaymentChoice(
        "post_card", card_number=card.number, pin=CARD_PIN))
    order_id = order.id
    drain(app)
    login(client, shopper)
    assert f'action="/shop/orders/{order_id}/cancel"' in _html(
        client.get(f"/shop/orders/{order_id}"))
    res = client.post(f"/shop/orders/{order_id}/cancel")
    assert res.status_code == 302
    drain(app)
    db.rollback()
    assert db.get(Order, order_id).status == "cancelled"
    assert db.get(Product, lamp_id).stock == 2


def test_receipt_pdf_has_the_order_number_and_a_qr_code_to_the_order(
        client, shopper, baghdad_shop, shelf, tmp_path):
    import subprocess

    from pypdf import PdfReader

    from tests.shop.checkout_helpers import door, place

    put_in_cart(shopper, product(baghdad_shop, shelf, title_ar="مصباح مكتب",
                                 title_en="Desk lamp"))
    order = place(shopper, door(make_address(shopper)))
    login(client, shopper)
    res = client.get(f"/shop/orders/{order.id}/receipt.pdf")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    pdf = tmp_path / "receipt.pdf"
    pdf.write_bytes(res.data)
    text = "".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    assert order.number in text and "Order receipt" in text
    subprocess.run(["pdftoppm", "-png", "-r", "150", str(pdf), str(tmp_path / "r")],
                   check=True)
    png = next(tmp_path.glob("r*.png"))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True,
                         text=True, check=True).stdout.strip()
    # The QR carries the order's signed reference (not its row id); its owner's phone
    # opens their own order page.
    assert "/r/order." in out
    assert client.get("/" + out.split("://", 1)[1].split("/", 1)[1]).headers[
        "Location"] == f"/shop/orders/{order.id}"
    shots = Path(os.environ.get("BARID_SCREENSHOTS", "/tmp/barid-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, shots / "receipt.png")  # for people to look at


def test_procurement_pages_need_the_procurement_role(client, shopper):
    from app.auth.models import Role

    login(client, shopper)
    assert client.get("/backoffice/procurement/").status_code == 403
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    client.post("/logout")
    login(client, buyer)
    assert client.get("/backoffice/procurement/").status_code == 200


def test_a_long_address_wraps_inside_its_box_on_the_receipt(client, shopper, baghdad_shop,
                                                             shelf, tmp_path):
    """An address as long as the form allows stays between the two labels of its row,
    on several lines, and nothing runs off the page (pdftotext's word boxes say so; the
    PNG is kept to look at)."""
    import subprocess
    from html import unescape

    from tests.shop.checkout_helpers import door, place

    put_in_cart(shopper, product(baghdad_shop, shelf, title_ar="مصباح", title_en="Lamp"))
    landmark = ("خلف مدرسة المتنبي الابتدائية للبنين مقابل صيدلية الشفاء وبجانب مخبز "
                "الرافدين في الزقاق الثالث بعد محطة الوقود الكبيرة، البيت ذو الباب الأخضر")
    order = place(shopper, door(make_address(
        shopper, district="الكرادة داخل - محلة 905 - زقاق 17 - دار 33", landmark=landmark)))
    login(client, shopper)
    pdf = tmp_path / "receipt.pdf"
    pdf.write_bytes(client.get(f"/shop/orders/{order.id}/receipt.pdf").data)
    subprocess.run(["pdftotext", "-bbox", str(pdf), str(tmp_path / "words.html")], check=True)
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                       r'yMax="([\d.]+)">([^<]*)</word>',
                       (tmp_path / "words.html").read_text())
    page_width, margin = 595.28, 18 * 72 / 25.4
    for x0, _y0, x1, _y1, word in words:
        assert margin - 2 <= float(x0) and float(x1) <= page_width - margin + 2, unescape(word)
    # The address's row: between the "Deliver to" label and the recipient's, on more
    # than one line, each inside the middle box.
    top = next(float(y0) for _x0, y0, _x1, _y1, w in words if w == "Deliver")
    bottom = next(float(y0) for _x0, y0, _x1, _y1, w in words if w == "Recipient")
    box_left, box_right = margin + 42 * 72 / 25.4, page_width - margin - 42 * 72 / 25.4
    rows = {round(float(y0)) for x0, y0, x1, _y1, _w in words
            if top - 1 <= float(y0) < bottom - 1 and float(x0) >= box_left - 2
            and float(x1) <= box_right + 2}
    assert len(rows) >= 2, rows
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "long")], check=True)
    shots = Path(os.environ.get("BARID_SCREENSHOTS", "/tmp/barid-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(tmp_path.glob("long*.png")), shots / "receipt-long-address.png")


def _checked(html: str, value: str) -> bool:
    return re.search(r'<input type="radio" name="payment" value="' + value
                     + r'"\s+checked', html) is not None


def test_checkout_starts_on_the_holders_own_post_card_and_on_the_bank_card_for_others(
        app, client, shopper, baghdad_shop, shelf, make_card):
    put_in_cart(shopper, product(baghdad_shop, shelf, price=15_000, stock=4))
    address = make_address(shopper)
    login(client, shopper)
    url = f"/shop/checkout?method=door&address_id={address.id}"
    # No post card of their own: the bank card is chosen, no card list is offered.
    html = _html(client.get(url))
    assert _checked(html, "stripe") and not _checked(html, "post_card")
    assert 'id="card_id"' not in html
    card = make_card(balance=100_000, user_id=shopper.id)
    html = _html(client.get(url))
    # A holder: the post card, and their own card selected (not "another card").
    assert _checked(html, "post_card") and not _checked(html, "stripe")
    assert re.search(rf'<option value="{card.id}"\s+selected>', html)
    assert not re.search(r'<option value=""\s+selected>', html)
    # Without card payments the post card is the only way, holder or not.
    secret = app.config["STRIPE_SECRET_KEY"]
    app.config["STRIPE_SECRET_KEY"] = ""
    try:
        client.post("/logout")
        other = make_shopper("No Card")
        put_in_cart(other, product(baghdad_shop, shelf, price=5_000, stock=4))
        other_address = make_address(other)
        login(client, other)
        html = _html(client.get(f"/shop/checkout?method=door&address_id={other_address.id}"))
        assert _checked(html, "post_card") and 'value="stripe"' not in html
    finally:
        app.config["STRIPE_SECRET_KEY"] = secret


def test_pickup_offers_every_open_post_office_by_governorate(client, shopper, baghdad_shop,
                                                             shelf):
    from app.auth.models import OfficeKind, PostOffice
    from app.database import utcnow

    def office(code, gov, name, kind=OfficeKind.COUNTER, closed=False, hours=""):
        o = PostOffice(code=code, name_ar=name, name_en=code, governorate=gov, kind=kind,
                       opening_hours=hours, closed_at=utcnow() if closed else None)
        db.add(o)
        return o

    office("BSR1", "IQ-BA", "مكتب بريد العشار", hours="Sat-Thu 08:00-14:00")
    office("BGD1", "IQ-BG", "مكتب بريد الكرادة")
    office("BGD2", "IQ-BG", "مكتب تسليم المنصور", kind=OfficeKind.DELIVERY)
    office("HLB1", "IQ-HA", "مكتب بريد حلبجة")
    office("BGD9", "IQ-BG", "مركز فرز بغداد", kind=OfficeKind.SORTING)
    closed = office("NJF1", "IQ-NA", "مكتب بريد النجف القديم", closed=True)
    db.commit()
    put_in_cart(shopper, product(baghdad_shop, shelf))
    login(client, shopper)
    html = _html(client.get("/shop/checkout?method=pickup"))
    chooser = html[html.index('id="office_id"'):html.index("</select>", html.index(
        'id="office_id"'))]
    groups = re.findall(r'<optgroup label="([^"]+)">', chooser)
    # Governorates in the list's order (Baghdad first), Halabja too.
    assert groups[:2] == ["بغداد", "البصرة"] and "حلبجة" in groups
    for name in ("مكتب بريد الكرادة", "مكتب تسليم المنصور", "مكتب بريد العشار",
                 "مكتب بريد حلبجة"):
        assert name in chooser, name
    assert "Sat-Thu 08:00-14:00" in chooser
    # A closed office and a sorting centre (no counter) are not offered, nor taken.
    assert "مركز فرز بغداد" not in chooser and "النجف القديم" not in chooser
    res = client.get(f"/shop/checkout?method=pickup&office_id={closed.id}"
                     "&recipient_name=Zainab&phone=07701234567")
    assert "اختر مكتب البريد الذي تستلم منه." in _html(res)
