"""The audit log in a real browser, in Arabic, at desktop and phone width: the filter form
and the paging links are usable (filter, next page, first page, CSV link). Screenshots go
to $BARID_SCREENSHOTS (default /tmp/barid-screenshots) for people to look at."""

from __future__ import annotations

import pytest

from app.audit import record_audit
from app.database import db
from tests.app.test_auth_support import PASSWORD, make_office, make_user

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width,height,name", [(1200, 900, "desktop"), (390, 844, "phone")])
def test_audit_log_filters_and_pages_in_arabic(app, browser, serve, screenshots, width,
                                                height, name):
    make_office(app)
    admin_id = make_user(app, email="admin@example.iq", name="مدير البريد", roles=("admin",),
                         office="BGD-01")
    with app.app_context():
        for i in range(7):
            record_audit("parcel.accepted", object_type="parcel", object_id=f"EE{i:03d}",
                         actor_id=admin_id)
        record_audit("post_card.issued", object_type="post_card", object_id="C1",
                     actor_id=admin_id)
        db.commit()
    base = serve(app)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(base + "/login")
        page.fill("input[name=identifier]", "admin@example.iq")
        page.fill("input[name=password]", PASSWORD)
        page.click("form [type=submit]")
        page.wait_for_load_state()
        page.goto(base + "/backoffice/admin/audit?per_page=5")
        assert page.locator("html").get_attribute("dir") == "rtl"
        page.select_option("#f-action", "parcel.accepted")
        page.click(".list-filters button[type=submit]")
        page.wait_for_load_state()
        assert "action=parcel.accepted" in page.url
        assert page.locator("table.audit tbody tr").count() == 5
        assert page.locator("table.audit tbody >> text=قبول الطرد في الشباك").count() == 5
        page.screenshot(path=str(screenshots / f"audit-log-ar-{name}.png"), full_page=True)
        # Every control of the form and the pager is on the screen, none wider than it.
        for selector in ("#f-actor", "#f-since", ".list-filters button[type=submit]",
                         "a[rel=next]", "a[download]"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, selector
        page.click("a[rel=next]")
        page.wait_for_load_state()
        assert page.locator("table.audit tbody tr").count() == 2
        assert page.locator("a[rel=next]").count() == 0
        page.click("a[rel=first]")
        page.wait_for_load_state()
        assert page.locator("table.audit tbody tr").count() == 5
    finally:
        context.close()
