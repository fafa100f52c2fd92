"""Customs: assessment on arrival, officer decisions, and duty blocking hand-over."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.database import db
from app.events import DomainEvent, OutboxJob, publish
from tests.tracking.helpers import at, inbound_draft, login, make_user, run_jobs
from tracking.models import CustomsCase, Parcel, ParcelEvent, TariffLine
from tracking.services import customs
from tracking.services import events as ev
from tracking.services.parcels import Article, register_inbound


def _tariff():
    result = customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    assert not result.errors and result.created > 5


def _arrive(number, offices, clerk):
    ev.record_partner_event(number=number, code="EMC", occurred_at=at(0), uid=f"{number}-emc",
                            location="SHENZHEN", partner="CN")
    out = ev.record_scan(number=number, code="EMD", office_id=offices[0].id,
                         actor_id=clerk.id, occurred_at=at(30))
    assert out.outcome == "accepted", out.reason
    run_jobs()
    db.expire_all()
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == number))
    return parcel, db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))


def _codes(parcel):
    return [e.code for e in db.scalars(select(ParcelEvent).where(
        ParcelEvent.parcel_id == parcel.id).order_by(ParcelEvent.occurred_at))]


def _pay_by_event(case):
    publish("payment.succeeded", {"payment_id": "pay-1", "reference_kind": "customs_duty",
                                  "reference_id": str(case.id), "purpose": "customs_duty",
                                  "amount": case.total_due_iqd, "currency": "IQD"})
    db.commit()
    run_jobs()


def test_clear_case_is_released_and_duty_blocks_hand_over_until_paid(offices, clerk):
    from app import notify

    _tariff()
    notify.sent_messages.clear()
    register_inbound("LX123456785CN", inbound_draft())
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    assert case.state == "released" and case.form == "CN22"
    # The line's value (as on CN22/CN23): 40.00 USD at 1,310 IQD = 52,400 IQD; HS 8518
    # is 10 %; fees 5,000 + 10,000.
    assert case.declared_value_iqd == 52_400
    assert case.duty_iqd == 5_240 and case.total_due_iqd == 20_240
    assert _codes(parcel) == ["EMC", "EMD", "EDC"]
    # One message a channel, to the parcel's recipient (no account: Arabic).
    sms = [m for m in notify.sent_messages if m["channel"] == "sms"]
    emails = [m for m in notify.sent_messages if m["channel"] == "email"]
    assert [m["phone"] for m in sms] == ["+9647711112222"]
    assert [m["email"] for m in emails] == ["omar@example.iq"]
    assert "20,240 IQD" in sms[0]["body"] and "الكمرك" in emails[0]["body"]

    out = ev.record_scan(number=parcel.tracking_number, code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan",
                         receiver_id_number="B7654321")
    assert (out.outcome, out.reason_code) == ("rejected", "duty_unpaid")

    case_id = case.id
    _pay_by_event(case)
    _pay_by_event(db.get(CustomsCase, case_id))  # announced twice, marked paid once
    case = db.get(CustomsCase, case_id)
    assert case.paid_at is not None and case.payment_id == "pay-1"
    assert db.query(AuditRecord).filter_by(action="customs.duty_paid").count() == 1
    # The recipient is told once a channel that the duty was received.
    paid = [(m["channel"], m["phone"] or m["email"]) for m in notify.sent_messages
            if m.get("kind") == "customs_duty_paid"]
    assert sorted(paid) == [("email", "omar@example.iq"), ("sms", "+9647711112222")]
    ev.record_scan(number="LX123456785CN", code="EMG", office_id=offices[0].id,
                   actor_id=clerk.id)
    out = ev.record_scan(number="LX123456785CN", code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan",
                         receiver_id_number="B7654321")
    assert out.outcome == "accepted" and out.status == "delivered"


def test_assessing_twice_changes_nothing(offices, clerk):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft())
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    customs.assess(parcel.id)
    assert _codes(parcel) == ["EMC", "EMD", "EDC"]


def test_expensive_parcel_uses_cn23(offices, clerk):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Laptop", quantity=1, value_amount=60000, value_currency="USD",
                hs_code="847130", origin_country="CN")]))
    _, case = _arrive("LX123456785CN", offices, clerk)
    assert case.form == "CN23" and case.declared_value_iqd == 786_000
    assert case.duty_iqd == 39_300  # 5 %


def test_prohibited_goods_are_held_then_refused(offices, clerk, officer):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Antibiotic tablets", quantity=3, value_amount=1500,
                value_currency="USD", hs_code="300420", origin_country="CN")]))
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    assert case.state == "held" and case.hold_reason_code == "prohibited"
    assert parcel.status == "on_hold"
    held = db.scalar(select(ParcelEvent).where(ParcelEvent.code == "EME"))
    assert "Medicines" in held.retention_reason
    assert db.query(DomainEvent).filter_by(name="parcel.held_by_customs").count() == 1
    assert [c.id for c in customs.held_cases()] == [case.id]

    customs.refuse(case.id, officer_id=officer.id, outcome="destroy",
                   note="medicines are refused by post")
    db.expire_all()
    parcel = db.get(Parcel, parcel.id)
    assert parcel.status == "return_to_sender" and parcel.closed
    audit = db.query(AuditRecord).filter_by(action="customs.refused").one()
    assert audit.actor_id == officer.id and audit.details["outcome"] == "destroy"
    assert customs.held_cases() == []


def test_officer_reclassifies_revalues_and_releases(offices, clerk, officer):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Smart watch", quantity=1, value_amount=2000,
                value_currency="USD", hs_code="999999", origin_country="CN")]))
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    assert case.state == "held" and case.hold_reason_code == "no_tariff"
    article_id = parcel.articles[0].id

    customs.reclassify(case.id, article_id, hs_code="910211", officer_id=officer.id,
                       note="it is a wrist watch")
    customs.revalue(case.id, article_id, value_amount=5000, value_currency="USD",
                    officer_id=officer.id, note="invoice in the parcel says 50 USD")
    case = db.get(CustomsCase, case.id)
    assert case.declared_value_iqd == 65_500 and case.duty_iqd == 6_550
    customs.release(case.id, officer_id=officer.id, note="invoice checked")
    db.expire_all()
    case = db.get(CustomsCase, case.id)
    assert case.state == "released" and case.total_due_iqd == 21_550
    assert _codes(parcel)[-2:] == ["EME", "EDC"]
    actions = [a.action for a in db.query(AuditRecord).filter(
        AuditRecord.actor_id == officer.id).order_by(AuditRecord.id)]
    assert actions == ["customs.reclassified", "customs.revalued", "customs.released"]


def test_only_customs_may_release_an_inbound_parcel(offices, clerk):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Toy drone", quantity=1, value_amount=9000,
                value_currency="USD", hs_code="880600", origin_country="CN")]))
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    assert case.hold_reason_code == "restricted"
    out = ev.record_scan(number=parcel.tracking_number, code="EDC", office_id=offices[0].id,
                         actor_id=clerk.id)
    assert out.reason_code == "customs_only"
    out = ev.record_scan(number=parcel.tracking_number, code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="x", receiver_id_number="1")
    assert out.reason_code == "held_by_customs"


def test_tariff_csv_errors_are_reported_and_nothing_is_loaded(app_ctx):
    bad = [
        (b"hs_prefix,description_en\n61,x\n", "rate_percent"),
        ("hs_prefix,rate_percent\n61,20\n".encode("utf-16"), "UTF-8"),
        (b"hs_prefix,rate_percent\n61,20\n6x,5\n62,abc\n63,150\n", "السطر 3"),
    ]
    for data, expected in bad:
        result = customs.import_tariff(data, actor_id=None)
        assert result.errors and expected in " ".join(result.errors)
    assert db.query(TariffLine).count() == 0
    ok = customs.import_tariff(b"\xef\xbb\xbfhs_prefix,rate_percent\n61,20\n4901,0.5\n",
                               actor_id=None)
    assert ok.created == 2 and not ok.errors
    assert customs.tariff_line_for("490199").rate_bp == 50
    assert db.query(OutboxJob).count() == 0


def test_duty_paid_in_cash_at_the_counter_allows_hand_over(offices, clerk):
    from payments.models import Payment

    _tariff()
    register_inbound("LX123456785CN", inbound_draft())
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    customs.pay_duty_in_cash(case.id, clerk_id=clerk.id, office_id=offices[0].id)
    [payment] = db.scalars(select(Payment)).all()
    assert (payment.amount, payment.purpose, payment.reference_kind) == (
        20_240, "customs_duty", "customs_duty")
    run_jobs()  # payments announces the payment; marking it paid again changes nothing
    assert db.query(AuditRecord).filter_by(action="customs.duty_paid").count() == 1
    ev.record_scan(number="LX123456785CN", code="EMG", office_id=offices[0].id,
                   actor_id=clerk.id)
    out = ev.record_scan(number="LX123456785CN", code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan",
                         receiver_id_number="B7654321")
    assert out.outcome == "accepted"


@pytest.mark.commits  # wrong PIN attempts are kept on a connection of their own
def test_recipient_pays_duty_online_with_a_post_card(client, offices, clerk, fast_pins):
    """Signed in, with his own linked card: card and PIN (anyone else's card also takes
    the holder's one-time code, see test_duty_code)."""
    from payments import cards
    from payments.services import receive_cash

    _tariff()
    register_inbound("LX123456785CN", inbound_draft())
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    omar = make_user("Omar Hassan", "shopper")
    login(client, omar)
    card = cards.issue_card(holder_name="Omar Hassan", national_id="199011112222",
                            mobile="+9647711112222", pin="1357", user_id=omar.id,
                            clerk_id=clerk.id, office_id=offices[0].id)
    receive_cash(office_id=offices[0].id, clerk_id=clerk.id, amount=30_000, currency="IQD",
                 reference_kind="post_card", reference_id=str(card.id),
                 purpose="card_topup", idempotency_key="topup-omar")
    db.commit()
    page = client.get("/track/LX123456785CN/duty").get_data(as_text=True)
    assert "20,240 IQD" in page
    # His own card is already in the form.
    assert f'value="{card.grouped}"' in page
    wrong = client.post("/track/LX123456785CN/duty",
                        data={"card_number": card.number, "card_pin": "0000"})
    assert wrong.status_code >= 400
    assert db.get(CustomsCase, case.id).paid_at is None
    ok = client.post("/track/LX123456785CN/duty",
                     data={"card_number": card.number, "card_pin": "1357"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/track/LX123456785CN"
    db.expire_all()
    assert db.get(CustomsCase, case.id).paid_at is not None
    body = client.get("/api/v1/tracking/LX123456785CN").get_json()
    assert body["customs"]["paid"] is True
    # The tracking page now says "duty paid" (not "to pay") and hands over the receipt.
    page = client.get("/track/LX123456785CN").get_data(as_text=True)
    assert "دُفعت الرسوم الكمركية" in page and "الرسم الكمركي المطلوب" not in page
    res = client.get("/track/LX123456785CN/duty-receipt.pdf")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    import io

    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(res.data)).pages[0].extract_text()
    assert "LX" in text and "20,240" in text
    # The card's statement says what the money paid: the duty of this parcel.
    statement = client.get(f"/payments/cards/{card.id}/statement").get_data(as_text=True)
    assert "الرسوم الكمركية للطرد LX123456785CN" in statement
    # Someone else (another browser) with only the number gets no receipt.
    from flask import current_app, g

    g.pop("_login_user", None)  # the test's app context outlives the payer's requests
    stranger = current_app.test_client()
    assert stranger.get("/track/LX123456785CN/duty-receipt.pdf").status_code == 404
    assert "duty-receipt.pdf" not in stranger.get("/track/LX123456785CN").get_data(
        as_text=True)


def test_every_customs_state_change_is_one_recorded_transition(offices, clerk, officer):
    import pytest

    from app.errors import Conflict
    from tracking.models import CustomsCaseTransition
    from tracking.services.customs_state import TRANSITIONS, apply_transition

    _tariff()
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Antibiotic tablets", quantity=3, value_amount=1500,
                value_currency="USD", hs_code="300420", origin_country="CN")]))
    _parcel, case = _arrive("LX123456785CN", offices, clerk)
    customs.refuse(case.id, officer_id=officer.id, outcome="return", note="not allowed")
    steps = db.scalars(select(CustomsCaseTransition).where(
        CustomsCaseTransition.case_id == case.id).order_by(CustomsCaseTransition.id)).all()
    assert [(s.from_status, s.to_status) for s in steps] == [
        (None, "assessing"), ("assessing", "held"), ("held", "refused")]
    assert steps[0].actor_id == clerk.id and steps[1].actor_id is None
    assert steps[2].actor_id == officer.id and "not allowed" in steps[2].reason
    assert all(s.occurred_at is not None for s in steps)
    names = sorted(e.name for e in db.scalars(select(DomainEvent).where(
        DomainEvent.name.like("customs.%"))))
    assert names == ["customs.assessing", "customs.held", "customs.refused"]
    # A refused case is final: the table allows no move out of it.
    assert TRANSITIONS[case.state] == frozenset()
    with pytest.raises(Conflict):
        apply_transition(case, "released", actor_id=officer.id)


def test_assessment_values_declarations_at_the_administrators_rate(offices, clerk):
    from app.database import unit_of_work
    from payments.rates import add_rate

    _tariff()
    register_inbound("LX123456799CN", inbound_draft())
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == "LX123456799CN"))
    before = customs.compute(parcel)
    assert before.declared_value_iqd == 52_400  # 40.00 USD at the table's 1,310
    with unit_of_work():  # an administrator changes the rate in the back office
        add_rate("USD", "1400")
    parcel, case = _arrive("LX123456799CN", offices, clerk)
    # 40.00 USD at 1,400 = 56,000 IQD; HS 8518 is 10 %.
    assert case.declared_value_iqd == 56_000 and case.duty_iqd == 5_600


def test_a_currency_without_a_rate_is_held_for_an_officer(offices, clerk):
    from sqlalchemy import delete

    from payments.models import ExchangeRate

    _tariff()
    # The administrators never set a rate for the Kuwaiti dinar.
    db.execute(delete(ExchangeRate).where(ExchangeRate.base == "KWD"))
    draft = inbound_draft()
    draft.articles = [Article(description="Tea", quantity=1, value_amount=4000,
                              value_currency="KWD", hs_code="090230", origin_country="KW")]
    register_inbound("LX123456808CN", draft)
    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == "LX123456808CN"))
    assert customs.compute(parcel).hold_code == "unknown_currency"


def test_duty_and_fees_paid_in_advance_are_credited_and_refused_when_too_late(
        offices, clerk, officer):
    from app.errors import Conflict, ValidationFailed

    _tariff()
    parcel = register_inbound("LX123456785CN", inbound_draft())
    with pytest.raises(ValidationFailed):
        customs.record_prepaid_customs(parcel.id, duty_iqd=-1, fees_iqd=0, actor_id=None,
                                       reference="consignment:1")
    for _ in range(2):  # the same figures twice: recorded and audited once
        customs.record_prepaid_customs(parcel.id, duty_iqd=3_000, fees_iqd=15_000,
                                       actor_id=clerk.id, reference="consignment:1")
    assert db.query(AuditRecord).filter_by(action="customs.prepaid_recorded").count() == 1
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    # 5,240 duty + 15,000 fees assessed, 18,000 paid ahead: 2,240 left to pay, none back.
    assert (case.assessed_total_iqd, case.prepaid_iqd) == (20_240, 18_000)
    assert (case.total_due_iqd, case.prepaid_excess_iqd) == (2_240, 0)
    assert customs.duty_payable(str(case.id), None).amount == 2_240
    out = ev.record_scan(number=parcel.tracking_number, code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan",
                         receiver_id_number="B7654321")
    assert out.reason_code == "duty_unpaid"
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "customs.assessed"))
    assert (audit.details["assessed_iqd"], audit.details["prepaid_iqd"]) == (20_240, 18_000)
    # Once customs has assessed, a credit would come too late: refused, nothing changes.
    with pytest.raises(Conflict):
        customs.record_prepaid_customs(parcel.id, duty_iqd=9_000, fees_iqd=15_000,
                                       actor_id=clerk.id, reference="consignment:1")
    db.rollback()
    assert db.get(Parcel, parcel.id).customs_prepaid_duty_iqd == 3_000


def test_an_officer_revaluing_a_held_parcel_keeps_the_credit(offices, clerk, officer):
    _tariff()
    parcel = register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Smart watch", quantity=1, value_amount=2000,
                value_currency="USD", hs_code="999999", origin_country="CN")]))
    customs.record_prepaid_customs(parcel.id, duty_iqd=10_000, fees_iqd=15_000,
                                   actor_id=None, reference="consignment:9")
    parcel, case = _arrive("LX123456785CN", offices, clerk)
    assert case.state == "held"
    customs.reclassify(case.id, parcel.articles[0].id, hs_code="910211",
                       officer_id=officer.id)
    customs.release(case.id, officer_id=officer.id, note="invoice checked")
    case = db.get(CustomsCase, case.id)
    # 20 USD = 26,200 IQD at 10 % = 2,620 + 15,000 = 17,620: 7,380 paid too much.
    assert (case.total_due_iqd, case.prepaid_excess_iqd) == (0, 7_380)
    assert not case.duty_outstanding
    released = db.scalars(select(DomainEvent).where(
        DomainEvent.name == "customs.released")).all()
    assert [e.payload["prepaid_excess_iqd"] for e in released] == [7_380]
