"""`Idempotency-Key` on POST: the first answer is kept and replayed to every repeat.

The claim, the stored answer and the release each run in their own short transaction on
their own connection, apart from the request's, so the record is visible to a
concurrent repeat while the first request is still working:

- same key, same request, first one finished: its answer again (`Idempotent-Replayed`);
- same key, same request, first one still running: 409, try again shortly;
- same key, a different request (method, path or body): 422;
- the first one failed with a server error: the claim is released, a retry runs anew.

Records are kept API_IDEMPOTENCY_TTL seconds (a day by default) and then swept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.api.models import IdempotencyRecord, IdempotencyState
from app.database import get_engine, utcnow
from app.errors import Conflict, ValidationFailed

MAX_KEY_LENGTH = 255


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    headers: dict[str, str]


def _ttl() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("API_IDEMPOTENCY_TTL", 86400)))


def _lock_timeout() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("API_IDEMPOTENCY_LOCK", 60)))


def check_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(_l("The Idempotency-Key header must have 1 to 255 characters."),
                               fields={"Idempotency-Key": ["length"]},
                               code="invalid_idempotency_key")
    return key


def claim(api_key_id: int, key: str, digest: str) -> int | Stored:
    """Claim `key` for this request: the new record's id (go ahead), or the stored
    answer of the first request with this key.

    Raises ValidationFailed (422) when the key was used for a different request and
    Conflict (409) while the first request is still running.
    """
    now = utcnow()
    table = IdempotencyRecord.__table__
    with get_engine().begin() as conn:
        for _ in range(3):
            try:
                with conn.begin_nested():
                    return int(conn.execute(
                        insert(IdempotencyRecord).values(
                            api_key_id=api_key_id, key=key, request_hash=digest,
                            state=IdempotencyState.STARTED, created_at=now,
                            expires_at=now + _ttl(), response_headers={},
                        ).returning(table.c.id)
                    ).scalar_one())
            except IntegrityError:
                pass
            row = conn.execute(
                select(IdempotencyRecord.__table__).where(
                    table.c.api_key_id == api_key_id, table.c.key == key).with_for_update()
            ).one_or_none()
            if row is None:
                continue  # released between our insert and our read
            if row.expires_at <= now or (row.state == IdempotencyState.STARTED
                                         and row.created_at <= now - _lock_timeout()):
                # An expired record, or a claim whose process died: start over.
                conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == row.id))
                continue
            if row.request_hash != digest:
                raise ValidationFailed(
                    _l("This Idempotency-Key was already used for a different request."),
                    fields={"Idempotency-Key": ["reused_with_different_request"]},
                    code="idempotency_key_reused")
            if row.state != IdempotencyState.DONE:
                raise Conflict(
                    _l("A request with this Idempotency-Key is still being processed. "
                       "Try again in a moment."), code="idempotency_key_in_use")
            return Stored(int(row.status_code), bytes(row.response_body or b""),
                          dict(row.response_headers or {}))
    raise Conflict(_l("Try again in a moment."), code="idempotency_key_in_use")


def finish(record_id: int, status: int, body: bytes, headers: dict[str, str]) -> None:
    """Keep the answer to replay it."""
    with get_engine().begin() as conn:
        conn.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                     .values(state=IdempotencyState.DONE, status_code=status,
                             response_body=body, response_headers=headers))


def release(record_id: int) -> None:
    """Forget the claim (the request failed on our side; a retry should run again)."""
    with get_engine().begin() as conn:
        conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def sweep_expired() -> int:
    """Delete records past their expiry; returns how many."""
    with get_engine().begin() as conn:
        result = conn.execute(delete(IdempotencyRecord)
                              .where(IdempotencyRecord.expires_at < utcnow()))
    return int(result.rowcount or 0)
