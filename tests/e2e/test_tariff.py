"""An administrator uploads a tariff file, sees what it would change, applies it; a file
with bad rows is refused with each row's reason. Debian's chromium driven by Playwright
against a live server; screenshots go to $BARID_SCREENSHOTS (default
/tmp/barid-screenshots) for people to look at.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

HEAD = "hs_prefix,rate_percent,description_en,description_ar\n"


@pytest.fixture()
def live_server(app, serve) -> str:
    return serve(app)


@pytest.fixture()
def admin(app):
    from sqlalchemy import select

    from app.auth.models import PostOffice
    from app.auth.services import create_post_office
    from app.database import db, unit_of_work
    from tests.tracking.helpers import make_user
    from tracking.services import customs

    with app.app_context(), unit_of_work():
        create_post_office("BGD-01", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office",
                           "IQ-BG", is_exchange_office=True)
        office = db.scalar(select(PostOffice).where(PostOffice.code == "BGD-01"))
        customs.import_tariff((HEAD + "61,20,Knitted clothing,ملابس محبوكة\n"
                               "64,15,Footwear,أحذية\n").encode(), actor_id=None)
        return make_user("Huda Admin", "admin", office=office).email


def _upload(page, tmp_path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    page.set_input_files("input[type=file]", str(path))
    page.click("form[enctype] [type=submit]")
    page.wait_for_load_state()


def test_admin_previews_applies_and_sees_a_bad_file_refused(
        app, browser, live_server, admin, screenshots, tmp_path):
    from tests.tracking.helpers import PASSWORD

    ctx = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server + "/login")
    page.fill("input[name=identifier]", admin)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()

    page.goto(live_server + "/backoffice/customs/tariff")
    assert page.locator("html").get_attribute("dir") == "rtl"
    # A file that changes one rate, adds a line (typed with Arabic-Indic digits) and
    # leaves one as it is.
    _upload(page, tmp_path, "good.csv", HEAD + "61,25,Knitted clothing,ملابس محبوكة\n"
            "64,15,Footwear,أحذية\n٨٤٧١,٥,Computers,حاسبات وأجزاؤها\n")
    assert page.locator("#changes tr.changed").count() == 1
    assert page.locator("#changes tr.added").count() == 1
    assert "20.00 %" in page.locator("#changes tr.changed").inner_text()
    page.screenshot(path=str(screenshots / "tariff-preview-ar.png"), full_page=True)
    # Nothing is applied by the preview.
    assert "25.00 %" not in page.locator("#lines").inner_text()

    page.click("#apply [type=submit]")
    page.wait_for_load_state()
    lines = page.locator("#lines").inner_text()
    assert "25.00 %" in lines and "8471" in lines
    page.screenshot(path=str(screenshots / "tariff-applied-ar.png"), full_page=True)

    # A file with a bad HS code and a rate over 100 %: each row named, nothing applied.
    _upload(page, tmp_path, "bad.csv", HEAD + "62,20,Clothing,ملابس\n6x,5,Letters,حروف\n"
            "64,150,Footwear,أحذية\n")
    rejected = page.locator("#rejected").inner_text()
    assert "السطر 3" in rejected and "السطر 4" in rejected
    assert page.locator("#apply").count() == 0
    page.screenshot(path=str(screenshots / "tariff-rejected-ar.png"), full_page=True)

    # Postage bands with a gap are refused, the band named, in Arabic.
    page.goto(live_server + "/backoffice/parcels/postage/parcel/any")
    page.fill("#bands", "0 1000 5000\n1500 30000 9000")
    page.click("#submit")
    page.wait_for_load_state()
    problems = page.locator("#problems").inner_text()
    assert "الشريحة 2" in problems and "فجوة" in problems
    page.screenshot(path=str(screenshots / "postage-gap-ar.png"), full_page=True)

    # The fees and limits pages an administrator edits, in Arabic.
    for url, name in (("/backoffice/payments/limits", "limits-ar.png"),
                      ("/backoffice/admin/shop-fees", "shop-fees-ar.png"),
                      ("/backoffice/customs/fees", "customs-fees-ar.png")):
        page.goto(live_server + url)
        assert page.locator("form.bo-form input[inputmode=numeric]").count() >= 2
        page.screenshot(path=str(screenshots / name), full_page=True)

    from app.database import db
    from tracking.models import PostageBand, TariffLine

    with app.app_context():
        rates = {t.hs_prefix: t.rate_bp for t in db.query(TariffLine)}
        bands = db.query(PostageBand).count()
        db.remove()
    assert bands == 0
    assert rates == {"61": 2500, "64": 1500, "8471": 500}
    ctx.close()
