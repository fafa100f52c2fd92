"""A real browser (Debian's chromium, driven by Playwright) against a live server.

A shopper registers (with the code sent to her address), logs out, logs in, switches to
English and back; the page's direction follows each switch. Screenshots of the home page
in both languages are written to $BARID_SCREENSHOTS (default /tmp/barid-screenshots) for
people to look at.
"""

from __future__ import annotations

import pytest

from tests.app.test_auth_support import sent_code

pytestmark = pytest.mark.e2e



@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def _direction(page) -> tuple[str, str]:
    html = page.locator("html")
    return html.get_attribute("lang"), html.get_attribute("dir")


def test_home_page_switches_language_and_direction(page, live_server, screenshots):
    page.goto(live_server + "/")
    assert _direction(page) == ("ar", "rtl")
    assert page.locator("h1").inner_text() == "مكتب البريد، على الإنترنت"
    # Right to left for real: the brand sits on the right of the header.
    brand = page.locator(".brand").bounding_box()
    assert brand["x"] > 600
    page.screenshot(path=str(screenshots / "home-ar.png"), full_page=True)

    page.click("text=English")
    page.wait_for_load_state()
    assert page.url == live_server + "/"
    assert _direction(page) == ("en", "ltr")
    assert page.locator("h1").inner_text() == "The post office, online"
    assert page.locator(".brand").bounding_box()["x"] < 600
    page.screenshot(path=str(screenshots / "home-en.png"), full_page=True)

    # Remembered on the next page too, then back to Arabic.
    page.goto(live_server + "/no-such-page")
    assert _direction(page) == ("en", "ltr")
    page.click("text=العربية")
    page.wait_for_load_state()
    assert page.url == live_server + "/no-such-page"
    assert _direction(page) == ("ar", "rtl")
    assert page.locator("h1").inner_text() == "الصفحة غير موجودة"


def test_shopper_registers_logs_in_and_switches_language(app, page, live_server, screenshots):
    page.goto(live_server + "/")
    page.click("text=إنشاء حساب")
    assert _direction(page) == ("ar", "rtl")
    page.fill("input[name=full_name]", "زينب علي")
    page.fill("input[name=identifier]", "zainab@example.iq")
    page.fill("input[name=password]", "a long enough secret 2026")
    page.fill("input[name=password_confirm]", "a long enough secret 2026")
    page.click("form [type=submit]")
    page.wait_for_load_state()
    # No account yet: the code goes to the address given, and opens it from this browser.
    assert page.locator("h1").inner_text() == "تحقق من رسائلك"
    page.fill("input[name=code]", sent_code(app, "zainab@example.iq"))
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert page.locator(".flash-success").count() == 1
    assert page.locator("text=تسجيل الخروج").count() == 1

    page.click("text=تسجيل الخروج")
    page.wait_for_load_state()
    assert page.locator("text=تسجيل الدخول").count() >= 1

    page.click(".site-nav >> text=تسجيل الدخول")
    page.fill("input[name=identifier]", "zainab@example.iq")
    page.fill("input[name=password]", "a long enough secret 2026")
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert page.locator("text=تسجيل الخروج").count() == 1
    assert _direction(page) == ("ar", "rtl")
    page.screenshot(path=str(screenshots / "logged-in-ar.png"), full_page=True)

    page.click("text=English")
    page.wait_for_load_state()
    assert _direction(page) == ("en", "ltr")
    assert page.locator("text=Log out").count() == 1
    page.goto(live_server + "/")
    assert _direction(page) == ("en", "ltr")

    page.click("text=العربية")
    page.wait_for_load_state()
    assert _direction(page) == ("ar", "rtl")
    assert page.locator("text=تسجيل الخروج").count() == 1
