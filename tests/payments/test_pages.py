"""The payments pages as clerks, supervisors, admins and card holders use them."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.auth.models import User
from app.database import db
from payments import payables
from payments.models import Account, ExchangeRate, Payment, PostCard
from tests.payments.helpers import balance, ledger_problems

PASSWORD = "correct horse 42"


def person(name: str, *roles: str, office=None) -> User:
    from app.auth.services import create_user

    u = create_user(name, email=f"{name.lower().replace(' ', '.')}@barid.iq", password=PASSWORD,
                    roles=roles, post_office_code=office.code if office else None)
    return db.get(User, u.id)


def login(client, user: User) -> None:
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture()
def counter_clerk(app_ctx, office):
    return person("Huda Clerk", "clerk", office=office)


def test_clerk_issues_a_card_tops_it_up_and_prints_the_receipt(client, counter_clerk):
    shopper = person("Sara Shopper", "shopper")
    login(client, counter_clerk)
    page = client.get("/backoffice/payments/cards/new")
    assert page.status_code == 200 and "الرمز السري" in page.get_data(as_text=True)
    res = client.post("/backoffice/payments/cards/new", data={
        "holder_name": "سارة أحمد", "national_id": "199012345678", "mobile": "+9647701112222",
        "account_email": shopper.email, "pin": "2468", "pin_again": "2468"})
    assert res.status_code == 302
    card = db.scalar(select(PostCard))
    assert card.user_id == shopper.id and res.location.endswith(f"/cards/{card.id}")
    res = client.post(f"/backoffice/payments/cards/{card.id}/topup",
                      data={"amount": "75,000", "key": "form-1"})
    assert res.status_code == 302
    # The same form sent twice (double click) tops up once.
    client.post(f"/backoffice/payments/cards/{card.id}/topup",
                data={"amount": "75,000", "key": "form-1"})
    assert balance(card) == 75_000
    payment = db.scalar(select(Payment))
    pdf = client.get(f"/backoffice/payments/payments/{payment.id}/receipt.pdf")
    assert pdf.mimetype == "application/pdf"
    text = pdf_text(pdf.data)
    assert "75,000 IQD" in text and f"P-{payment.id:08d}" in text
    page = client.get(f"/backoffice/payments/cards/{card.id}").get_data(as_text=True)
    assert "75,000 IQD" in page and card.grouped in page
    found = client.get(f"/backoffice/payments/cards?q={card.number}").get_data(as_text=True)
    assert card.grouped in found


def test_card_refusals_are_shown_and_move_nothing(client, counter_clerk, make_card):
    card = make_card(balance=1000)
    login(client, counter_clerk)
    res = client.post(f"/backoffice/payments/cards/{card.id}/topup",
                      data={"amount": "999999999", "key": "big"}, follow_redirects=True)
    assert "أقصى مبلغ للشحن" in res.get_data(as_text=True)  # Arabic first
    assert balance(card) == 1000
    client.post(f"/backoffice/payments/cards/{card.id}/freeze")
    res = client.post(f"/backoffice/payments/cards/{card.id}/topup",
                      data={"amount": "500", "key": "frozen"}, follow_redirects=True)
    assert res.status_code == 200 and balance(card) == 1000
    client.post(f"/backoffice/payments/cards/{card.id}/unfreeze")
    assert db.get(PostCard, card.id).status == "active"


def test_refund_at_the_counter_and_end_of_day_drawer(client, counter_clerk, office):
    from payments import services

    login(client, counter_clerk)
    p = services.receive_cash(office_id=office.id, clerk_id=counter_clerk.id, amount=20_000,
                              currency="IQD", reference_kind="parcel", reference_id="EE1",
                              purpose="postage", idempotency_key="cash-1")
    db.commit()
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": "25000", "reason": "x", "key": "r0"},
                      follow_redirects=True)
    assert db.get(Payment, p.id).refunded_amount == 0
    res = client.post(f"/backoffice/payments/payments/{p.id}/refund",
                      data={"amount": "5000", "reason": "wrong weight", "key": "r1"},
                      follow_redirects=True)
    assert res.status_code == 200
    db.expire_all()
    assert db.get(Payment, p.id).status == "partially_refunded"
    page = client.get("/backoffice/payments/drawer").get_data(as_text=True)
    assert "15,000 IQD" in page  # 20,000 in, 5,000 paid back
    pdf = client.get("/backoffice/payments/drawer.pdf")
    text = pdf_text(pdf.data)
    assert "15,000 IQD" in text and "Expected cash" in text and "Huda Clerk" in text
    assert ledger_problems() == []


def test_drawer_page_of_an_office_that_never_took_cash_writes_nothing(client, counter_clerk):
    login(client, counter_clerk)
    before = db.scalar(select(func.count()).select_from(Account))
    assert client.get("/backoffice/payments/drawer").status_code == 200
    assert client.get("/backoffice/payments/drawer.pdf").status_code == 200
    db.rollback()
    # A GET page never writes: no drawer account appears until cash first moves.
    assert db.scalar(select(func.count()).select_from(Account)) == before
    assert db.scalar(select(Account).where(Account.code.like("drawer:%"))) is None


def test_shopper_sees_only_their_own_cards_and_statement(client, app_ctx, make_card):
    owner = person("Owner One", "shopper")
    other = person("Other Two", "shopper")
    card = make_card(balance=30_000, user_id=owner.id)
    login(client, owner)
    page = client.get("/payments/cards").get_data(as_text=True)
    assert card.grouped in page and "30,000 IQD" in page
    st = client.get(f"/payments/cards/{card.id}/statement")
    assert st.status_code == 200 and "30,000 IQD" in st.get_data(as_text=True)
    pdf = client.get(f"/payments/cards/{card.id}/statement.pdf")
    assert "30,000 IQD" in pdf_text(pdf.data)
    client.get("/logout")
    client.post("/logout")
    login(client, other)
    assert client.get(f"/payments/cards/{card.id}/statement").status_code == 404
    assert client.get(f"/payments/cards/{card.id}/statement.pdf").status_code == 404
    assert card.grouped not in client.get("/payments/cards").get_data(as_text=True)


def test_pages_check_roles(client, app_ctx, office):
    shopper = person("Just Shopper", "shopper")
    login(client, shopper)
    for url in ("/backoffice/payments/cards/new", "/backoffice/payments/drawer",
                "/backoffice/payments/rates", "/backoffice/payments/disputes"):
        assert client.get(url).status_code == 403, url
    client.post("/logout")
    clerk = person("Plain Clerk", "clerk", office=office)
    login(client, clerk)
    assert client.get("/backoffice/payments/rates").status_code == 403
    assert client.get("/backoffice/payments/reconciliation").status_code == 403


def test_admin_sets_an_exchange_rate_and_old_payments_keep_theirs(client, app_ctx):
    admin = person("Rate Admin", "admin")
    login(client, admin)
    assert client.post("/backoffice/payments/rates",
                       data={"base": "USD", "rate": "1310.5"}).status_code == 302
    res = client.post("/backoffice/payments/rates", data={"base": "USD", "rate": "-3"})
    assert res.status_code == 422  # a form error on the page, nothing saved
    assert client.post("/backoffice/payments/rates",
                       data={"base": "USD", "rate": "1320"}).status_code == 302
    rows = db.scalars(select(ExchangeRate).order_by(ExchangeRate.id)).all()
    assert [str(r.rate) for r in rows] == ["1310.50000000", "1320.00000000"]
    assert rows[0].valid_to == rows[1].valid_from and rows[1].valid_to is None
    page = client.get("/backoffice/payments/rates").get_data(as_text=True)
    assert "1,320.0000" in page


@pytest.mark.commits  # wrong PIN attempts are kept on a connection of their own
def test_pay_for_a_reference_with_the_post_card(client, app_ctx, make_card):
    payables.register_payable("test_fee", lambda ref, user: payables.Payable(
        2500, "IQD", "postage", f"Fee {ref}") if ref == "F1" else None)
    shopper = person("Payer Person", "shopper")
    card = make_card(balance=10_000, user_id=shopper.id, pin="8642")
    login(client, shopper)
    page = client.get("/payments/pay-for/test_fee/F1")
    assert page.status_code == 200 and "2,500 IQD" in page.get_data(as_text=True)
    assert client.get("/payments/pay-for/test_fee/NOPE").status_code == 404
    key = re.search(r'name="key" type="hidden" value="(\w+)"', page.get_data(as_text=True))
    key = key.group(1) if key else "k"
    wrong = client.post("/payments/pay-for/test_fee/F1", data={
        "method": "post_card", "card_number": card.number, "pin": "1111", "key": key})
    assert wrong.status_code == 200 and balance(card) == 10_000
    ok = client.post("/payments/pay-for/test_fee/F1", data={
        "method": "post_card", "card_number": card.grouped, "pin": "8642", "key": key})
    assert ok.status_code == 302
    assert balance(card) == 7500
    p = db.scalar(select(Payment).where(Payment.reference_kind == "test_fee"))
    assert p.status == "succeeded" and p.payer_user_id == shopper.id
    receipt = client.get(f"/payments/receipts/{p.id}.pdf")
    assert "2,500 IQD" in pdf_text(receipt.data)
    assert db.scalar(select(Account.balance).where(Account.code == "revenue:postage:IQD")) == 2500


@pytest.mark.commits  # wrong PIN attempts are kept on a connection of their own
def test_statement_lines_say_what_was_paid_and_where_the_money_came_from(
        client, app_ctx, make_card):
    """The holder reads on each line what it paid (the reference's own words, its public
    number) and how a top-up came in (cash at which office), in Arabic and English, on
    the page and the PDF; the pay form offers their own card first."""
    payables.register_payable("test_fee", lambda ref, user: payables.Payable(
        2500, "IQD", "postage", f"Fee {ref}") if ref == "F7" else None)
    payables.register_description("test_fee", lambda ref: payables.Described(
        number=f"FEE-{ref}", ar=f"رسم البريد {ref}", en=f"Postage fee {ref}"))
    shopper = person("Statement Reader", "shopper")
    card = make_card(balance=10_000, user_id=shopper.id, pin="8642")
    login(client, shopper)
    page = client.get("/payments/pay-for/test_fee/F7").get_data(as_text=True)
    # The holder's own card is already in the form.
    assert re.search(r'name="card_number"[^>]*value="' + re.escape(card.grouped), page)
    ok = client.post("/payments/pay-for/test_fee/F7", data={
        "method": "post_card", "card_number": card.grouped, "pin": "8642", "key": "st-1"})
    assert ok.status_code == 302
    page = client.get(f"/payments/cards/{card.id}/statement").get_data(as_text=True)
    assert "نقدًا في مكتب بريد بغداد" in page and "رسم البريد F7" in page
    text = pdf_text(client.get(f"/payments/cards/{card.id}/statement.pdf").data)
    assert "F7" in text
    client.get("/lang/en")
    from flask_babel import refresh

    refresh()
    page = client.get(f"/payments/cards/{card.id}/statement").get_data(as_text=True)
    assert "in cash at Baghdad Post Office" in page and "Postage fee F7" in page
    # The receipt names the reference by its public number, not by payments' (kind, id).
    p = db.scalar(select(Payment).where(Payment.reference_kind == "test_fee"))
    text = pdf_text(client.get(f"/payments/receipts/{p.id}.pdf").data)
    assert "FEE-F7" in text and "test_fee" not in text


def test_online_top_up_starts_at_stripes_minimum_charge(app_ctx, make_card, stripe_app):
    """Stripe charges at least 0.50 USD; at 1,310 IQD per USD the smallest online top-up
    is 655 IQD (rounded up: 654 IQD would be 0.4992 USD). Below it nothing starts; the
    page says the minimum."""
    from app.database import unit_of_work
    from payments import services
    from payments.errors import InvalidAmount
    from payments.rates import add_rate

    add_rate("USD", "1310")
    shopper = person("Small Topper", "shopper")
    card = make_card(user_id=shopper.id)
    assert services.online_top_up_minimum() == 655
    with pytest.raises(InvalidAmount) as refused, unit_of_work():
        services.start_online_top_up(card.id, user_id=shopper.id, amount=654,
                                     idempotency_key="small-1")
    assert "655" in str(refused.value.message)
    assert db.scalar(select(func.count(Payment.id))) == 0
    with unit_of_work():
        start = services.start_online_top_up(card.id, user_id=shopper.id, amount=655,
                                             idempotency_key="small-2")
    assert (start.payment.charged_amount, start.payment.charged_currency) == (50, "USD")
    client = stripe_app.test_client()
    login(client, shopper)
    page = client.get(f"/payments/cards/{card.id}/topup").get_data(as_text=True)
    assert "655" in page
    res = client.post(f"/payments/cards/{card.id}/topup", data={"amount": "600", "key": "x"})
    assert "655" in res.get_data(as_text=True)
    assert db.scalar(select(func.count(Payment.id))) == 1
