"""A supervisor asks for a report, watches its progress and downloads the file; a clerk
closes the day at the drawer. Debian's chromium driven by Playwright against a live
server; screenshots go to $BARID_SCREENSHOTS (default /tmp/barid-screenshots)."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse 42"


@pytest.fixture()
def staff(app):
    from sqlalchemy import select

    from app.auth.models import PostOffice
    from app.auth.services import create_post_office, create_user
    from app.database import db, unit_of_work
    from payments import services

    with app.app_context(), unit_of_work():
        create_post_office("BGD-01", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office",
                           "IQ-BG", is_exchange_office=True)
        office = db.scalar(select(PostOffice).where(PostOffice.code == "BGD-01"))
        sup = create_user("عمر المشرف", email="sup@barid.iq", password=PASSWORD,
                          roles=("supervisor",), post_office_code="BGD-01")
        clerk = create_user("نور الموظفة", email="clerk@barid.iq", password=PASSWORD,
                            roles=("clerk",), post_office_code="BGD-01")
        services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=12_500,
                              currency="IQD", reference_kind="counter", reference_id="e2e-1",
                              purpose="postage", idempotency_key="e2e-1")
        return office.id, sup.email, clerk.email


def _login(page, base, email):
    page.goto(base + "/login")
    page.fill("input[name=identifier]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()


def _run_one_job(app) -> bool:
    from sqlalchemy import select

    from app.database import db
    from app.events import OutboxJob
    from app.jobs import run_outbox_job
    from app.reports import RUN_STEP_JOB

    with app.app_context():
        job = db.scalar(select(OutboxJob).where(OutboxJob.state == "pending",
                                                OutboxJob.task == RUN_STEP_JOB)
                        .order_by(OutboxJob.id))
        db.remove()
        if job is None:
            return False
        run_outbox_job(job.id)
        db.remove()
        return True


def test_report_with_progress_and_download(app, browser, serve, staff, screenshots,
                                           monkeypatch, tmp_path):
    from app.reports.views import _today

    monkeypatch.setitem(app.config, "REPORTS_PERIODS_PER_STEP", 1)
    base = serve(app)  # no executor: the test runs the job's steps itself
    _office_id, sup, _clerk = staff
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True,
                              locale="ar")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _login(page, base, sup)

    with app.app_context():
        today = _today()
    page.goto(base + "/backoffice/reports/")
    page.select_option("#kind", "daily")
    page.fill("#first", (today - timedelta(days=2)).isoformat())
    page.fill("#last", today.isoformat())
    page.select_option("#format", "pdf")
    page.select_option("#language", "ar")
    page.screenshot(path=str(screenshots / "reports-form-ar.png"), full_page=True)
    page.click("#report-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#report-state").get_attribute("data-state") == "queued"

    # One day of three computed: the page, refreshing itself, shows a third done.
    assert _run_one_job(app)
    page.wait_for_selector("#report-state[data-state=running]", timeout=10_000)
    assert page.locator("#report-progress").get_attribute("value") == "33"
    page.screenshot(path=str(screenshots / "reports-progress-ar.png"), full_page=True)

    while _run_one_job(app):
        pass
    page.wait_for_selector("#report-download", timeout=10_000)
    page.screenshot(path=str(screenshots / "reports-ready-ar.png"), full_page=True)
    assert "12,500" in page.content() or "١٢" in page.content()
    with page.expect_download() as info:
        page.click("#report-download")
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.suffix == ".pdf" and saved.read_bytes().startswith(b"%PDF")
    (screenshots / "reports-downloaded.pdf").write_bytes(saved.read_bytes())
    ctx.close()


def test_clerk_closes_the_day_in_the_browser(app, browser, serve, staff, screenshots):
    base = serve(app)
    _office_id, _sup, clerk = staff
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, locale="ar")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _login(page, base, clerk)
    page.goto(base + "/backoffice/payments/drawer")
    page.fill("#counted", "12000")
    page.screenshot(path=str(screenshots / "drawer-close-ar.png"), full_page=True)
    page.click("#drawer-close button[type=submit]")
    page.wait_for_selector("#drawer-difference")
    assert "500" in page.locator("#drawer-difference").inner_text()
    page.screenshot(path=str(screenshots / "drawer-closed-ar.png"), full_page=True)
    ctx.close()
