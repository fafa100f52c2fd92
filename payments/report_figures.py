"""The money side's figures for the platform's reports (app.reports), from the ledger.

Revenue by service and customs collected are the period's net credits to the revenue
and duty accounts, counted by the office the entry names (for a whole-post report,
every entry, online ones too). The post-card float (what card holders may still spend,
held amounts included) and merchant payables are balances as of the period's end; an
office's report shows the float of the cards issued at that office, and merchant
payables only in whole-post reports (they belong to no office).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from app.database import db
from app.reports import Figure
from payments.models import Account, AccountKind, JournalEntry, PostCard, Posting
from payments.receipts import PURPOSES

REVENUE_PREFIX = "revenue:"


def _credits(kind: AccountKind, office_id: int | None, start: datetime,
             end: datetime) -> list[tuple[str, str, int]]:
    """(account code, currency, net credit) per account of `kind` over [start, end)."""
    q = (select(Account.code, Account.currency, func.sum(Posting.amount))
         .join(Posting, Posting.account_id == Account.id)
         .join(JournalEntry, JournalEntry.id == Posting.entry_id)
         .where(Account.kind == kind, JournalEntry.created_at >= start,
                JournalEntry.created_at < end)
         .group_by(Account.code, Account.currency).order_by(Account.code))
    if office_id is not None:
        q = q.where(JournalEntry.office_id == office_id)
    return [(code, currency, -int(total or 0)) for code, currency, total in db.execute(q)]


def _balance(kinds: tuple[AccountKind, ...], end: datetime,
             office_id: int | None = None) -> dict[str, int]:
    """Sum of the balances (normal side) of accounts of `kinds` as of `end`, per currency;
    with an office, only the accounts of cards issued there."""
    q = (select(Account.currency, func.sum(Posting.amount))
         .join(Posting, Posting.account_id == Account.id)
         .join(JournalEntry, JournalEntry.id == Posting.entry_id)
         .where(Account.kind.in_([str(k) for k in kinds]), JournalEntry.created_at < end)
         .group_by(Account.currency).order_by(Account.currency))
    if office_id is not None:
        cards = select(PostCard.account_id, PostCard.hold_account_id).where(
            PostCard.issued_at_office_id == office_id).subquery()
        q = q.where(or_(Account.id.in_(select(cards.c.account_id)),
                        Account.id.in_(select(cards.c.hold_account_id))))
    # Liabilities: a credit (negative posting) is what the post owes.
    return {currency: -int(total or 0) for currency, total in db.execute(q)}


def ledger_figures(office_id: int | None, start: datetime, end: datetime) -> list[Figure]:
    """Revenue by service, customs collected, post-card float, merchant payables."""
    out: list[Figure] = []
    revenue = _credits(AccountKind.REVENUE, office_id, start, end)
    seen = set()
    for code, currency, amount in revenue:
        purpose = code.removeprefix(REVENUE_PREFIX).rsplit(":", 1)[0]
        ar, en = PURPOSES.get(purpose, (purpose, purpose))
        seen.add((purpose, currency))
        out.append(Figure(f"revenue.{purpose}.{currency}", f"الإيرادات: {ar}",
                          f"Revenue: {en}", amount, currency))
    if ("postage", "IQD") not in seen:
        ar, en = PURPOSES["postage"]
        out.insert(0, Figure("revenue.postage.IQD", f"الإيرادات: {ar}", f"Revenue: {en}",
                             0, "IQD"))
    duty = {currency: amount for _, currency, amount in
            _credits(AccountKind.DUTY_COLLECTED, office_id, start, end)}
    for currency in sorted(set(duty) | {"IQD"}):
        out.append(Figure(f"customs.{currency}", "الرسوم الكمركية المستوفاة",
                          "Customs duty collected", duty.get(currency, 0), currency))
    float_ = _balance((AccountKind.POST_CARD, AccountKind.CARD_HOLD), end, office_id)
    for currency in sorted(set(float_) | {"IQD"}):
        out.append(Figure(f"card_float.{currency}", "أرصدة بطاقات البريد في نهاية المدة",
                          "Post-card float (at the end)", float_.get(currency, 0), currency,
                          "balance"))
    if office_id is None:
        payables = _balance((AccountKind.MERCHANT_PAYABLE,), end)
        for currency in sorted(set(payables) | {"IQD"}):
            out.append(Figure(f"merchant_payables.{currency}",
                              "المستحق للتجار في نهاية المدة",
                              "Owed to merchants (at the end)", payables.get(currency, 0),
                              currency, "balance"))
    return out
