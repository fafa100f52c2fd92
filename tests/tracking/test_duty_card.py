"""Customs duty paid online with a bank card (Stripe, against localstripe) through payments'
"pay for a reference" page, and the post card and the bank card never blocking or
double-charging each other."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the payments tests)
from sqlalchemy import select

from app.audit import AuditRecord
from app.database import db
from app.events import OutboxJob
from app.jobs import drain
from payments import cards, gateway
from payments.models import Payment, Refund
from payments.services import receive_cash
from tests.payments.conftest import localstripe, stripe_app, usd_rate  # noqa: F401 (fixtures)
from tests.payments.helpers import ledger_problems
from tests.tracking.helpers import at, inbound_draft, login, make_user
from tracking.models import CustomsCase, Parcel
from tracking.services import customs
from tracking.services import events as ev
from tracking.services.parcels import Article, register_inbound

NUMBER = "LX123456785CN"
OK_CARD, DECLINED_CARD = "4242424242424242", "4000000000000341"


def _held_then_released(offices, clerk, officer) -> CustomsCase:
    """A smart watch with an unknown HS number is held; the officer fixes it and releases."""
    result = customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    assert not result.errors
    register_inbound(NUMBER, inbound_draft(articles=[
        Article(description="Smart watch", quantity=1, value_amount=5000,
                value_currency="USD", hs_code="999999", origin_country="CN")]))
    ev.record_partner_event(number=NUMBER, code="EMC", occurred_at=at(0), uid="emc-1",
                            location="SHENZHEN", partner="CN")
    assert ev.record_scan(number=NUMBER, code="EMD", office_id=offices[0].id,
                          actor_id=clerk.id, occurred_at=at(30)).outcome == "accepted"
    _drain()
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == NUMBER))
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
    assert case.state == "held" and case.hold_reason_code == "no_tariff"
    customs.reclassify(case.id, parcel.articles[0].id, hs_code="910211", officer_id=officer.id)
    customs.release(case.id, officer_id=officer.id, note="watch, invoice checked")
    case = _case(case.id)
    # 50 USD at 1,310 = 65,500 IQD; HS 9102 is 10 %; fees 5,000 + 10,000.
    assert case.state == "released" and case.total_due_iqd == 21_550
    return case


def _drain() -> None:
    from flask import current_app

    db.commit()
    drain(current_app)
    db.rollback()
    failed = db.scalars(select(OutboxJob).where(OutboxJob.last_error.is_not(None))).all()
    assert not failed, [j.last_error for j in failed]


def _case(case_id: int) -> CustomsCase:
    return db.get(CustomsCase, case_id, populate_existing=True)


def _hand_over(offices, clerk):
    # The parcel reaches the Baghdad delivery office (a repeat within minutes changes
    # nothing), where its addressee shows an identity document.
    ev.record_scan(number=NUMBER, code="EMG", office_id=offices[0].id, actor_id=clerk.id)
    return ev.record_scan(number=NUMBER, code="EMI", office_id=offices[0].id,
                          actor_id=clerk.id, receiver_name="Omar Hassan",
                          receiver_id_number="B7654321")


def _pm(number: str) -> str:
    return gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034,
                                 "cvc": "123"}}).id


def _start_by_bank_card(client, case: CustomsCase) -> int:
    """What the duty page's button leads to: payments' page, then its bank-card choice."""
    duty_page = client.get(f"/track/{NUMBER}/duty").get_data(as_text=True)
    link = f"/payments/pay-for/customs_duty/{case.id}"
    assert f'href="{link}"' in duty_page
    page = client.get(link)
    assert page.status_code == 200 and "21,550" in page.get_data(as_text=True)
    res = client.post(link, data={"method": "bank_card", "key": f"k{case.id}-{id(client)}"})
    assert res.status_code == 302, res.get_data(as_text=True)[:500]
    return int(res.headers["Location"].rstrip("/").split("/")[-1])


def _confirm(client, pid: int, card: str) -> dict:
    res = client.post(f"/payments/pay/{pid}/confirm", json={"payment_method": _pm(card)})
    return res.get_json()


def _post_card(clerk, offices, balance: int, holder=None):
    """A card of `holder`'s own (linked to his account): he pays with card and PIN; a card
    not linked to the account paying would need a one-time code (test_duty_code.py)."""
    card = cards.issue_card(holder_name="Omar Hassan", national_id=f"1990{balance:08d}",
                            mobile="+9647711112222", pin="1357",
                            user_id=holder.id if holder else None,
                            clerk_id=clerk.id, office_id=offices[0].id)
    receive_cash(office_id=offices[0].id, clerk_id=clerk.id, amount=balance, currency="IQD",
                 reference_kind="post_card", reference_id=str(card.id),
                 purpose="card_topup", idempotency_key=f"topup-{card.id}")
    db.commit()
    return card


def test_duty_paid_by_bank_card_allows_hand_over(stripe_app, usd_rate, offices, clerk,
                                                 officer, fast_pins):
    case = _held_then_released(offices, clerk, officer)
    client = stripe_app.test_client()
    omar = make_user("Omar Hassan", "shopper")
    login(client, omar)
    # His own post card without enough money fails first; that try must not stand in
    # the way.
    poor = _post_card(clerk, offices, balance=1_000, holder=omar)
    res = client.post(f"/track/{NUMBER}/duty",
                      data={"card_number": poor.number, "card_pin": "1357"})
    assert res.status_code >= 400
    assert _hand_over(offices, clerk).reason_code == "duty_unpaid"

    pid = _start_by_bank_card(client, case)
    p = db.get(Payment, pid)
    assert (p.method, p.reference_kind, p.reference_id, p.purpose, p.amount, p.currency) == (
        "stripe", "customs_duty", str(case.id), "customs_duty", 21_550, "IQD")
    # 21,550 IQD at 1,310 IQD per USD is 16.45 USD, shown on the card page.
    assert (p.charged_amount, p.charged_currency) == (1645, "USD")
    assert "16.45" in client.get(f"/payments/pay/{pid}").get_data(as_text=True)

    assert _confirm(client, pid, OK_CARD)["status"] == "succeeded"
    _drain()
    # The browser's word is not enough: the parcel stays until the server has Stripe's.
    assert _case(case.id).paid_at is None
    assert _hand_over(offices, clerk).reason_code == "duty_unpaid"

    result = client.get(f"/payments/pay/{pid}/result")  # the server re-fetches the intent
    # The payer goes straight back to the parcel's page, no extra click.
    assert result.status_code == 302 and result.headers["Location"] == f"/track/{NUMBER}"
    _drain()
    paid = _case(case.id)
    assert paid.paid_at is not None and paid.payment_id == str(pid)
    # There it says the duty is paid and offers the payer (only) the duty receipt.
    page = client.get(f"/track/{NUMBER}").get_data(as_text=True)
    assert "دُفعت الرسوم الكمركية" in page and f"/track/{NUMBER}/duty-receipt.pdf" in page
    receipt = client.get(f"/track/{NUMBER}/duty-receipt.pdf")
    assert receipt.status_code == 200 and receipt.mimetype == "application/pdf"
    stranger = stripe_app.test_client()
    from flask import g

    g.pop("_login_user", None)  # the test's app context outlives the payer's requests
    assert f"/track/{NUMBER}/duty-receipt.pdf" not in stranger.get(
        f"/track/{NUMBER}").get_data(as_text=True)
    assert stranger.get(f"/track/{NUMBER}/duty-receipt.pdf").status_code == 404
    g.pop("_login_user", None)
    assert db.get(Payment, pid).status == "succeeded"
    # Arabic first: "The duty on this parcel is already paid."
    assert "رسم هذا الطرد مدفوع سابقاً" in client.get(f"/track/{NUMBER}/duty").get_data(
        as_text=True)
    assert client.get(f"/payments/pay-for/customs_duty/{case.id}").status_code == 404
    assert client.get(f"/api/v1/tracking/{NUMBER}").get_json()["customs"]["paid"] is True
    assert db.query(AuditRecord).filter_by(action="customs.duty_paid").count() == 1
    out = _hand_over(offices, clerk)
    assert (out.outcome, out.status) == ("accepted", "delivered")
    assert ledger_problems() == []


def test_abandoned_bank_card_does_not_block_the_post_card_and_a_late_success_is_refunded(
        stripe_app, usd_rate, offices, clerk, officer, fast_pins):
    case = _held_then_released(offices, clerk, officer)
    client = stripe_app.test_client()
    omar = make_user("Omar Hassan", "shopper")
    login(client, omar)
    pid = _start_by_bank_card(client, case)
    declined = _confirm(client, pid, DECLINED_CARD)
    assert declined["status"] == "failed"
    assert db.get(Payment, pid, populate_existing=True).status == "failed"

    # He gives up on the bank card and pays with his own post card on the duty page.
    card = _post_card(clerk, offices, balance=30_000, holder=omar)
    res = client.post(f"/track/{NUMBER}/duty",
                      data={"card_number": card.number, "card_pin": "1357"})
    assert res.status_code == 302
    _drain()
    paid = _case(case.id)
    post_payment = db.scalar(select(Payment).where(Payment.method == "post_card",
                                                   Payment.reference_id == str(case.id)))
    assert paid.paid_at is not None and paid.payment_id == str(post_payment.id)
    assert cards.get_card(card.id) and _balance(card) == 30_000 - 21_550
    # Nothing is due now: payments' page refuses a new bank-card payment.
    assert client.post(f"/payments/pay-for/customs_duty/{case.id}",
                       data={"method": "bank_card", "key": "again"}).status_code == 404

    # The old tab is still open: the failed payment is tried again with a good card.
    assert _confirm(client, pid, OK_CARD)["status"] == "succeeded"
    client.get(f"/payments/pay/{pid}/result")
    _drain()
    _drain()  # the same news again refunds nothing more
    late = db.get(Payment, pid, populate_existing=True)
    assert late.status == "refunded" and late.refunded_amount == 21_550
    [refund] = db.scalars(select(Refund).where(Refund.payment_id == pid)).all()
    assert refund.stripe_refund_id and refund.charged_amount == 1645
    assert _case(case.id).payment_id == str(post_payment.id)
    assert db.query(AuditRecord).filter_by(action="customs.duty_paid").count() == 1
    assert db.query(AuditRecord).filter_by(
        action="customs.duty_payment_refunded").count() == 1
    assert _hand_over(offices, clerk).outcome == "accepted"
    assert ledger_problems() == []


def test_only_a_released_case_with_duty_due_can_be_paid_for(stripe_app, usd_rate, offices,
                                                            clerk, officer):
    client = stripe_app.test_client()
    login(client, make_user("Omar Hassan", "shopper"))
    result = customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    assert not result.errors
    register_inbound(NUMBER, inbound_draft(articles=[
        Article(description="Smart watch", quantity=1, value_amount=5000,
                value_currency="USD", hs_code="999999", origin_country="CN")]))
    ev.record_partner_event(number=NUMBER, code="EMC", occurred_at=at(0), uid="emc-1",
                            location="SHENZHEN", partner="CN")
    ev.record_scan(number=NUMBER, code="EMD", office_id=offices[0].id, actor_id=clerk.id,
                   occurred_at=at(30))
    _drain()
    case = db.scalar(select(CustomsCase))
    assert case.state == "held"
    for ref in (str(case.id), f"0{case.id}", "x", str(case.id + 1000)):
        assert client.get(f"/payments/pay-for/customs_duty/{ref}").status_code == 404
    assert client.post(f"/payments/pay-for/customs_duty/{case.id}",
                       data={"method": "bank_card", "key": "k"}).status_code == 404
    assert db.query(Payment).filter_by(reference_kind="customs_duty").count() == 0


def _balance(card) -> int:
    from payments.models import Account

    return db.get(Account, card.account_id, populate_existing=True).balance
