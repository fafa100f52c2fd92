"""Tables of the money side: ledger, post cards, payments, refunds, Stripe events, rates.

Sign convention of the ledger: a posting's `amount` is positive for a debit and
negative for a credit, so the postings of one entry sum to zero per currency. An
account's cached `balance` is kept on its normal side (what a card holder owns, what
a drawer holds), see `Account.normal_sign`.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import Base, append_only, utcnow


class AccountKind(enum.StrEnum):
    POST_CARD = "post_card"  # the post owes the holder this much
    CARD_HOLD = "card_hold"  # money of a card reserved by open holds
    CASH_DRAWER = "cash_drawer"  # cash at one post office
    STRIPE_CLEARING = "stripe_clearing"  # owed to the post by Stripe
    MERCHANT_PAYABLE = "merchant_payable"
    REVENUE = "revenue"  # one per purpose: postage, fees, commission
    DUTY_COLLECTED = "duty_collected"  # customs duty held for the customs authority
    FX = "fx"  # currency position: bridges entries that change currency
    BANK = "bank"  # the post's bank account: money paid out to merchants leaves from here


# Asset accounts grow with debits; the post's liabilities and income grow with credits.
DEBIT_NORMAL = frozenset({AccountKind.CASH_DRAWER, AccountKind.STRIPE_CLEARING, AccountKind.FX,
                          AccountKind.BANK})


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    # On the account's normal side; equals normal_sign * sum(postings). Updated in the
    # same transaction as the postings, under the row lock.
    balance: Mapped[int] = mapped_column(default=0)
    # Accounts that may never go below zero (post cards and their holds).
    no_overdraft: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def normal_sign(self) -> int:
        return 1 if AccountKind(self.kind) in DEBIT_NORMAL else -1


class JournalEntry(Base):
    """One movement of value; its postings sum to zero per currency."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # topup, payment, hold, capture, ...
    description: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    payment_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    postings: Mapped[list[Posting]] = relationship(
        back_populates="entry", order_by="Posting.id"
    )


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="nonzero"),
        Index("ix_ledger_postings_account_created", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int]  # debit > 0, credit < 0
    currency: Mapped[str] = mapped_column(String(3))

    entry: Mapped[JournalEntry] = relationship(back_populates="postings")
    account: Mapped[Account] = relationship(lazy="joined")


append_only(JournalEntry.__table__)
append_only(Posting.__table__)


class HoldStatus(enum.StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"


class Hold(Base):
    """Money of a card reserved for a checkout; resolved exactly once."""

    __tablename__ = "ledger_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("post_cards.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[int]
    captured_amount: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.AUTHORIZED, index=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    authorize_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    resolve_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"


class PostCard(Base):
    """The stored-value card the post issues at the counter."""

    __tablename__ = "post_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(16), unique=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    national_id: Mapped[str] = mapped_column(String(32), index=True)
    mobile: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    currency: Mapped[str] = mapped_column(String(3), default="IQD")
    status: Mapped[str] = mapped_column(String(16), default=CardStatus.ACTIVE)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    failed_pin_attempts: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    expires_on: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    hold_account_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account | None] = relationship(foreign_keys=[account_id])

    @property
    def masked(self) -> str:
        return f"•••• {self.number[-4:]}" if self.number else ""

    @property
    def grouped(self) -> str:
        n = self.number or ""
        return " ".join(n[i : i + 4] for i in range(0, len(n), 4))


class OneTimeCode(Base):
    """A one-time code sent by SMS to a card's holder, asked when the card is used
    online by someone other than its holder (see payments.otp).

    Kept only as a keyed hash. It is good for one payment of `amount` `currency` for
    `purpose`, asked by `actor_id` (None: nobody signed in), until `expires_at`, for
    MAX_TRIES tries; `used_at` is set by the payment it allowed.
    """

    __tablename__ = "post_card_codes"
    __table_args__ = (Index("ix_post_card_codes_card_created", "card_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("post_cards.id"))
    code_hash: Mapped[str] = mapped_column(String(100))  # "<salt>$<HMAC-SHA256>"
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(32))
    client: Mapped[str | None] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


# The purpose of a payment that tops up a post card (reference: "post_card", card id).
TOPUP = "card_topup"


class PaymentMethod(enum.StrEnum):
    POST_CARD = "post_card"
    STRIPE = "stripe"
    CASH = "cash"


class PaymentStatus(enum.StrEnum):
    CREATED = "created"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"


class Payment(Base):
    """Money received for an opaque reference (`reference_kind`, `reference_id`)."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_reference", "reference_kind", "reference_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.CREATED, index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(40))
    reference_kind: Mapped[str] = mapped_column(String(40))
    reference_id: Mapped[str] = mapped_column(String(64))
    refunded_amount: Mapped[int] = mapped_column(default=0)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("post_cards.id"), index=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    clerk_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    payer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # What a card network was asked to charge, at which stored rate.
    charged_amount: Mapped[int | None]
    charged_currency: Mapped[str | None] = mapped_column(String(3))
    exchange_rate: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    exchange_rate_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_rates.id"))
    stripe_payment_intent: Mapped[str | None] = mapped_column(String(64), unique=True)
    stripe_client_secret: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    failure_message: Mapped[str | None] = mapped_column(String(300))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    card: Mapped[PostCard | None] = relationship()
    refunds: Mapped[list[Refund]] = relationship(
        back_populates="payment", lazy="selectin", order_by="Refund.id"
    )

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_amount


class PaymentTransition(Base):
    __tablename__ = "payment_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


append_only(PaymentTransition.__table__)


class Refund(Base):
    __tablename__ = "payment_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="succeeded")
    # "barid" when asked here, "stripe" when it arrived from the Stripe dashboard.
    origin: Mapped[str] = mapped_column(String(16), default="barid")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    charged_amount: Mapped[int | None]  # in the payment's charged currency
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    payment: Mapped[Payment] = relationship(back_populates="refunds")


class RefundRequestStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"  # the refund was made when it was approved
    DECLINED = "declined"


class RefundRequest(Base):
    """A counter refund that waits for a second person: another office's payment, an
    online payment (it belongs to no office) or an amount above the approval threshold.

    A supervisor or admin other than the requester approves it (the refund is made
    then, once) or declines it. Decided once: `status` leaves `requested` only under the
    row lock.
    """

    __tablename__ = "payment_refund_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The counter form's key: a resubmitted form files one request.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    # Why a second person is needed: other_office, online, above_threshold (comma-joined).
    needs: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(16), default=RefundRequestStatus.REQUESTED,
                                        index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(String(300), default="")
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("payment_refunds.id"))

    payment: Mapped[Payment] = relationship()


class StripeEvent(Base):
    """A verified Stripe webhook event, stored once by its id."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    created: Mapped[int]  # Stripe's Unix time of the event
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class Dispute(Base):
    __tablename__ = "payment_disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(32), default="needs_response")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    payment: Mapped[Payment] = relationship()


class ExchangeRate(Base):
    """`rate` units of `quote` (IQD) for one unit of `base`, valid in [valid_from, valid_to)."""

    __tablename__ = "exchange_rates"
    __table_args__ = (
        UniqueConstraint("base", "quote", "valid_from"),
        CheckConstraint("rate > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateProposalStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"  # the rate was set when it was confirmed
    DECLINED = "declined"


class RateProposal(Base):
    """A new exchange rate too far from the current one to take effect on one person's
    word: it waits for a second admin or supervisor to confirm (or decline) it."""

    __tablename__ = "exchange_rate_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    # The rate in force when it was proposed, to show the change to the confirmer.
    current_rate: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    status: Mapped[str] = mapped_column(String(16), default=RateProposalStatus.PENDING,
                                        index=True)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    rate_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_rates.id"))


class ReconciliationRun(Base):
    __tablename__ = "payment_reconciliations"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked: Mapped[int] = mapped_column(default=0)
    differences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class DrawerDay(Base):
    """An office drawer's business day, closed by a clerk who counted the cash.

    Written once when the day is closed and never changed (append-only, like the
    ledger): a closed day refuses new cash postings, and a correction found later is a
    new ledger entry on an open day. `signature` is an HMAC of the figures with the
    app's secret key, so a row altered behind the application's back shows.
    """

    __tablename__ = "drawer_days"
    __table_args__ = (UniqueConstraint("account_id", "business_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("post_offices.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    business_date: Mapped[date] = mapped_column(Date)
    expected: Mapped[int]
    counted: Mapped[int]
    difference: Mapped[int]  # counted - expected: below zero is cash missing
    note: Mapped[str] = mapped_column(String(300), default="")
    closed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
    signature: Mapped[str] = mapped_column(String(64))


append_only(DrawerDay.__table__)


@event.listens_for(DrawerDay, "before_update")
@event.listens_for(DrawerDay, "before_delete")
def _refuse_change(*_: Any) -> None:
    raise PermissionError("a closed drawer day cannot change")
