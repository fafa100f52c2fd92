"""The supervisor's dashboard in a real browser, at desk (1280 px) and phone (390 px)
width, in Arabic (and once in English): every chart is drawn, nothing runs off the page,
and a column or bar opens the list behind it.

Screenshots go to $BARID_SCREENSHOTS (default /tmp/barid-screenshots) for people to
look at: Arabic joined and right-to-left, charts legible, nothing overlapping.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.database import db
from tests.tracking.helpers import PASSWORD, make_user

pytestmark = pytest.mark.e2e

FIGURES = ("parcel-flow", "parcel-status", "customs-backlog", "stale-parcels",
           "payments-method", "card-money", "drawers")


@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def busy_month(app_ctx):
    """A month of traffic at two offices, different each day, and a supervisor of one."""
    from app.auth.models import PostOffice
    from payments.models import Account
    from tests.tracking.test_dashboard import (
        EARLY_TODAY,
        NOW,
        TODAY_START,
        held,
        parcel,
        payment,
    )

    baghdad = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد المركزي",
                         name_en="Baghdad Central Post Office", governorate="IQ-BG",
                         is_exchange_office=True)
    basra = PostOffice(code="BSR01", name_ar="مكتب بريد البصرة", name_en="Basra Post Office",
                       governorate="IQ-BA")
    db.add_all([baghdad, basra])
    db.flush()
    for back in range(30):
        when = EARLY_TODAY if back == 0 else TODAY_START - timedelta(days=back - 1, hours=12)
        for _ in range((back * 7) % 9 + 2):
            parcel(baghdad, ("EMA", when))
        for _ in range((back * 5) % 6):
            parcel(baghdad, ("EMA", when - timedelta(days=2)), ("EMI", when),
                   status="delivered", closed=True)
        parcel(basra, ("EMA", when))
        payment(baghdad, "cash", 5_000 + 1_000 * (back % 4), purpose="card_topup", when=when)
        payment(baghdad, "post_card", 2_500 * (back % 5 + 1), when=when)
    for hours in (3, 30, 80, 200, 400):
        held(baghdad, NOW - timedelta(hours=hours))
    for _ in range(3):
        parcel(baghdad, ("EMA", NOW - timedelta(days=4)), delayed=True)
    parcel(basra, ("EMA", NOW - timedelta(days=4)), delayed=True)
    payment(baghdad, "cash", 12_000)
    db.add(Account(code=f"drawer:{baghdad.id}:IQD", kind="cash_drawer", currency="IQD",
                   balance=487_500))
    db.add(Account(code=f"drawer:{basra.id}:IQD", kind="cash_drawer", currency="IQD",
                   balance=1_250_000))
    boss = make_user("Huda Supervisor", "supervisor", office=baghdad)
    admin = make_user("Sami Admin", "admin", office=basra)
    db.commit()
    return boss.email, admin.email


def _log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()


def _check_layout(page) -> None:
    """Every figure drawn, and nothing wider than the page (no sideways scrolling)."""
    for key in FIGURES:
        assert page.locator(f"#fig-{key}").count() == 1, key
    assert page.locator("svg.chart").count() == 7
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, overflow
    # Every chart's text stays inside its figure.
    outside = page.evaluate("""() => [...document.querySelectorAll('.dash-figure')].flatMap(f => {
        const box = f.getBoundingClientRect();
        return [...f.querySelectorAll('svg text')].filter(t => {
            const r = t.getBoundingClientRect();
            return r.left < box.left - 1 || r.right > box.right + 1;
        }).map(t => t.textContent);
    })""")
    assert outside == [], outside


@pytest.mark.parametrize("width,height,name", [(1280, 900, "desk"), (390, 844, "phone")])
def test_dashboard_draws_every_chart_at_desk_and_phone_width(
        browser, live_server, busy_month, screenshots, width, height, name):
    boss, _admin = busy_month
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, boss)
        page.goto(live_server + "/backoffice/")
        assert page.locator("html").get_attribute("dir") == "rtl"
        _check_layout(page)
        page.screenshot(path=str(screenshots / f"dashboard-{name}-ar.png"), full_page=True)
        # A day's column opens that day's accepted parcels at the supervisor's office.
        page.locator("#fig-parcel-flow svg a").last.click()
        page.wait_for_load_state()
        assert "/backoffice/parcels/?accepted=" in page.url
        assert page.locator("table.data tbody tr a").count() >= 1
        if name == "desk":
            page.goto(live_server + "/lang/en?next=/backoffice/")
            page.wait_for_load_state()
            page.goto(live_server + "/backoffice/")
            assert page.locator("html").get_attribute("dir") == "ltr"
            _check_layout(page)
            page.screenshot(path=str(screenshots / "dashboard-desk-en.png"), full_page=True)
    finally:
        context.close()


def test_admin_dashboard_at_phone_width_shows_the_whole_post(
        browser, live_server, busy_month, screenshots):
    _boss, admin = busy_month
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, admin)
        page.goto(live_server + "/backoffice/")
        _check_layout(page)
        drawers = page.locator("#fig-drawers svg text").all_text_contents()
        assert any("1,250,000" in t for t in drawers) and any("487,500" in t for t in drawers)
        page.screenshot(path=str(screenshots / "dashboard-phone-admin-ar.png"), full_page=True)
        page.locator("#fig-drawers svg a").first.click()
        page.wait_for_load_state()
        assert "/backoffice/payments/drawer?office=" in page.url
    finally:
        context.close()
