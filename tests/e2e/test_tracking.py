"""A clerk accepts a parcel, prints its label and scans it to delivery; a visitor tracks it.

Debian's chromium driven by Playwright against a live server. Screenshots of the counter,
the scanning page and the tracking page are written to $BARID_SCREENSHOTS (default
/tmp/barid-screenshots) for people to look at.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e



@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def clerk(app):
    from app.auth.services import create_post_office
    from app.database import unit_of_work
    from tests.tracking.helpers import make_user

    # The services flush; the live server's thread sees only what this set-up commits.
    with app.app_context(), unit_of_work():
        create_post_office("BGD-01", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office",
                           "IQ-BG", is_exchange_office=True)
        create_post_office("BSR-01", "مكتب بريد البصرة", "Basra Post Office", "IQ-BA")
        from sqlalchemy import select

        from app.auth.models import PostOffice
        from app.database import db

        office = db.scalar(select(PostOffice).where(PostOffice.code == "BGD-01"))
        user = make_user("Ali Clerk", "clerk", office=office)
        return user.email


def test_clerk_accepts_scans_to_delivery_and_visitor_tracks(
        browser, live_server, clerk, screenshots):
    from tests.tracking.helpers import PASSWORD

    ctx = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server + "/login")
    page.fill("input[name=identifier]", clerk)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()

    # The counter: sender, recipient with governorate and landmark, weight, cash.
    page.goto(live_server + "/backoffice/parcels/accept")
    page.fill("#sender_name", "أحمد الكاظمي")
    page.fill("#sender_phone", "07701234567")
    page.select_option("#sender_governorate", "IQ-BG")
    page.fill("#sender_district", "الكرادة")
    page.fill("#recipient_name", "فاطمة الموسوي")
    page.fill("#recipient_phone", "07801234567")
    # Delivered in Baghdad, so this Baghdad clerk's office is the parcel's destination.
    page.select_option("#recipient_governorate", "IQ-BG")
    page.fill("#recipient_district", "المنصور")
    page.fill("#recipient_landmark", "قرب مدرسة الرواد")
    page.fill("#weight_grams", "1500")
    page.screenshot(path=str(screenshots / "tracking-accept-ar.png"), full_page=True)
    page.click("#submit")
    page.wait_for_load_state()
    number = page.locator("h1 .num").inner_text().strip()
    assert len(number) == 13 and number.startswith("CP") and number.endswith("IQ")
    assert "picked_up" not in page.content()

    # The label the print button opens is a PDF of this parcel.
    href = page.locator("#print-label").get_attribute("href")
    label = page.request.get(live_server + href)
    assert label.ok and label.headers["content-type"] == "application/pdf"
    assert label.body().startswith(b"%PDF")

    # The scanning page: choose the event once, scan, see each result at once.
    page.goto(live_server + "/backoffice/parcels/scan")

    def scan(code: str, typed: str, **extra: str) -> str:
        page.select_option("#code", code)
        for field, value in extra.items():
            page.fill(f"#{field}", value)
        before = page.locator("#scan-log li").count()
        page.fill("#scan-input", typed)
        page.press("#scan-input", "Enter")
        page.locator("#scan-log li").nth(before).wait_for()
        return page.locator("#scan-log li").first.get_attribute("class")

    assert scan("EDD", number.lower()) == "ok"
    assert scan("EDD", "EE123456786IQ") == "bad"  # a mistyped number is refused visibly
    assert scan("EMG", number) == "ok"
    assert scan("EDG", number) == "ok"
    page.screenshot(path=str(screenshots / "tracking-scan-ar.png"), full_page=True)
    # On a phone (390 px), mid-journey: every event in Arabic words with its city, no
    # code, the next step, and the parcel's QR; nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    ppage = phone.new_page()
    ppage.goto(live_server + f"/track/{number}")
    shown = ppage.locator("main").inner_text()
    for raw in ("EMA", "EDD", "EMG", "EDG", "out_for_delivery", "picked_up"):
        assert raw not in shown, raw
    assert "خرجت مع موزع البريد للتسليم" in shown and "بغداد" in shown
    assert "الخطوة التالية" in ppage.locator(".next-step").inner_text()
    assert ppage.locator(".parcel-qr svg.qr").is_visible()
    assert ppage.evaluate("document.documentElement.scrollWidth") <= 390
    ppage.screenshot(path=str(screenshots / "tracking-page-390-ar.png"), full_page=True)
    phone.close()
    # The parcel page offers the hand-over here, at its destination: name and ID only.
    page.goto(live_server + f"/backoffice/parcels/{number}")
    assert page.locator("#receiver_id_number").is_visible()
    assert page.locator("#supervisor_login").count() == 0
    page.screenshot(path=str(screenshots / "tracking-handover-ar.png"), full_page=True)
    page.goto(live_server + "/backoffice/parcels/scan")
    assert scan("EMI", number, receiver_name="فاطمة الموسوي",
                receiver_id_number="A1234567") == "ok"
    ctx.close()

    # A visitor types the number as it is printed, with spaces, on a phone.
    visitor = browser.new_context(viewport={"width": 390, "height": 844})
    vpage = visitor.new_page()
    vpage.goto(live_server + "/")
    vpage.fill("#track-number", f"{number[:2].lower()} {number[2:5]} {number[5:8]} "
                                f"{number[8:11]} {number[11:]}")
    vpage.press("#track-number", "Enter")
    vpage.wait_for_load_state()
    assert vpage.url.endswith(f"/track/{number}")
    assert vpage.locator("#status-heading").inner_text() == "تم التسليم"
    assert vpage.locator(".timeline li").count() == 5
    assert "فاطمة" not in vpage.content() and "07801234567" not in vpage.content()
    assert "A1234567" not in vpage.content()
    vpage.screenshot(path=str(screenshots / "tracking-page-ar.png"), full_page=True)
    vpage.click("text=English")
    vpage.wait_for_load_state()
    assert vpage.locator("#status-heading").inner_text() == "Delivered"
    vpage.screenshot(path=str(screenshots / "tracking-page-en.png"), full_page=True)
    visitor.close()
