"""The append-only audit log: who did what to which object, when (UTC), from where.

`record_audit` is the one way to write it. Rows are never updated or deleted: the ORM
refuses it here, and on PostgreSQL a trigger refuses it for any client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import ForeignKey, String, event
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, append_only, db, utcnow
from app.logs import current_request_id


class AuditRecord(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


append_only(AuditRecord.__table__)


@event.listens_for(AuditRecord, "before_update")
@event.listens_for(AuditRecord, "before_delete")
def _refuse_change(*_: Any) -> None:
    raise PermissionError("the audit log is append-only")


def record_audit(
    action: str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    actor_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add an audit record to the current transaction (the caller commits).

    The actor defaults to the logged-in user and the address to the request's client,
    so a service called from a view needs only name the action and the object.
    """
    ip = None
    request_id = None
    if has_request_context():
        ip = request.remote_addr
        request_id = getattr(request, "request_id", None)
        if actor_id is None and current_user and current_user.is_authenticated:
            actor_id = current_user.id
    if request_id is None:
        request_id = current_request_id()
    rec = AuditRecord(
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        actor_id=actor_id,
        ip_address=ip,
        request_id=request_id,
        details=details or {},
    )
    db.add(rec)
    return rec
