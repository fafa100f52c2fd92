"""Refunds at the counter: a clerk refunds alone only their own office's payments up to a
limit; anything else waits for a second person, a supervisor, and the cash always
leaves the drawer of the office that took the payment."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth.models import PostOffice, User
from app.database import db, unit_of_work
from payments import refunds, services
from payments.errors import (
    AlreadyDecided,
    InvalidAmount,
    RefundTooLarge,
    SecondPersonRequired,
)
from payments.ledger import find_drawer_account
from payments.models import Payment, Refund, RefundRequest
from tests.payments.helpers import CARD_PIN, ledger_problems

PASSWORD = "correct horse 42"


def person(name: str, *roles: str, office: PostOffice | None = None) -> User:
    from app.auth.services import create_user

    u = create_user(name, email=f"{name.lower().replace(' ', '.')}@barid.iq", password=PASSWORD,
                    roles=roles, post_office_code=office.code if office else None)
    return db.get(User, u.id)


def login(client, user: User) -> None:
    client.post("/logout")
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def drawer(office: PostOffice) -> int:
    db.expire_all()
    acc = find_drawer_account(office.id)
    return acc.balance if acc is not None else 0


def audits(action: str) -> list[AuditRecord]:
    return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                           .order_by(AuditRecord.id)))


@pytest.fixture()
def offices(app_ctx):
    baghdad = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد المركزي",
                         name_en="Baghdad Central Post Office", governorate="IQ-BG")
    basra = PostOffice(code="BSR01", name_ar="مكتب بريد البصرة", name_en="Basra Post Office",
                       governorate="IQ-BA")
    db.add_all([baghdad, basra])
    db.commit()
    return baghdad, basra


@pytest.fixture()
def staff(offices):
    baghdad, basra = offices
    people = {
        "baghdad_clerk": person("Huda Baghdad", "clerk", office=baghdad),
        "basra_clerk": person("Ali Basra", "clerk", office=basra),
        "supervisor": person("Sami Supervisor", "supervisor", office=baghdad),
        "supervisor2": person("Noor Supervisor", "supervisor", office=basra),
    }
    db.commit()
    return people


@pytest.fixture()
def threshold(app):
    old = app.config["PAYMENTS_REFUND_APPROVAL_ABOVE"]
    app.config["PAYMENTS_REFUND_APPROVAL_ABOVE"] = 100_000
    yield 100_000
    app.config["PAYMENTS_REFUND_APPROVAL_ABOVE"] = old


def cash(office: PostOffice, clerk: User, amount: int, key: str) -> Payment:
    with unit_of_work():
        p = services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=amount,
                                  currency="IQD", reference_kind="parcel", reference_id=key,
                                  purpose="postage", idempotency_key=key)
    return p


def test_a_basra_clerk_cannot_refund_a_baghdad_payment_without_a_supervisor(
        client, offices, staff, threshold):
    baghdad, basra = offices
    p = cash(baghdad, staff["baghdad_clerk"], 50_000, "cash-bgd-1")
    assert drawer(baghdad) == 50_000

    # The Basra clerk asks: a request is filed, and no money moves.
    login(client, staff["basra_clerk"])
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": "20,000", "reason": "parcel lost", "key": "k1"},
                      follow_redirects=True)
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and "يجب أن يوافق عليه مشرف" in page  # Arabic first
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0
    assert db.scalar(select(Refund)) is None
    assert drawer(baghdad) == 50_000 and find_drawer_account(basra.id) is None
    req = db.scalar(select(RefundRequest))
    assert req.status == "requested" and req.needs == "other_office"
    assert req.requested_by_id == staff["basra_clerk"].id

    # A clerk cannot approve anything, their own request least of all.
    res = client.post(f"/backoffice/payments/refund-requests/{req.id}/approve")
    assert res.status_code == 403
    db.expire_all()
    assert db.get(RefundRequest, req.id).status == "requested"

    # A supervisor sees it waiting and approves it: the cash leaves Baghdad's drawer.
    login(client, staff["supervisor2"])
    waiting = client.get("/backoffice/payments/refund-requests").get_data(as_text=True)
    assert f"P-{p.id:08d}" in waiting and "Ali Basra" in waiting
    res = client.post(f"/backoffice/payments/refund-requests/{req.id}/approve",
                      follow_redirects=True)
    assert res.status_code == 200
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 20_000
    assert db.get(RefundRequest, req.id).status == "approved"
    assert drawer(baghdad) == 30_000 and find_drawer_account(basra.id) is None
    report = services.drawer_report(baghdad.id, date.today())
    assert any(line["kind"] == "refund" and line["amount"] == -20_000
               for line in report.lines)
    assert services.drawer_report(basra.id, date.today()).lines == []

    # Both people are in the audit log.
    asked, = audits("payment.refund_requested")
    approved, = audits("payment.refund_approved")
    assert asked.actor_id == staff["basra_clerk"].id
    assert approved.actor_id == staff["supervisor2"].id
    assert approved.details["requested_by_id"] == staff["basra_clerk"].id

    # Approving again moves nothing and says why.
    res = client.post(f"/backoffice/payments/refund-requests/{req.id}/approve",
                      follow_redirects=True)
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 20_000 and drawer(baghdad) == 30_000
    assert "طلب الاسترداد هذا سبق أن صار" in res.get_data(as_text=True)
    assert ledger_problems() == []


def test_own_office_refund_under_the_limit_is_made_at_once(client, offices, staff, threshold):
    baghdad, _ = offices
    p = cash(baghdad, staff["baghdad_clerk"], 50_000, "cash-own")
    login(client, staff["baghdad_clerk"])
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": "٥٠٠٠", "reason": "wrong weight", "key": "k-own"})
    assert res.status_code == 302
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 5_000 and drawer(baghdad) == 45_000
    assert db.scalar(select(RefundRequest)) is None
    done, = audits("payment.refunded_at_counter")
    assert done.actor_id == staff["baghdad_clerk"].id
    # The same form sent twice refunds once.
    client.post(f"/backoffice/payments/payments/{p.id}/refund",
                data={"amount": "5000", "reason": "wrong weight", "key": "k-own"})
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 5_000
    assert ledger_problems() == []


def test_above_the_limit_even_the_own_office_needs_approval(app_ctx, offices, staff,
                                                            threshold):
    baghdad, _ = offices
    p = cash(baghdad, staff["baghdad_clerk"], 300_000, "cash-big")
    with unit_of_work():
        done = refunds.refund_at_counter(p.id, amount=150_000, reason="cancelled",
                                         clerk_id=staff["baghdad_clerk"].id,
                                         idempotency_key="big")
    assert done.refund is None and done.request.needs == "above_threshold"
    assert drawer(baghdad) == 300_000
    with unit_of_work():
        refunds.approve_request(done.request.id, approver_id=staff["supervisor"].id)
    assert drawer(baghdad) == 150_000
    assert ledger_problems() == []


def test_nobody_approves_their_own_request(app_ctx, offices, staff):
    baghdad, basra = offices
    p = cash(basra, staff["basra_clerk"], 40_000, "cash-bsr")
    # A supervisor of Baghdad asks for a Basra payment: a second supervisor must approve.
    with unit_of_work():
        req = refunds.refund_at_counter(p.id, amount=10_000, reason="x",
                                        clerk_id=staff["supervisor"].id,
                                        idempotency_key="own").request
    with pytest.raises(SecondPersonRequired), unit_of_work():
        refunds.approve_request(req.id, approver_id=staff["supervisor"].id)
    with pytest.raises(SecondPersonRequired), unit_of_work():
        refunds.decline_request(req.id, approver_id=staff["supervisor"].id)
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0 and drawer(basra) == 40_000
    with unit_of_work():
        refunds.decline_request(req.id, approver_id=staff["supervisor2"].id, note="no receipt")
    with pytest.raises(AlreadyDecided), unit_of_work():
        refunds.approve_request(req.id, approver_id=staff["supervisor2"].id)
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0 and drawer(basra) == 40_000
    assert audits("payment.refund_declined")[0].actor_id == staff["supervisor2"].id


def test_an_online_payment_belongs_to_no_office(app_ctx, offices, staff, make_card):
    with unit_of_work():
        holder = person("Online Shopper", "shopper")
    card = make_card(balance=20_000, user_id=holder.id)
    with unit_of_work():  # the holder pays online with their own card
        p = services.pay_with_post_card(card_number=card.number, pin=CARD_PIN, amount=8_000,
                                        currency="IQD", reference_kind="order",
                                        reference_id="O-1", purpose="shop_order",
                                        idempotency_key="online-1", actor_id=holder.id)
    with unit_of_work():
        done = refunds.refund_at_counter(p.id, amount=8_000, reason="x",
                                         clerk_id=staff["baghdad_clerk"].id,
                                         idempotency_key="online")
    assert done.refund is None and done.request.needs == "online"
    with unit_of_work():
        refunds.approve_request(done.request.id, approver_id=staff["supervisor"].id)
    db.expire_all()
    assert db.get(Payment, p.id).status == "refunded"
    assert ledger_problems() == []


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "٠"])
def test_bad_amounts_are_form_errors_and_move_nothing(client, offices, staff, amount):
    baghdad, _ = offices
    p = cash(baghdad, staff["baghdad_clerk"], 10_000, "cash-bad")
    login(client, staff["baghdad_clerk"])
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": amount, "reason": "x", "key": "bad"},
                      follow_redirects=True)
    assert res.status_code == 200 and "flash-error" in res.get_data(as_text=True)
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0 and drawer(baghdad) == 10_000
    assert db.scalar(select(RefundRequest)) is None


def test_more_than_is_left_is_refused_counting_requests_still_waiting(app_ctx, offices, staff):
    baghdad, _ = offices
    p = cash(baghdad, staff["baghdad_clerk"], 10_000, "cash-left")
    with pytest.raises(InvalidAmount), unit_of_work():
        refunds.refund_at_counter(p.id, amount=0, reason="x",
                                  clerk_id=staff["basra_clerk"].id, idempotency_key="z")
    with pytest.raises(RefundTooLarge), unit_of_work():
        refunds.refund_at_counter(p.id, amount=10_001, reason="x",
                                  clerk_id=staff["basra_clerk"].id, idempotency_key="a")
    with unit_of_work():
        refunds.refund_at_counter(p.id, amount=7_000, reason="x",
                                  clerk_id=staff["basra_clerk"].id, idempotency_key="b")
    # 7,000 already waits for approval: only 3,000 more may be asked for.
    with pytest.raises(RefundTooLarge), unit_of_work():
        refunds.refund_at_counter(p.id, amount=4_000, reason="x",
                                  clerk_id=staff["baghdad_clerk"].id, idempotency_key="c")
    db.expire_all()
    assert db.get(Payment, p.id).refunded_amount == 0 and drawer(baghdad) == 10_000


@pytest.mark.commits  # two supervisors, each in a thread with a session of their own
def test_two_supervisors_approving_at_once_refund_once(app, offices, staff):
    baghdad, _ = offices
    p = cash(baghdad, staff["baghdad_clerk"], 60_000, "cash-race")
    with unit_of_work():
        req_id = refunds.refund_at_counter(p.id, amount=25_000, reason="x",
                                           clerk_id=staff["basra_clerk"].id,
                                           idempotency_key="race").request.id
    approvers = [staff["supervisor"].id, staff["supervisor2"].id]
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(approvers))

    def approve(user_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                with unit_of_work():
                    refunds.approve_request(req_id, approver_id=user_id)
                outcomes.append("approved")
            except AlreadyDecided:
                outcomes.append("already")
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(outcomes) == ["already", "approved"]
    db.remove()
    assert len(db.scalars(select(Refund)).all()) == 1
    assert db.get(Payment, p.id).refunded_amount == 25_000
    assert drawer(baghdad) == 35_000
    assert len(audits("payment.refund_approved")) == 1
    assert ledger_problems() == []
