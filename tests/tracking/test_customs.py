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
    assert [m["phone"] for m in notify.sent_messages] == ["+9647711112222"]
    assert "20,240 IQD" in notify.sent_messages[0]["body"]

    out = ev.record_scan(number=parcel.tracking_number, code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan")
    assert (out.outcome, out.reason_code) == ("rejected", "duty_unpaid")

    case_id = case.id
    _pay_by_event(case)
    _pay_by_event(db.get(CustomsCase, case_id))  # announced twice, marked paid once
    case = db.get(CustomsCase, case_id)
    assert case.paid_at is not None and case.payment_id == "pay-1"
    assert db.query(AuditRecord).filter_by(action="customs.duty_paid").count() == 1
    out = ev.record_scan(number="LX123456785CN", code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan")
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
                         actor_id=clerk.id, receiver_name="x")
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
    out = ev.record_scan(number="LX123456785CN", code="EMI", office_id=offices[0].id,
                         actor_id=clerk.id, receiver_name="Omar Hassan")
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
    wrong = client.post("/track/LX123456785CN/duty",
                        data={"card_number": card.number, "card_pin": "0000"})
    assert wrong.status_code >= 400
    assert db.get(CustomsCase, case.id).paid_at is None
    ok = client.post("/track/LX123456785CN/duty",
                     data={"card_number": card.number, "card_pin": "1357"})
    assert ok.status_code == 302
    db.expire_all()
    assert db.get(CustomsCase, case.id).paid_at is not None
    body = client.get("/api/v1/tracking/LX123456785CN").get_json()
    assert body["customs"]["paid"] is True


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
