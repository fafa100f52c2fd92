"""In Debian's chromium: a holder tops up their post card online with a test bank card
through Stripe Elements (localstripe's), then pays a bill with the post card and PIN."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from flask import current_app
from sqlalchemy import select

from app.database import db
from app.jobs import drain
from payments import payables
from payments.models import Payment, StripeEvent
from tests.payments.conftest import SECRET
from tests.payments.helpers import balance, ledger_problems
from tests.payments.test_pages import PASSWORD, person

pytestmark = pytest.mark.e2e

@pytest.fixture()
def live(stripe_app, localstripe, monkeypatch, serve):
    for key in ("CSP_SCRIPT_SRC", "CSP_CONNECT_SRC", "CSP_FRAME_SRC"):
        monkeypatch.setitem(stripe_app.config, key,
                            [*stripe_app.config.get(key, []), localstripe.url])
    url = serve(stripe_app)
    localstripe.register_webhook(f"{url}/payments/stripe/webhook", SECRET, name="browser")
    return url


def test_top_up_online_then_pay_with_the_post_card(live, make_card, usd_rate, browser,
                                                    screenshots):
    shopper = person("Browser Holder", "shopper")
    made = make_card(balance=5000, user_id=shopper.id, pin="2580")
    # Plain values: the jobs run below end the test's database session.
    card = SimpleNamespace(id=made.id, grouped=made.grouped, account_id=made.account_id)
    payables.register_payable("test_fee", lambda ref, user: payables.Payable(
        12_000, "IQD", "postage", "Registered letter fee") if ref == "B1" else None)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live + "/login")
    page.fill("input[name=identifier]", shopper.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form [type=submit]")
    page.wait_for_load_state()

    page.goto(live + "/payments/cards")
    page.click(f"a[href='/payments/cards/{card.id}/topup']")
    page.fill("input[name=amount]", "20000")
    page.click("main form [type=submit]")
    page.wait_for_url("**/payments/pay/*")
    # Both amounts and the rate are shown before paying, and it says TEST MODE.
    body = page.inner_text("main")
    assert "20,000 IQD" in body and "15.27 USD" in body and "وضع التجربة" in body
    page.fill("#card-element input[placeholder=number]", "4242424242424242")
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "34")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "10001")
    page.screenshot(path=str(screenshots / "payments-card-form.png"), full_page=True)
    page.click("#card-pay")
    page.wait_for_url("**/result")
    pid = int(page.url.rstrip("/").split("/")[-2])
    # The result page re-fetches the intent on the server; the signed webhook's
    # job then finds nothing left to do. Either way the money moves once.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        db.rollback()
        pi = db.get(Payment, pid).stripe_payment_intent
        if any(e.payload["data"]["object"].get("id") == pi
               for e in db.scalars(select(StripeEvent))):
            break
        time.sleep(0.2)
    drain(current_app._get_current_object())
    page.reload()
    assert page.get_attribute("#payment-result", "data-status") == "succeeded"
    assert balance(card) == 25_000

    page.goto(live + "/payments/pay-for/test_fee/B1")
    page.fill("input[name=card_number]", card.grouped)
    page.fill("input[name=pin]", "2580")
    page.click("main form:has(input[value=post_card]) [type=submit]")
    page.wait_for_url("**/result")
    assert page.get_attribute("#payment-result", "data-status") == "succeeded"
    page.screenshot(path=str(screenshots / "payments-paid-with-post-card.png"), full_page=True)
    assert balance(card) == 13_000
    assert ledger_problems() == []
    assert not [e for e in errors if "Content Security Policy" in e], errors
