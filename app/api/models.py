"""API keys, stored idempotent responses, and rate-limit counters (without Redis)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, utcnow


class Scope(enum.StrEnum):
    CATALOG = "catalog"
    ORDERS = "orders"
    PARCELS = "parcels"
    WEBHOOKS = "webhooks"


ALL_SCOPES = tuple(s.value for s in Scope)
# Whose keys these are. Merchants hold the scopes above; another kind of owner (such as
# tracking's partner posts) registers its own scopes in app.api.owners, so a key of one
# kind can never be given the other kind's permissions.
MERCHANT = "merchant"


class ApiKey(Base):
    """A secret a merchant's system sends as `Authorization: Bearer <key>`.

    Only the SHA-256 of the key is kept: the key has 190 random bits, so a fast hash
    cannot be brute-forced and lets every request find its key with one index lookup.
    `prefix` (e.g. `bk_live_ab12`) is what people see to tell their keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The merchant (or other owner) the key acts for: a plain id, the platform knows no
    # merchants (app.api.owners).
    owner_id: Mapped[int] = mapped_column(index=True)
    # What owner_id counts: "merchant" (the shop's merchants), or a kind another domain
    # registered (app.api.owners.register_owner_kind), e.g. "partner".
    owner_kind: Mapped[str] = mapped_column(String(16), default=MERCHANT,
                                            server_default=MERCHANT)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # A rotated key keeps working until then, so the merchant can deploy the new one.
    expires_at: Mapped[datetime | None]
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def display(self) -> str:
        return f"{self.prefix}…"


class IdempotencyState(enum.StrEnum):
    STARTED = "started"
    DONE = "done"


class IdempotencyRecord(Base):
    """The first answer to a POST with an `Idempotency-Key`, replayed to its repeats."""

    __tablename__ = "api_idempotency"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key"),
        Index("ix_api_idempotency_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path and the canonical JSON body: a different request under the
    # same key is refused, not answered with the first one's result.
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=IdempotencyState.STARTED)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
