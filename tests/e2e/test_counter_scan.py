"""A clerk scans an order's QR code off a shopper's phone and the order opens at the counter.

The shopper's "show at the counter" page is opened at phone size (390 x 844, a phone's
pixel density) and photographed; zbarimg reads the QR code from that screenshot, as a
counter scanner reads the phone's screen. The clerk's keyboard-wedge scanner types what
it read into the back-office search box and presses Enter: the order's back-office page
opens, with its next actions (its parcels to hand over, its payments to refund).

Screenshots go to $BARID_SCREENSHOTS (default /tmp/barid-screenshots).
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import subprocess

import pytest

from app.auth.models import Role
from app.auth.services import create_user
from app.database import db, unit_of_work
from tests.payments.conftest import _fast_pins, clerk, make_card, office  # noqa: F401
from tests.payments.helpers import CARD_PIN
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    PASSWORD,
    baghdad_shop,
    door,
    make_address,
    place,
    product,
    put_in_cart,
    shelf,
    shopper,
)

pytestmark = pytest.mark.e2e


@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def order(shopper, baghdad_shop, shelf, make_card):
    """An order paid with the shopper's post card: it has a payment to show."""
    from shop.services.checkout import PaymentChoice

    card = make_card(balance=200_000, user_id=shopper.id)
    put_in_cart(shopper, product(baghdad_shop, shelf, title_ar="مصباح مكتب نحاسي",
                                 title_en="Brass desk lamp"))
    placed = place(shopper, door(make_address(shopper, recipient_name="زينب علي")),
                   payment=PaymentChoice("post_card", card_number=card.number, pin=CARD_PIN))
    db.commit()
    return placed


@pytest.fixture()
def counter_clerk(office) -> str:
    with unit_of_work():
        user = create_user("Ali Clerk", email="ali.clerk@barid.iq", password=PASSWORD,
                           roles=(Role.CLERK,), post_office_code=office.code)
    return user.email


def _log_in(page, base: str, who: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=identifier]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()


def test_clerk_scans_the_order_qr_off_a_phone_and_the_order_opens(
        browser, live_server, order, shopper, counter_clerk, screenshots, tmp_path):
    number, order_id, shopper_email = order.number, order.id, shopper.email

    phone = browser.new_context(viewport={"width": 390, "height": 844},
                                device_scale_factor=3, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, shopper_email)
        page.goto(f"{live_server}/shop/orders/{order_id}/show")
        assert number in page.content()
        shot = screenshots / "order-qr-phone.png"
        page.screenshot(path=str(shot))
    finally:
        phone.close()
    (tmp_path / "phone.png").write_bytes(shot.read_bytes())
    read = subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / "phone.png")],
                          capture_output=True, text=True)
    scanned = read.stdout.strip()
    assert read.returncode == 0 and scanned, "the QR code on the phone's screen does not scan"
    # What the code carries is a signed reference, never the order's row id.
    assert "/r/order." in scanned and scanned.rsplit("/r/", 1)[1] != f"order.{order_id}"

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    page = desk.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, counter_clerk)
        page.goto(live_server + "/backoffice/")
        # The scanner types into the focused search box and ends with Enter.
        box = page.locator("#bo-search-q")
        assert box.evaluate("el => el === document.activeElement")
        page.keyboard.type(scanned)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server}/backoffice/orders/*")
        assert page.url == f"{live_server}/backoffice/orders/{order_id}"
        assert number in page.locator("h1").inner_text()
        # Its next actions: the parcels panel (hand over, take duty) and the payments
        # panel (each payment opens where it is refunded).
        panels = page.locator("section.bo-panel h2").all_inner_texts()
        assert panels == ["الطرود", "الدفعات"]
        assert page.locator("section.bo-panel a[href^='/backoffice/payments/payments/']"
                            ).count() >= 1
        # The payment's state is in Arabic too (it showed the raw "pending").
        assert page.locator("[data-payment-status]").first.inner_text() in (
            "قيد الانتظار", "مدفوعة", "أُنشئت")
        page.screenshot(path=str(screenshots / "order-scanned-at-counter.png"), full_page=True)
    finally:
        desk.close()
