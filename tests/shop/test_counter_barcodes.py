"""One window, one barcode: the back-office search box finds anything by what is typed or
scanned, and every Barid QR code (label, receipt, order) opens its record at a counter
while showing a stranger only what is public."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from app import barcodes
from app.audit import AuditRecord
from app.auth.models import Role, User
from app.auth.services import create_user
from app.database import db, unit_of_work
from payments.models import Payment
from shop.models import Order
from shop.services import buyforme
from tests.payments.conftest import _fast_pins, clerk, make_card, office  # noqa: F401
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    PASSWORD,
    baghdad_shop,
    door,
    login,
    make_address,
    make_shopper,
    place,
    product,
    put_in_cart,
    rates,
    shelf,
    shopper,
)
from tests.tracking.helpers import domestic_draft
from tracking import labels
from tracking.services.parcels import preadvise

ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _staff(office, role: Role = Role.CLERK, name: str = "Counter") -> User:
    n = db.scalar(select(User.id).order_by(User.id.desc()).limit(1)) or 0
    with unit_of_work():
        user = create_user(f"{name} {n}", email=f"{role.value}{n}@barid.iq", password=PASSWORD,
                           roles=(role,), post_office_code=office.code)
    return db.get(User, user.id)


def _qr_in_pdf(pdf: bytes, tmp_path: Path) -> list[str]:
    """What zbarimg reads as QR codes on the PDF's first page (as a counter scanner)."""
    (tmp_path / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "1", "-singlefile",
                    str(tmp_path / "doc.pdf"), str(tmp_path / "page")], check=True)
    out = subprocess.run(["zbarimg", "--quiet", str(tmp_path / "page.png")],
                         capture_output=True, text=True).stdout
    return [ln.removeprefix("QR-Code:") for ln in out.splitlines() if ln.startswith("QR-Code:")]


def _qr_in_svg(html: str, tmp_path: Path) -> str:
    """Draw the page's inline SVG QR code as a PNG and read it with zbarimg: what a
    counter scanner would read off the phone's screen."""
    svg = re.search(r"<svg[^>]*viewBox=\"0 0 (\d+) (\d+)\".*?</svg>", html, re.S)
    assert svg, "no QR code on the page"
    size, scale = int(svg.group(1)), 8
    img = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(img)
    num = r"(\d+(?:\.\d+)?)"
    for x0, y0, x1, y1 in re.findall(rf"M{num},{num}H{num}V{num}H", svg.group(0)):
        draw.rectangle([float(x0) * scale, float(y0) * scale,
                        float(x1) * scale - 1, float(y1) * scale - 1], fill=0)
    img.save(tmp_path / "phone.png")
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / "phone.png")],
                         capture_output=True, text=True).stdout.strip()
    assert out, "the QR code on the page does not scan"
    return out


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _search(client, q: str):
    return client.get("/backoffice/search", query_string={"q": q})


@pytest.fixture()
def order(shopper, baghdad_shop, shelf) -> Order:
    put_in_cart(shopper, product(baghdad_shop, shelf, title_ar="مصباح", title_en="Lamp"))
    return place(shopper, door(make_address(shopper)))


# -- the search box --------------------------------------------------------------------------


def test_search_box_is_on_every_backoffice_page_as_a_plain_get_form(app, client, office):
    login(client, _staff(office))
    for page in ("/backoffice/", "/backoffice/payments/cards", "/backoffice/parcels/scan"):
        html = client.get(page).get_data(as_text=True)
        form = re.search(r'<form class="bo-search" method="get" action="/backoffice/search"'
                         r'.*?</form>', html, re.S)
        assert form and 'name="q"' in form.group(0), page


def test_a_parcel_is_found_by_its_s10_number_however_it_is_typed(app, client, office):
    parcel = preadvise(domestic_draft())
    number = parcel.tracking_number
    db.commit()
    login(client, _staff(office))
    spaced = f"{number[:2]} {number[2:5]} {number[5:8]}-{number[8:11]} {number[11:]}"
    for typed in (number, number.lower(), spaced.lower(), number.translate(ARABIC_DIGITS),
                  f"  {spaced.translate(ARABIC_DIGITS)}  "):
        res = _search(client, typed)
        assert res.status_code == 302, typed
        assert res.headers["Location"] == f"/backoffice/parcels/{number}"


def test_orders_and_buy_for_me_requests_are_found_by_number(app, client, office, order,
                                                            shopper, rates):
    with unit_of_work():
        req = buyforme.submit_request(shopper.id, {
            "url": "https://www.example.com/jacket", "title": "Winter jacket",
            "price": "49.99", "currency": "USD", "quantity": "1", "weight_g": "400",
            "customs_category": "clothing"})
    login(client, _staff(office, Role.ADMIN))
    res = _search(client, " " + order.number.lower())
    assert res.status_code == 302 and res.headers["Location"] == f"/backoffice/orders/{order.id}"
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert order.number in page
    res = _search(client, req.number.lower().translate(ARABIC_DIGITS))
    assert res.headers["Location"] == f"/backoffice/procurement/{req.id}"


def test_payments_and_cards_are_found_by_reference_number_national_id_and_mobile(
        app, client, office, make_card):
    first = make_card(balance=10_000)
    second = make_card()
    payment = db.scalar(select(Payment).where(Payment.reference_id == str(first.id)))
    login(client, _staff(office))

    for typed in (f"P-{payment.id:08d}", f"p{payment.id}".translate(ARABIC_DIGITS)):
        res = _search(client, typed)
        assert res.headers["Location"] == f"/backoffice/payments/payments/{payment.id}", typed
    grouped = " ".join(first.number[i:i + 4] for i in range(0, 16, 4))
    assert _search(client, grouped).headers["Location"] == f"/backoffice/payments/cards/{first.id}"
    res = _search(client, second.national_id.translate(ARABIC_DIGITS))
    assert res.headers["Location"] == f"/backoffice/payments/cards/{second.id}"
    # Both cards carry the holder's mobile: typed the way people say it, both are listed.
    listed = _search(client, "٠٧٧٠ ١٢٣ ٤٥٦٧")
    html = listed.get_data(as_text=True)
    assert listed.status_code == 200
    assert f"/backoffice/payments/cards/{first.id}" in html
    assert f"/backoffice/payments/cards/{second.id}" in html


def test_merchants_by_name_and_people_by_email_or_mobile_for_the_admin_only(
        app, client, office, baghdad_shop):
    with unit_of_work():
        person = create_user("Huda Kareem", email="huda@example.iq", phone="07801112233",
                             password=PASSWORD, roles=(Role.SHOPPER,))
    login(client, _staff(office, Role.ADMIN))
    fragment = baghdad_shop.name_en[2:8].upper()
    assert (_search(client, fragment).headers["Location"]
            == f"/backoffice/admin/merchants/{baghdad_shop.id}")
    assert (_search(client, "HUDA@example.iq").headers["Location"]
            == f"/backoffice/admin/users/{person.id}")
    assert (_search(client, "+964 780 111 2233").headers["Location"]
            == f"/backoffice/admin/users/{person.id}")
    # A clerk cannot open people's accounts, so the search does not list them.
    client.post("/logout")
    login(client, _staff(office))
    res = _search(client, "huda@example.iq")
    assert res.status_code == 200 and "/backoffice/admin/users/" not in res.get_data(as_text=True)


def test_empty_overlong_and_unknown_searches_say_so(app, client, office):
    login(client, _staff(office))
    empty = _search(client, "   ")
    assert empty.status_code == 200
    assert "اكتب أو امسح رقم تتبع" in empty.get_data(as_text=True)
    long = _search(client, "x" * 500)
    assert long.status_code == 400 and "أطول من أن يكون" in long.get_data(as_text=True)
    # A scanner's stray control characters (a NUL reaching PostgreSQL) are no 500.
    assert _search(client, "\x00\t").status_code == 200
    assert _search(client, "ab\x00c%_").status_code == 200
    nothing = _search(client, "ZZ999999999ZZ")
    assert nothing.status_code == 200
    assert "لم يُعثر على شيء لـ «ZZ999999999ZZ»" in nothing.get_data(as_text=True)


def test_search_needs_a_staff_role(app, client, shopper):
    assert client.get("/backoffice/search?q=x").status_code == 302
    login(client, shopper)
    assert _search(client, "x").status_code == 403


# -- barcodes ---------------------------------------------------------------------------------


def test_label_qr_opens_the_parcel_at_the_counter_and_public_tracking_for_anyone(
        app, client, office, tmp_path):
    parcel = preadvise(domestic_draft())
    number = parcel.tracking_number
    (scanned,) = _qr_in_pdf(labels.render_label(parcel), tmp_path)
    db.commit()
    assert number not in scanned.split("/r/")[1].split(".")[0]  # a kind, then signed data
    # A stranger who scans the label sees public tracking, nothing more.
    res = client.get(_path(scanned))
    assert res.status_code == 302 and res.headers["Location"] == f"/track/{number}"
    # A clerk's scanner opens the parcel with its actions, by URL or through the search box.
    login(client, _staff(office))
    res = client.get(_path(scanned))
    assert res.headers["Location"] == f"/backoffice/parcels/{number}"
    assert client.get(res.headers["Location"]).status_code == 200
    assert _search(client, scanned).headers["Location"] == f"/backoffice/parcels/{number}"
    assert (_search(client, scanned.split("/r/")[1]).headers["Location"]
            == f"/backoffice/parcels/{number}")


def test_receipt_qr_opens_the_payment_at_the_counter_and_no_personal_data_for_anyone(
        app, client, office, make_card, tmp_path):
    card = make_card(balance=25_000)
    payment = db.scalar(select(Payment).where(Payment.reference_id == str(card.id)))
    clerk_user = _staff(office)
    login(client, clerk_user)
    pdf = client.get(f"/backoffice/payments/payments/{payment.id}/receipt.pdf").data
    (scanned,) = _qr_in_pdf(pdf, tmp_path)
    assert barcodes.read(scanned.split("/r/")[1]) == ("receipt", str(payment.id))
    res = client.get(_path(scanned))
    assert res.headers["Location"] == f"/backoffice/payments/payments/{payment.id}"
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert f"/backoffice/payments/payments/{payment.id}/refund" in page  # refund from here
    client.post("/logout")
    public = client.get(_path(scanned))
    html = public.get_data(as_text=True)
    assert public.status_code == 200
    assert "هذه وثيقة صادرة عن بريد" in html and "إيصال دفع" in html
    assert card.holder_name not in html and card.number not in html and "25,000" not in html


def test_order_qr_opens_the_order_at_the_counter_and_the_owners_own_page(
        app, client, office, order, shopper, tmp_path):
    login(client, shopper)
    pdf = client.get(f"/shop/orders/{order.id}/receipt.pdf").data
    (scanned,) = _qr_in_pdf(pdf, tmp_path)
    # The owner's phone opens their own order.
    assert client.get(_path(scanned)).headers["Location"] == f"/shop/orders/{order.id}"
    # The phone shows the same code full screen, and it scans.
    show = client.get(f"/shop/orders/{order.id}/show")
    assert show.status_code == 200
    on_phone = _qr_in_svg(show.get_data(as_text=True), tmp_path)
    assert barcodes.read(on_phone.split("/r/")[1]) == ("order", str(order.id))
    # Another shopper sees only that it is a valid Barid document.
    client.post("/logout")
    login(client, make_shopper("Other"))
    other = client.get(_path(on_phone))
    assert other.status_code == 200 and order.number not in other.get_data(as_text=True)
    assert order.recipient_name not in other.get_data(as_text=True)
    assert client.get(f"/shop/orders/{order.id}/show").status_code == 404
    # The clerk's scanner opens the order at the counter, with its parcels and payments.
    client.post("/logout")
    login(client, _staff(office))
    res = client.get(_path(on_phone))
    assert res.headers["Location"] == f"/backoffice/orders/{order.id}"
    assert order.number in client.get(res.headers["Location"]).get_data(as_text=True)


def test_parcel_and_post_card_pages_show_their_qr_at_the_counter(
        app, client, office, make_card, shopper, tmp_path):
    parcel = preadvise(domestic_draft())
    card = make_card(user_id=shopper.id)
    db.commit()
    show = client.get(f"/track/{parcel.tracking_number.lower()}/show")
    assert show.status_code == 200
    scanned = _qr_in_svg(show.get_data(as_text=True), tmp_path)
    assert barcodes.read(scanned.split("/r/")[1]) == ("parcel", parcel.tracking_number)
    assert client.get("/track/ZZ999999999ZZ/show").status_code == 400

    login(client, shopper)
    show = client.get(f"/payments/cards/{card.id}/show")
    html = show.get_data(as_text=True)
    scanned = _qr_in_svg(html, tmp_path)
    assert barcodes.read(scanned.split("/r/")[1]) == ("card", str(card.id))
    assert card.number not in scanned  # the card's number is never in its QR code
    client.post("/logout")
    login(client, _staff(office))
    res = client.get(_path(scanned))
    assert res.headers["Location"] == f"/backoffice/payments/cards/{card.id}"
    assert f"/backoffice/payments/cards/{card.id}/topup" in client.get(
        res.headers["Location"]).get_data(as_text=True)  # top up from here


def test_a_tampered_or_forged_token_is_a_404(app, client, office, order):
    token = barcodes.sign("order", order.id)
    kind, payload, sig = token.split(".")
    other = barcodes.sign("order", order.id + 1).split(".")[1]
    forged = [f"{kind}.{other}.{sig}",                      # someone else's id, same signature
              # A changed character inside the signature (the last one may only carry
              # base64's padding bits, which decode to the same bytes).
              f"{kind}.{payload}.{sig[:5]}{'A' if sig[5] != 'A' else 'B'}{sig[6:]}",
              f"receipt.{payload}.{sig}",                    # another kind's salt
              f"nosuch.{payload}.{sig}", "order.1", "x" * 300]
    for bad in forged:
        assert client.get(f"/r/{bad}").status_code == 404, bad
    login(client, _staff(office))
    for bad in forged[:3]:
        res = _search(client, f"http://127.0.0.1:5000/r/{bad}")
        assert res.status_code == 404, bad
    assert client.get(f"/r/{token}").status_code == 302


def test_a_refused_backoffice_page_is_audited(app, client, office):
    login(client, _staff(office))
    assert client.get("/backoffice/admin/users").status_code == 403
    rec = db.scalar(select(AuditRecord).where(AuditRecord.action == "auth.forbidden"))
    assert rec.object_id == "backoffice.admin_users"
    # People pages are the admin's and, for their own office, the supervisor's.
    assert rec.details["needed"] == ["admin", "supervisor"]
    assert rec.details["held"] == ["clerk"]
