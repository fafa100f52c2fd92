"""The double-entry ledger: accounts, journal entries, holds, and the invariant check.

Every function here flushes; the caller's unit of work commits. Money moves only through
`post_entry`, which locks the accounts it touches in ascending id order (SELECT ... FOR
UPDATE on PostgreSQL), refuses to take an account marked `no_overdraft` below zero, and
updates the cached balances in the same transaction as the postings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.database import Base, db, utcnow
from app.errors import NotFound
from app.i18n import baghdad_today
from payments.errors import (
    DrawerDayClosed,
    HoldResolved,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
)
from payments.models import (
    Account,
    AccountKind,
    DrawerDay,
    Hold,
    HoldStatus,
    JournalEntry,
    PostCard,
    Posting,
)


class UnbalancedEntry(ValueError):
    """A programming error: the postings given do not sum to zero per currency."""


def _insert() -> Any:
    """The dialect's INSERT that knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_ignore(model: type[Base], values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a row another transaction inserted first wins."""
    db.execute(_insert()(model).values(**values).on_conflict_do_nothing())


def get_account(code: str, kind: AccountKind, currency: str, *,
                no_overdraft: bool = False) -> Account:
    """The account called `code`, created on first use (safe under concurrency)."""
    acc = db.scalar(select(Account).where(Account.code == code))
    if acc is None:
        insert_ignore(Account, {"code": code, "kind": str(kind), "currency": currency,
                                 "balance": 0, "no_overdraft": no_overdraft,
                                 "created_at": utcnow()})
        acc = db.scalar(select(Account).where(Account.code == code))
    assert acc is not None
    if acc.currency != currency or acc.kind != kind:
        raise ValueError(f"account {code} exists as {acc.kind}/{acc.currency}")
    return acc


def _drawer_code(office_id: int | None, currency: str) -> str:
    return f"drawer:{office_id}:{currency}"


def drawer_account(office_id: int | None, currency: str = "IQD") -> Account:
    """The office's cash drawer, created when cash first moves through it."""
    return get_account(_drawer_code(office_id, currency), AccountKind.CASH_DRAWER, currency)


def find_drawer_account(office_id: int, currency: str = "IQD") -> Account | None:
    """The office's cash drawer if cash ever moved through it; creates nothing."""
    return db.scalar(select(Account).where(Account.code == _drawer_code(office_id, currency)))


def stripe_clearing_account(currency: str) -> Account:
    return get_account(f"stripe:{currency}", AccountKind.STRIPE_CLEARING, currency)


def fx_account(currency: str) -> Account:
    return get_account(f"fx:{currency}", AccountKind.FX, currency)


def purpose_account(purpose: str, currency: str) -> Account:
    """Where money paid for `purpose` is credited (card top-ups are handled by callers)."""
    if purpose == "customs_duty":
        return get_account(f"duty:{currency}", AccountKind.DUTY_COLLECTED, currency)
    if purpose.startswith("merchant_"):
        return get_account(f"payable:{purpose}:{currency}", AccountKind.MERCHANT_PAYABLE,
                           currency)
    return get_account(f"revenue:{purpose}:{currency}", AccountKind.REVENUE, currency)


@dataclass(frozen=True)
class Leg:
    """One line of an entry: `amount` > 0 debits the account, < 0 credits it."""

    account: Account
    amount: int


def debit(account: Account, amount: int) -> Leg:
    return Leg(account, amount)


def credit(account: Account, amount: int) -> Leg:
    return Leg(account, -amount)


def find_entry(idempotency_key: str) -> JournalEntry | None:
    return db.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == idempotency_key))


def _check_balanced(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise UnbalancedEntry("an entry needs two or more postings")
    sums: dict[str, int] = defaultdict(int)
    for leg in legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0:
            raise UnbalancedEntry("posting amounts are non-zero integers")
        sums[leg.account.currency] += leg.amount
    bad = {c: s for c, s in sums.items() if s != 0}
    if bad:
        raise UnbalancedEntry(f"postings do not sum to zero: {bad}")


def lock_accounts(ids: Sequence[int]) -> dict[int, Account]:
    """Lock account rows in ascending id order and reload their balances."""
    rows = db.scalars(
        select(Account)
        .where(Account.id.in_(sorted(set(ids))))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {a.id: a for a in rows}


def post_entry(*, idempotency_key: str, kind: str, legs: Sequence[Leg], description: str = "",
               actor_id: int | None = None, office_id: int | None = None,
               payment_id: int | None = None) -> tuple[JournalEntry, bool]:
    """Record one journal entry and update balances; returns (entry, created).

    A key seen before returns the first entry and moves nothing (created=False); the
    same key with different postings raises IdempotencyConflict. Raises
    InsufficientFunds when an account marked no_overdraft would go below zero,
    DrawerDayClosed when cash would go into a drawer whose business day (that of the
    entry's created_at, in Baghdad) is closed, and UnbalancedEntry for postings that
    do not sum to zero per currency.
    Flushes; on an error the caller rolls back.

    On PostgreSQL one round trip (`_POST`): the accounts locked in id order with their
    balances, the checks, and only if they pass the entry (unless its key exists), its
    postings and the new balances. With a cash drawer among the legs the accounts are
    locked first in a statement of their own, so that the drawer-day check runs on a
    snapshot taken under the lock (closing the day takes the same lock). The balances
    of the accounts this session holds are set to what was read and written, so no
    reload is needed.
    """
    _check_balanced(legs)
    created_at = utcnow()
    values: dict[str, Any] = {"idempotency_key": idempotency_key, "kind": kind,
                              "description": description[:300], "actor_id": actor_id,
                              "office_id": office_id, "payment_id": payment_id,
                              "created_at": created_at}
    if db.get_bind().dialect.name != "postgresql":
        return _post_entry_by_steps(values, legs)
    # What an ORM lock read would have flushed first (the statements below are Core).
    db.flush()
    accounts: dict[int, Account] = {}
    changes: dict[int, int] = defaultdict(int)
    for leg in legs:
        accounts[leg.account.id] = leg.account
        changes[leg.account.id] += leg.account.normal_sign * leg.amount
    drawers = [acc_id for acc_id, acc in accounts.items() if acc.kind == AccountKind.CASH_DRAWER]
    if drawers:
        _lock_account_rows(list(accounts))
    rows = db.execute(_POST, {
        **values,
        "line_accounts": [leg.account.id for leg in legs],
        "line_amounts": [leg.amount for leg in legs],
        "line_currencies": [leg.account.currency for leg in legs],
        "move_accounts": list(changes), "move_changes": list(changes.values()),
        "drawers": drawers,
        # The business day the entry is booked on: that of its own created_at.
        "today": baghdad_today(created_at) if drawers else date.min,
    }).all()
    entry_id, funds_ok, closed = rows[0].entry_id, rows[0].funds_ok, rows[0].closed
    for row in rows:
        balance = row.balance + (changes[row.id] if entry_id is not None else 0)
        _set_loaded_balance(accounts.get(row.id), row.id, balance)
    if entry_id is None:
        # Refused, or the key was used before: a retry of an entry that went through
        # returns it, even if the drawer's day has since closed or the balance fallen.
        existing = find_entry(idempotency_key)
        if existing is not None:
            return _same_entry(existing, legs), False
        if closed:
            # The drawer's day was closed and signed: its paper and the ledger must agree.
            raise DrawerDayClosed()
        if not funds_ok:
            raise InsufficientFunds()
        raise AssertionError("entry neither inserted nor found")  # pragma: no cover
    entry = JournalEntry(id=entry_id, **values)
    make_transient_to_detached(entry)  # persistent without a SELECT: we know every column
    db.add(entry)
    return entry, True


def _set_loaded_balance(account: Account | None, acc_id: int, balance: int) -> None:
    """Record `balance` as the loaded value (not a change) on the session's instance of
    the account and on the leg's own object."""
    held = db.identity_map.get(db.identity_key(Account, acc_id))
    for acc in {id(a): a for a in (account, held) if a is not None}.values():
        set_committed_value(acc, "balance", balance)


def _lock_account_rows(ids: Sequence[int]) -> None:
    """SELECT ... FOR UPDATE of the accounts in ascending id order, loading nothing."""
    db.execute(_LOCK_ROWS, {"ids": sorted(set(ids))})


_LOCK_ROWS = text("SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:ids AS bigint[])) "
                  "ORDER BY id FOR UPDATE")

# One statement of constant text (arrays, not a VALUES list per shape), so it is compiled
# once and the server keeps it prepared. `locked` takes the row locks in ascending id
# order (the sort runs below the lock) and reads the balances of the latest committed
# versions; `checked` reads all of it (an aggregate), so every lock is held before the
# entry is inserted. The UPDATE adds the change to the row's latest version (READ
# COMMITTED re-reads a row updated since the snapshot), which is the one locked above.
_POST = text("""
WITH locked AS MATERIALIZED (
    SELECT id, balance, no_overdraft FROM ledger_accounts
    WHERE id = ANY(CAST(:move_accounts AS bigint[]))
    ORDER BY id
    FOR UPDATE
), checked AS MATERIALIZED (
    SELECT coalesce(bool_and(NOT locked.no_overdraft OR locked.balance + move.change >= 0),
                    true) AS funds_ok,
           EXISTS (SELECT 1 FROM drawer_days
                   WHERE drawer_days.account_id = ANY(CAST(:drawers AS bigint[]))
                     AND drawer_days.business_date = :today) AS closed
    FROM locked
    JOIN unnest(CAST(:move_accounts AS bigint[]), CAST(:move_changes AS bigint[]))
         AS move(account_id, change) ON move.account_id = locked.id
), new_entry AS (
    INSERT INTO ledger_entries (idempotency_key, kind, description, actor_id, office_id,
                                payment_id, created_at)
    SELECT :idempotency_key, :kind, :description, :actor_id, :office_id, :payment_id,
           :created_at
    FROM checked WHERE checked.funds_ok AND NOT checked.closed
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), new_postings AS (
    INSERT INTO ledger_postings (entry_id, account_id, amount, currency)
    SELECT new_entry.id, line.account_id, line.amount, line.currency
    FROM new_entry, unnest(CAST(:line_accounts AS bigint[]), CAST(:line_amounts AS bigint[]),
                           CAST(:line_currencies AS text[]))
                    AS line(account_id, amount, currency)
), new_balances AS (
    UPDATE ledger_accounts SET balance = ledger_accounts.balance + move.change
    FROM new_entry, unnest(CAST(:move_accounts AS bigint[]), CAST(:move_changes AS bigint[]))
                    AS move(account_id, change)
    WHERE ledger_accounts.id = move.account_id
)
SELECT locked.id, locked.balance, (SELECT id FROM new_entry) AS entry_id,
       checked.funds_ok, checked.closed
FROM locked, checked
""")


def _post_entry_by_steps(values: dict[str, Any],
                         legs: Sequence[Leg]) -> tuple[JournalEntry, bool]:
    """post_entry on SQLite (the embedded platform): lock, check, then insert, in the
    caller's transaction (SQLite allows one writer at a time)."""
    idempotency_key = values["idempotency_key"]
    locked = lock_accounts([leg.account.id for leg in legs])
    deltas: dict[int, int] = defaultdict(int)
    for leg in legs:
        deltas[leg.account.id] += leg.amount
    balances = {acc_id: locked[acc_id].balance + locked[acc_id].normal_sign * raw
                for acc_id, raw in deltas.items()}
    if _touches_closed_drawer(locked.values(), baghdad_today(values["created_at"])):
        # The drawer's day was closed and signed: its paper and the ledger must agree.
        existing = find_entry(idempotency_key)
        if existing is not None:
            return _same_entry(existing, legs), False
        raise DrawerDayClosed()
    if any(locked[acc_id].no_overdraft and balance < 0
           for acc_id, balance in balances.items()):
        # A retry of an entry that went through returns it, even if the balance has
        # since fallen: the first request moved the money, the retry moves nothing.
        existing = find_entry(idempotency_key)
        if existing is not None:
            return _same_entry(existing, legs), False
        raise InsufficientFunds()
    entry_id = _insert_entry_then_postings(values, legs, balances)
    if entry_id is None:
        existing = find_entry(idempotency_key)
        assert existing is not None
        return _same_entry(existing, legs), False
    for acc_id, balance in balances.items():
        # Written by the statement above: record it as the loaded value, not a change.
        set_committed_value(locked[acc_id], "balance", balance)
    entry = JournalEntry(id=entry_id, **values)
    make_transient_to_detached(entry)
    db.add(entry)
    return entry, True


def _insert_entry_then_postings(values: dict[str, Any], legs: Sequence[Leg],
                                balances: dict[int, int]) -> int | None:
    """SQLite (the embedded platform): the same as three statements, in the caller's
    transaction (SQLite allows one writer at a time)."""
    entry_id = db.scalar(_insert()(JournalEntry).values(**values)
                         .on_conflict_do_nothing(index_elements=["idempotency_key"])
                         .returning(JournalEntry.id))
    if entry_id is None:
        return None
    db.execute(insert(Posting), [{"entry_id": entry_id, "account_id": leg.account.id,
                                  "amount": leg.amount, "currency": leg.account.currency}
                                 for leg in legs])
    table = Account.__table__
    db.execute(update(table).where(table.c.id == bindparam("_id"))
               .values(balance=bindparam("_balance")),
               [{"_id": acc_id, "_balance": balance} for acc_id, balance in balances.items()])
    return entry_id


def _same_entry(entry: JournalEntry, legs: Sequence[Leg]) -> JournalEntry:
    want = sorted((leg.account.id, leg.amount) for leg in legs)
    have = sorted((p.account_id, p.amount) for p in entry.postings)
    if want != have:
        raise IdempotencyConflict()
    return entry


def same_entry(entry: JournalEntry, legs: Sequence[Leg]) -> JournalEntry:
    """`entry`, found by a retried request's idempotency key, if it moved what `legs`
    would; raises IdempotencyConflict when the key was used for other postings."""
    return _same_entry(entry, legs)


def drawer_day_closed(account_id: int, day: date) -> bool:
    """Whether the drawer account's business day `day` is closed (payments.drawer)."""
    return db.scalar(select(DrawerDay.id).where(DrawerDay.account_id == account_id,
                                                DrawerDay.business_date == day)) is not None


def _touches_closed_drawer(accounts: Any, today: date) -> bool:
    """Whether one of the (locked) accounts is a cash drawer whose business day `today`
    is closed. Asked under the drawer's row lock, which closing the day takes too."""
    drawers = [a.id for a in accounts if a.kind == AccountKind.CASH_DRAWER]
    if not drawers:
        return False
    return any(drawer_day_closed(acc_id, today) for acc_id in drawers)


def positive_amount(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount()
    return amount


# --- Holds -----------------------------------------------------------------------


def authorize(card: PostCard, amount: int, *, idempotency_key: str, expires_at: datetime,
              payment_id: int | None = None, actor_id: int | None = None) -> Hold:
    """Reserve `amount` of the card's balance. Raises InsufficientFunds. Flushes."""
    positive_amount(amount)
    card_acc = db.get(Account, card.account_id)
    hold_acc = db.get(Account, card.hold_account_id)
    entry, created = post_entry(
        idempotency_key=idempotency_key, kind="hold",
        legs=[debit(card_acc, amount), credit(hold_acc, amount)],
        description=f"hold on card {card.id}", actor_id=actor_id, payment_id=payment_id,
    )
    if not created:
        hold = db.scalar(select(Hold).where(Hold.authorize_entry_id == entry.id))
        assert hold is not None
        return hold
    hold = Hold(card_id=card.id, payment_id=payment_id, amount=amount, currency=card.currency,
                expires_at=expires_at, authorize_entry_id=entry.id)
    db.add(hold)
    db.flush()
    return hold


def _lock_hold(hold_id: int) -> Hold:
    hold = db.scalar(select(Hold).where(Hold.id == hold_id).with_for_update()
                     .execution_options(populate_existing=True))
    if hold is None:
        raise NotFound()
    return hold


def capture(hold_id: int, amount: int, destination: Account, *,
            actor_id: int | None = None) -> Hold:
    """Take `amount` (<= the hold) to `destination`, releasing the rest to the card.

    A hold resolves once: capturing a captured hold with the same amount is a no-op,
    anything else raises HoldResolved. Flushes.
    """
    positive_amount(amount)
    hold = _lock_hold(hold_id)
    if hold.status == HoldStatus.CAPTURED and hold.captured_amount == amount:
        return hold
    if hold.status != HoldStatus.AUTHORIZED:
        raise HoldResolved(f"hold {hold.id} is already {hold.status}")
    if amount > hold.amount:
        raise InvalidAmount("cannot capture more than was held")
    card = db.get(PostCard, hold.card_id)
    hold_acc = db.get(Account, card.hold_account_id)
    legs = [debit(hold_acc, hold.amount), credit(destination, amount)]
    if hold.amount > amount:
        legs.append(credit(db.get(Account, card.account_id), hold.amount - amount))
    entry, _ = post_entry(idempotency_key=f"hold:{hold.id}:resolve", kind="capture", legs=legs,
                          description=f"capture hold {hold.id}", actor_id=actor_id,
                          payment_id=hold.payment_id)
    hold.status = HoldStatus.CAPTURED
    hold.captured_amount = amount
    hold.resolved_at = utcnow()
    hold.resolve_entry_id = entry.id
    db.flush()
    return hold


def void(hold_id: int, *, actor_id: int | None = None) -> Hold:
    """Give the held money back to the card. Voiding a voided hold is a no-op;
    voiding a captured one raises HoldResolved. Flushes."""
    hold = _lock_hold(hold_id)
    if hold.status == HoldStatus.VOIDED:
        return hold
    if hold.status != HoldStatus.AUTHORIZED:
        raise HoldResolved(f"hold {hold.id} is already {hold.status}")
    card = db.get(PostCard, hold.card_id)
    entry, _ = post_entry(
        idempotency_key=f"hold:{hold.id}:resolve", kind="void",
        legs=[debit(db.get(Account, card.hold_account_id), hold.amount),
              credit(db.get(Account, card.account_id), hold.amount)],
        description=f"void hold {hold.id}", actor_id=actor_id, payment_id=hold.payment_id,
    )
    hold.status = HoldStatus.VOIDED
    hold.resolved_at = utcnow()
    hold.resolve_entry_id = entry.id
    db.flush()
    return hold


# --- Invariants ------------------------------------------------------------------


@dataclass
class Problem:
    check: str
    ids: list[int | str]

    def __str__(self) -> str:
        return f"{self.check}: {', '.join(str(i) for i in self.ids)}"


def verify() -> list[Problem]:
    """Check the ledger's invariants on the whole database; empty list when sound.

    Every entry has two or more postings summing to zero per currency; postings are in
    their account's currency; no no-overdraft account is negative; each cached balance
    equals the sum of its postings; each card's hold account equals its open holds, and
    every hold's state agrees with its entries.
    """
    problems: list[Problem] = []

    unbalanced = db.execute(
        select(Posting.entry_id).group_by(Posting.entry_id, Posting.currency)
        .having(func.sum(Posting.amount) != 0)
    ).scalars().all()
    if unbalanced:
        problems.append(Problem("entry does not balance", sorted(set(unbalanced))))

    counts = select(Posting.entry_id, func.count().label("n")).group_by(Posting.entry_id)
    counts_sq = counts.subquery()
    short = db.execute(
        select(JournalEntry.id)
        .outerjoin(counts_sq, counts_sq.c.entry_id == JournalEntry.id)
        .where(func.coalesce(counts_sq.c.n, 0) < 2)
    ).scalars().all()
    if short:
        problems.append(Problem("entry with fewer than two postings", list(short)))

    wrong_currency = db.execute(
        select(Posting.id).join(Account, Account.id == Posting.account_id)
        .where(Account.currency != Posting.currency)
    ).scalars().all()
    if wrong_currency:
        problems.append(Problem("posting in another currency than its account",
                                list(wrong_currency)))

    sums = dict(db.execute(
        select(Posting.account_id, func.sum(Posting.amount)).group_by(Posting.account_id)
    ).all())
    mismatched, negative = [], []
    for acc in db.scalars(select(Account).order_by(Account.id)):
        expected = acc.normal_sign * int(sums.get(acc.id) or 0)
        if acc.balance != expected:
            mismatched.append(acc.id)
        if acc.no_overdraft and min(acc.balance, expected) < 0:
            negative.append(acc.id)
    if mismatched:
        problems.append(Problem("cached balance differs from postings", mismatched))
    if negative:
        problems.append(Problem("card account below zero", negative))

    open_by_card = dict(db.execute(
        select(Hold.card_id, func.sum(Hold.amount))
        .where(Hold.status == HoldStatus.AUTHORIZED).group_by(Hold.card_id)
    ).all())
    bad_holds: list[int | str] = []
    for card in db.scalars(select(PostCard).where(PostCard.hold_account_id.is_not(None))):
        hold_acc = db.get(Account, card.hold_account_id)
        if hold_acc.balance != int(open_by_card.get(card.id) or 0):
            bad_holds.append(f"card {card.id}")
    for hold in db.scalars(select(Hold)):
        resolved = hold.status != HoldStatus.AUTHORIZED
        if resolved != (hold.resolve_entry_id is not None) or (
            hold.status == HoldStatus.CAPTURED and not 0 < hold.captured_amount <= hold.amount
        ):
            bad_holds.append(f"hold {hold.id}")
    if bad_holds:
        problems.append(Problem("holds inconsistent", bad_holds))
    return problems


StatementLine = tuple[JournalEntry, int, int]


def statement_lines(account_id: int, *, since: datetime | None = None,
                    until: datetime | None = None) -> tuple[int, list[StatementLine]]:
    """(opening balance, [(entry, signed amount on the normal side, running balance)])."""
    acc = db.get(Account, account_id)
    sign = acc.normal_sign
    opening = 0
    if since is not None:
        opening = sign * int(db.scalar(
            select(func.coalesce(func.sum(Posting.amount), 0))
            .join(JournalEntry, JournalEntry.id == Posting.entry_id)
            .where(Posting.account_id == account_id, JournalEntry.created_at < since)
        ) or 0)
    q = (select(Posting, JournalEntry).join(JournalEntry, JournalEntry.id == Posting.entry_id)
         .where(Posting.account_id == account_id).order_by(Posting.id))
    if since is not None:
        q = q.where(JournalEntry.created_at >= since)
    if until is not None:
        q = q.where(JournalEntry.created_at < until)
    running = opening
    lines = []
    for posting, entry in db.execute(q).all():
        running += sign * posting.amount
        lines.append((entry, sign * posting.amount, running))
    return opening, lines
