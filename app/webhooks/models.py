"""Outbound webhooks: endpoints, messages, one delivery per (message, endpoint), attempts.

A message is one event for one owner (`webhook-id` = `WebhookMessage.id`, the same on
every retry and replay). Each enabled endpoint of the owner that wants the event type
gets a `WebhookDelivery`, tried by jobs on the "webhooks" queue; every try is a
`WebhookAttempt` row: the delivery log merchants read.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import Base, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The owner (a merchant's id): a plain integer, the platform knows no merchants.
    owner_id: Mapped[int] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Event types to receive; empty means every type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Why it was disabled: "manual", "gone" (answered 410), "failing" (days of failures).
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(String(120))
    # During a rotation both secrets sign, until previous_secret_expires_at.
    previous_secret: Mapped[str | None] = mapped_column(String(120))
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every attempt has failed (None while the endpoint answers 2xx).
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookMessage(Base):
    __tablename__ = "webhook_messages"
    __table_args__ = (
        # One message per domain event and owner: a subscriber run twice sends once.
        UniqueConstraint("source_event_id", "owner_id"),
        Index("ix_webhook_messages_owner_created", "owner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_...
    owner_id: Mapped[int]
    event_type: Mapped[str] = mapped_column(String(64))
    # The whole JSON body sent (envelope and data), kept so every retry and replay
    # sends the same bytes.
    payload: Mapped[dict[str, Any]]
    # "<domain event id>|<type>": one domain event may become several types.
    source_event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt of the schedule failed, or the endpoint went away


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_endpoint_state", "endpoint_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id",
                                                       ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                        ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    # Attempts of the current round (a replay starts a new round).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by each replay: a job of an earlier round finds it changed and stops.
    round: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    message: Mapped[WebhookMessage] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(Base):
    """One try of one delivery: what the merchant's server answered, and how fast."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint_time", "endpoint_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id",
                                                        ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                        ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(40), index=True)
    attempt_number: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=1)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(300))
    # The URL as it was when tried (an endpoint's URL may change later).
    url: Mapped[str] = mapped_column(String(2000), default="")
    next_attempt_at: Mapped[datetime | None]
