"""What the post owes a merchant: sales booked when the shopper pays, Barid's commission,
refunds of cancelled consignments and bank-transfer payouts, all in the ledger's payable
account; the statement's running balance equals that account; a payout above it is
refused; the transfer reference pays once; two payouts at once cannot overdraw; the
statement as CSV (formula-safe) and PDF (Arabic and English)."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import csv
import io
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.database import db, unit_of_work
from app.errors import ValidationFailed
from app.jobs import drain
from payments import payouts
from payments.errors import IdempotencyConflict
from payments.models import Account
from shop.models import Merchant, Order
from shop.services import orders, settlement
from shop.services.checkout import PaymentChoice
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    _fast_pins,
    clerk,
    make_card,
    office,
)
from tests.payments.helpers import CARD_PIN, ledger_problems
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    baghdad_shop,
    door,
    make_address,
    place,
    product,
    put_in_cart,
    shelf,
    shopper,
)
from tests.shop.helpers import make_merchant, make_user


def _paid_order(app, shopper, make_card, items: list[tuple[object, int]]) -> int:
    for p, qty in items:
        put_in_cart(shopper, p, qty)
    card = make_card(balance=1_000_000, user_id=shopper.id)
    order = place(shopper, door(make_address(shopper)),
                  payment=PaymentChoice("post_card", card_number=card.number, pin=CARD_PIN))
    order_id = order.id
    drain(app)  # capture -> payment.succeeded -> paid -> sales booked
    return order_id


def _payable(merchant_id: int) -> int:
    db.rollback()
    acc = payouts.find_payable_account(merchant_id)
    return db.get(Account, acc.id, populate_existing=True).balance if acc else 0


@pytest.fixture()
def two_shops(app_ctx, shelf):
    a, b = make_merchant(), make_merchant()
    a.commission_bps, b.commission_bps = 1000, 250  # 10 % and 2.5 %
    db.commit()
    return {"a": a.id, "b": b.id,
            "pa": product(a, shelf, price=10_000, stock=10).id,
            "pb": product(b, shelf, price=30_000, stock=10).id}


def test_sale_commission_refund_and_payout_make_the_running_balance(
        app, shopper, make_card, two_shops):
    a, b = two_shops["a"], two_shops["b"]
    order_id = _paid_order(app, shopper, make_card, [(two_shops["pa"], 2), (two_shops["pb"], 1)])
    # A sells 20,000 (commission 2,000); B sells 30,000 (commission 750).
    assert _payable(a) == 18_000 and _payable(b) == 29_250
    # Paying twice (a repeated event) books nothing twice.
    with unit_of_work():
        settlement.book_sales(orders.lock_order(order_id))
    assert _payable(a) == 18_000

    with unit_of_work():
        payouts.record_payout(a, 5_000, "TRX-001", actor_id=None)
    assert _payable(a) == 13_000

    # B cannot send its part: the shopper is refunded, B's sale and commission reversed.
    share = next(c for c in db.get(Order, order_id).consignments if c.merchant_id == b)
    with unit_of_work():
        orders.cancel_consignment(share.id, actor_id=None, reason="out of stock")
    drain(app)
    assert _payable(b) == 0
    assert _payable(a) == 13_000

    st = settlement.statement(a)
    assert [r.kind for r in st.rows] == [settlement.SALE, settlement.COMMISSION,
                                         payouts.PAYOUT_KIND]
    assert [r.amount for r in st.rows] == [20_000, -2_000, -5_000]
    assert [r.balance for r in st.rows] == [20_000, 18_000, 13_000]
    assert st.closing == _payable(a)
    assert st.rows[0].order_number == db.get(Order, order_id).number
    assert st.rows[2].reference == "TRX-001"
    st_b = settlement.statement(b)
    assert [r.amount for r in st_b.rows] == [30_000, -750, -30_000, 750]
    assert st_b.closing == _payable(b) == 0
    assert ledger_problems() == []


def test_a_shopper_cancelling_a_paid_order_takes_the_sale_back(app, shopper, make_card,
                                                               two_shops):
    a = two_shops["a"]
    order_id = _paid_order(app, shopper, make_card, [(two_shops["pa"], 1)])
    assert _payable(a) == 9_000
    with unit_of_work():
        orders.cancel_order(order_id, db.get(Order, order_id).user_id, reason="changed mind")
    drain(app)
    assert _payable(a) == 0
    assert settlement.statement(a).closing == 0
    assert ledger_problems() == []


def test_a_payout_above_the_balance_is_refused_and_changes_nothing(app, shopper, make_card,
                                                                   two_shops):
    a = two_shops["a"]
    _paid_order(app, shopper, make_card, [(two_shops["pa"], 1)])
    with pytest.raises(payouts.PayoutTooLarge), unit_of_work():
        payouts.record_payout(a, 9_001, "TRX-BIG", actor_id=None)
    assert _payable(a) == 9_000
    assert payouts.bank_account().balance == 0
    assert db.scalar(select(AuditRecord).where(
        AuditRecord.action == "merchant.payout_recorded")) is None
    for bad in (0, -5):
        with pytest.raises(ValidationFailed), unit_of_work():
            payouts.record_payout(a, bad, "TRX-X", actor_id=None)
    with pytest.raises(ValidationFailed), unit_of_work():
        payouts.record_payout(a, 100, "   ", actor_id=None)
    assert _payable(a) == 9_000


def test_the_same_transfer_reference_pays_once(app, shopper, make_card, two_shops):
    a, b = two_shops["a"], two_shops["b"]
    _paid_order(app, shopper, make_card, [(two_shops["pa"], 1), (two_shops["pb"], 1)])
    with unit_of_work():
        _e, created = payouts.record_payout(a, 4_000, "trx-7", actor_id=None)
    assert created
    with unit_of_work():
        _e, created = payouts.record_payout(a, 4_000, " TRX-7 ", actor_id=None)
    assert not created and _payable(a) == 5_000
    with pytest.raises(IdempotencyConflict), unit_of_work():
        payouts.record_payout(b, 4_000, "TRX-7", actor_id=None)
    with pytest.raises(IdempotencyConflict), unit_of_work():
        payouts.record_payout(a, 3_000, "TRX-7", actor_id=None)
    assert _payable(a) == 5_000 and _payable(b) == 29_250
    [audit] = db.scalars(select(AuditRecord).where(
        AuditRecord.action == "merchant.payout_recorded")).all()
    assert audit.details["before"] == {"payable": 9_000}
    assert audit.details["after"] == {"payable": 5_000}


@pytest.mark.commits  # threads, each with its own session
def test_two_payouts_of_the_whole_balance_at_once_pay_once(app, shopper, make_card,
                                                            two_shops):
    a = two_shops["a"]
    _paid_order(app, shopper, make_card, [(two_shops["pa"], 3)])
    owed = _payable(a)
    assert owed == 27_000
    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def pay(ref: str) -> None:
        with app.app_context():
            try:
                barrier.wait()
                with unit_of_work():
                    payouts.record_payout(a, owed, ref, actor_id=None)
                outcome = "paid"
            except payouts.PayoutTooLarge:
                outcome = "refused"
            finally:
                db.remove()
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=pay, args=(f"TRX-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["paid", "refused"]
    assert _payable(a) == 0
    assert payouts.bank_account().balance == -owed  # money left the post's bank
    assert ledger_problems() == []


# -- the pages ----------------------------------------------------------------------------------

def _login_owner(client, merchant_id: int) -> None:
    from app.auth.services import hash_password
    from tests.shop.checkout_helpers import PASSWORD

    owner = db.get(Merchant, merchant_id).owner
    owner.password_hash = hash_password(PASSWORD)
    db.commit()
    res = client.post("/login", data={"identifier": owner.email, "password": PASSWORD})
    assert res.status_code in (302, 303)


def test_backoffice_payout_page_refuses_too_much_and_records_once(app, client, shopper,
                                                                  make_card, two_shops):
    from app.auth.models import Role
    from app.auth.services import hash_password
    from tests.shop.checkout_helpers import PASSWORD

    a = two_shops["a"]
    _paid_order(app, shopper, make_card, [(two_shops["pa"], 1)])
    boss = make_user(Role.SUPERVISOR)
    boss.password_hash = hash_password(PASSWORD)
    db.commit()
    client.post("/login", data={"identifier": boss.email, "password": PASSWORD})
    url = f"/backoffice/payouts/{a}"
    page = client.post(url, data={"amount": "٩٠٠١", "reference": "TRX-1"},
                       follow_redirects=True).get_data(as_text=True)
    assert "9,000" in page
    assert _payable(a) == 9_000
    client.post(url, data={"amount": "٤٠٠٠", "reference": "TRX-1"})
    client.post(url, data={"amount": "4000", "reference": "TRX-1"})
    assert _payable(a) == 5_000
    assert "TRX-1" in client.get(url).get_data(as_text=True)
    assert client.get("/backoffice/payouts/").status_code == 200


def test_statement_csv_neutralises_formulas_and_matches_the_balance(app, client, app_ctx):
    evil = make_merchant()
    evil.name_en = "=HYPERLINK(\"http://x\")"
    db.commit()
    with unit_of_work():
        # A sale booked straight into the account, as settlement does, then a payout whose
        # reference a spreadsheet would run.
        from payments import ledger
        from payments.models import AccountKind

        revenue = ledger.get_account("revenue:shop_order:IQD", AccountKind.REVENUE, "IQD")
        payable = payouts.payable_account(evil.id)
        ledger.post_entry(idempotency_key=f"sale:consignment:-{evil.id}",
                          kind=settlement.SALE,
                          legs=[ledger.debit(revenue, 50_000), ledger.credit(payable, 50_000)])
        payouts.record_payout(evil.id, 10_000, "+CMD|'/c calc'!A1", actor_id=None)
    _login_owner(client, evil.id)
    res = client.get("/merchant/money/statement.csv")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert rows[0][1].startswith("'=")
    assert any(cell.startswith("'+CMD") for row in rows for cell in row)
    assert rows[-1][-1] == "40000"
    page = client.get("/merchant/money").get_data(as_text=True)
    assert "40,000" in page


@pytest.fixture()
def statement_pdf(app, client, shopper, make_card, two_shops) -> bytes:
    a = two_shops["a"]
    _paid_order(app, shopper, make_card, [(two_shops["pa"], 2)])
    with unit_of_work():
        payouts.record_payout(a, 7_500, "TRX-2026-12", actor_id=None)
    _login_owner(client, a)
    res = client.get("/merchant/money/statement.pdf")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    return res.data


def test_statement_pdf_renders_in_arabic_and_english(statement_pdf, tmp_path, screenshots):
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(statement_pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for words in ("Shop statement", "Sale", "Barid commission", "Bank transfer to you",
                  "TRX-2026-12", "20,000 IQD", "-2,000 IQD", "10,500 IQD"):
        assert words in text, words
    out = Path(screenshots) / "merchant-statement-pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(out)],
                   check=True)
    assert out.with_suffix(".png").stat().st_size > 10_000
