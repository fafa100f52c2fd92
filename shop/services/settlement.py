"""What the post owes a merchant for its sales: booked in the ledger when an order is
paid, given back when a consignment is cancelled and refunded.

The shopper's payment lands in the order purpose's account (`revenue:shop_order`).
For each merchant consignment of a paid order, two entries move its share out:
the sale (the consignment's items, to the merchant's payable account) and Barid's
commission on it (from the payable account to `revenue:commission`). The delivery fee
stays with the post. A cancelled consignment reverses both. Every entry's idempotency
key names the consignment, so a repeated event books nothing twice.

Every function flushes; the caller's unit of work commits.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.database import db
from app.i18n import BAGHDAD
from payments import ledger
from payments.models import Account, AccountKind
from payments.payouts import PAYOUT_KIND, payable_account, payable_statement
from shop.models import Consignment, Merchant, Order
from shop.services.references import ORDER_KIND

SALE, COMMISSION = "merchant_sale", "merchant_commission"
SALE_REVERSED, COMMISSION_REVERSED = "merchant_sale_reversed", "merchant_commission_reversed"


def commission_of(amount: int, commission_bps: int) -> int:
    """Barid's commission on `amount`, in whole minor units, half rounded up."""
    return (amount * commission_bps + 5000) // 10000


def _commission_account(currency: str) -> Account:
    return ledger.get_account(f"revenue:commission:{currency}", AccountKind.REVENUE, currency)


def _parts(c: Consignment) -> tuple[int, int] | None:
    if c.merchant_id is None or c.items_total <= 0:
        return None
    merchant = c.merchant or db.get(Merchant, c.merchant_id)
    return c.items_total, commission_of(c.items_total, merchant.commission_bps)


def book_sales(order: Order) -> None:
    """Book each merchant consignment's sale and commission of a paid order. A
    consignment booked before is skipped (its keys exist). Flushes."""
    for c in order.consignments:
        parts = _parts(c)
        if parts is None:
            continue
        sale, commission = parts
        payable = payable_account(c.merchant_id, order.currency)
        received = ledger.purpose_account(ORDER_KIND, order.currency)
        ledger.post_entry(idempotency_key=f"sale:consignment:{c.id}", kind=SALE,
                          legs=[ledger.debit(received, sale), ledger.credit(payable, sale)],
                          description=f"order {order.number} consignment {c.id}")
        if commission:
            ledger.post_entry(idempotency_key=f"commission:consignment:{c.id}", kind=COMMISSION,
                              legs=[ledger.debit(payable, commission),
                                    ledger.credit(_commission_account(order.currency),
                                                  commission)],
                              description=f"commission order {order.number} consignment {c.id}")


def reverse_sale(c: Consignment) -> None:
    """A booked consignment was cancelled and refunded: take its sale back from the
    payable account and give its commission back. Nothing when its sale was never
    booked (cancelled before payment). Flushes."""
    sale_entry = ledger.find_entry(f"sale:consignment:{c.id}")
    if sale_entry is None:
        return
    order = c.order
    payable = payable_account(c.merchant_id, order.currency)  # type: ignore[arg-type]
    received = ledger.purpose_account(ORDER_KIND, order.currency)
    sale = next(p.amount for p in sale_entry.postings if p.account_id == received.id)
    ledger.post_entry(idempotency_key=f"sale-reversed:consignment:{c.id}", kind=SALE_REVERSED,
                      legs=[ledger.debit(payable, sale), ledger.credit(received, sale)],
                      description=f"refund order {order.number} consignment {c.id}")
    commission_entry = ledger.find_entry(f"commission:consignment:{c.id}")
    if commission_entry is not None:
        commission_acc = _commission_account(order.currency)
        commission = next(p.amount for p in commission_entry.postings
                          if p.account_id == payable.id)
        ledger.post_entry(idempotency_key=f"commission-reversed:consignment:{c.id}",
                          kind=COMMISSION_REVERSED,
                          legs=[ledger.debit(commission_acc, commission),
                                ledger.credit(payable, commission)],
                          description=f"commission returned order {order.number} "
                                      f"consignment {c.id}")


# -- the merchant's statement ----------------------------------------------------------------

# What each kind of entry is, in both languages (the PDF prints both; pages translate).
KIND_LABELS: dict[str, tuple[str, str]] = {
    SALE: ("مبيعات", "Sale"),
    COMMISSION: ("عمولة بريد", "Barid commission"),
    SALE_REVERSED: ("استرداد للمشتري", "Refund to the shopper"),
    COMMISSION_REVERSED: ("إعادة العمولة", "Commission returned"),
    PAYOUT_KIND: ("تحويل مصرفي إليك", "Bank transfer to you"),
}


@dataclass(frozen=True)
class StatementRow:
    when: datetime
    kind: str
    order_number: str | None
    reference: str | None
    amount: int  # + the post owes more, - less
    balance: int


@dataclass(frozen=True)
class Statement:
    currency: str
    opening: int
    rows: list[StatementRow]
    closing: int
    since: datetime | None
    until: datetime | None


def statement(merchant_id: int, *, since: datetime | None = None,
              until: datetime | None = None, currency: str = "IQD") -> Statement:
    """What the post owes the merchant: the payable account's opening balance, each
    sale, commission, refund and payout with the running balance, and the closing
    balance (equal to the account's balance when no `until` is given). Reads only."""
    opening, lines = payable_statement(merchant_id, since=since, until=until,
                                       currency=currency)
    consignment_ids: dict[int, int] = {}
    for entry, _amount, _running in lines:
        _, _, rest = entry.idempotency_key.partition(":consignment:")
        if rest.isdigit():
            consignment_ids[entry.id] = int(rest)
    numbers = dict(db.execute(
        select(Consignment.id, Order.number).join(Order, Order.id == Consignment.order_id)
        .where(Consignment.id.in_(set(consignment_ids.values())),
               Consignment.merchant_id == merchant_id)).all()) if consignment_ids else {}
    rows = []
    for entry, amount, running in lines:
        cid = consignment_ids.get(entry.id)
        reference = (entry.idempotency_key.partition(":")[2]
                     if entry.kind == PAYOUT_KIND else None)
        rows.append(StatementRow(when=entry.created_at, kind=entry.kind,
                                 order_number=numbers.get(cid) if cid else None,
                                 reference=reference, amount=amount, balance=running))
    closing = rows[-1].balance if rows else opening
    return Statement(currency=currency, opening=opening, rows=rows, closing=closing,
                     since=since, until=until)


# Cells a spreadsheet would run as a formula; written with a leading quote instead.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """`value` as CSV text that a spreadsheet shows rather than runs (OWASP CSV
    injection): text beginning with = + - @ (or a tab or return) gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def statement_csv(st: Statement, *, shop_name: str) -> str:
    """The statement as CSV (UTF-8 with BOM for spreadsheets, both languages in the
    header). Amounts are whole minor units in two columns, what the post came to owe
    more and what it came to owe less, so no amount carries a sign; every cell (a
    negative balance too) that a spreadsheet could read as a formula is neutralised."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(["shop / المتجر", safe_cell(shop_name)])
    w.writerow(["currency / العملة", st.currency])
    w.writerow([])
    w.writerow(["date / التاريخ", "what / العملية", "order / الطلب",
                "reference / المرجع", "credit / له", "debit / عليه", "balance / الرصيد"])
    w.writerow(["", "opening balance / الرصيد الافتتاحي", "", "", "", "",
                safe_cell(st.opening)])
    for r in st.rows:
        ar, en = KIND_LABELS.get(r.kind, (r.kind, r.kind))
        w.writerow([r.when.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M"),
                    f"{en} / {ar}", safe_cell(r.order_number or ""),
                    safe_cell(r.reference or ""), r.amount if r.amount > 0 else "",
                    -r.amount if r.amount < 0 else "", safe_cell(r.balance)])
    w.writerow(["", "closing balance / الرصيد الختامي", "", "", "", "",
                safe_cell(st.closing)])
    return out.getvalue()
