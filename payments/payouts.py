"""What the post owes each merchant, and the bank transfers that pay it.

A merchant is only a number here (payments knows nothing of shops): its payable
account `payable:merchant:<id>:<currency>` is credited by the shop when a sale is
booked and debited by commission, refunds and payouts. A payout moves money from the
payable account to the post's bank account (`bank:<currency>`), recorded by finance
staff with the bank-transfer reference, which is its idempotency key: the same
reference recorded twice pays once.

Every function flushes; the caller's unit of work commits.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit import record_audit
from app.database import db
from app.errors import Conflict, ValidationFailed
from payments import ledger
from payments.errors import IdempotencyConflict, InvalidAmount
from payments.models import Account, AccountKind, JournalEntry

PAYOUT_KIND = "merchant_payout"
# A bank's transfer reference: letters, digits and - / . (what banks print on advices).
_MAX_REFERENCE = 60


class PayoutTooLarge(Conflict):
    code = "payout_too_large"


def payable_code(merchant_id: int, currency: str = "IQD") -> str:
    return f"payable:merchant:{merchant_id}:{currency}"


def payable_account(merchant_id: int, currency: str = "IQD") -> Account:
    """The merchant's payable account (what the post owes it), created on first use."""
    return ledger.get_account(payable_code(merchant_id, currency), AccountKind.MERCHANT_PAYABLE,
                              currency)


def find_payable_account(merchant_id: int, currency: str = "IQD") -> Account | None:
    """The merchant's payable account if money ever moved through it; creates nothing."""
    return db.scalar(select(Account).where(Account.code == payable_code(merchant_id, currency)))


def bank_account(currency: str = "IQD") -> Account:
    """The post's bank account that merchant payouts leave from."""
    return ledger.get_account(f"bank:{currency}", AccountKind.BANK, currency)


def payable_balance(merchant_id: int, currency: str = "IQD") -> int:
    """What the post owes the merchant now (0 when nothing ever moved). Reads only."""
    acc = find_payable_account(merchant_id, currency)
    return acc.balance if acc is not None else 0


def clean_reference(raw: str) -> str:
    """A bank-transfer reference as typed, trimmed and upper-cased; raises
    ValidationFailed for an empty or too long one."""
    ref = " ".join((raw or "").split()).upper()
    if not ref or len(ref) > _MAX_REFERENCE:
        raise ValidationFailed(_l("Enter the bank transfer's reference (at most %(n)s "
                                  "characters).", n=_MAX_REFERENCE),
                               fields={"reference": ["invalid"]})
    return ref


def record_payout(merchant_id: int, amount: int, reference: str, *, actor_id: int | None,
                  currency: str = "IQD") -> tuple[JournalEntry, bool]:
    """Record a bank transfer paid to the merchant: debit its payable account, credit the
    post's bank account, audited with the balance before and after. Returns (entry,
    created); the same reference again (same merchant and amount) returns the first
    entry and moves nothing.

    The payable account's row is locked before its balance is read, so two payouts at
    once are checked one after the other and cannot together pay more than is owed.
    Raises InvalidAmount, ValidationFailed (reference), PayoutTooLarge (more than the
    balance; nothing moves), IdempotencyConflict (the reference was used for another
    merchant or amount). Flushes.
    """
    ledger.positive_amount(amount)
    ref = clean_reference(reference)
    key = f"payout:{ref}"
    payable = payable_account(merchant_id, currency)
    bank = bank_account(currency)
    legs = [ledger.debit(payable, amount), ledger.credit(bank, amount)]
    locked = ledger.lock_accounts([payable.id, bank.id])
    existing = ledger.find_entry(key)
    if existing is not None:
        try:
            return ledger.same_entry(existing, legs), False
        except IdempotencyConflict as exc:
            raise IdempotencyConflict(_l("This transfer reference was already recorded "
                                         "for another payout.")) from exc
    before = locked[payable.id].balance
    if amount > before:
        raise PayoutTooLarge(_l("The payout is more than the post owes this merchant "
                                "(%(balance)s).", balance=f"{before:,} {currency}"),
                             fields={"amount": ["above_balance"]})
    entry, created = ledger.post_entry(
        idempotency_key=key, kind=PAYOUT_KIND, legs=legs,
        description=f"payout to merchant {merchant_id}, transfer {ref}", actor_id=actor_id)
    if created:
        record_audit("merchant.payout_recorded", object_type="merchant", object_id=merchant_id,
                     actor_id=actor_id,
                     details={"amount": amount, "currency": currency, "reference": ref,
                              "entry_id": entry.id,
                              "before": {"payable": before},
                              "after": {"payable": before - amount}})
    return entry, created


def payable_statement(merchant_id: int, *, since: datetime | None = None,
                      until: datetime | None = None, currency: str = "IQD"
                      ) -> tuple[int, list[ledger.StatementLine]]:
    """(opening balance, lines with their running balance) of the merchant's payable
    account, oldest first; (0, []) when nothing ever moved. Reads only."""
    acc = find_payable_account(merchant_id, currency)
    if acc is None:
        return 0, []
    return ledger.statement_lines(acc.id, since=since, until=until)


__all__ = ["PAYOUT_KIND", "InvalidAmount", "PayoutTooLarge", "bank_account",
           "find_payable_account", "payable_account", "payable_balance", "payable_statement",
           "record_payout"]
