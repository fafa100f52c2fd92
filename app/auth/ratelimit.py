"""Counting failed logins so that guessing passwords is slow, in every process at once.

Failures are counted per login name and per client address over a fixed window that
starts at the first failure. With Redis configured (REDIS_URL) the counters live there
(SET NX EX + INCR, atomic); without it they live in the `login_throttle` table, so
several gunicorn processes on one database still share them. Nothing is kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from app.auth.models import LoginThrottle
from app.database import UTCDateTime, db, utcnow
from app.redisconn import get_redis

_PREFIX = "barid:login-fail:"


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int


def counters_for(identifier: str, address: str | None) -> list[Counter]:
    """The counters one login attempt touches.

    The per-address limit is higher than the per-name one because many Iraqi mobile
    subscribers share one carrier-grade NAT address.
    """
    from app.auth.identifiers import parse_identifier
    from app.errors import ValidationFailed

    limit = int(current_app.config["LOGIN_RATE_LIMIT"])
    per_address = int(current_app.config.get("LOGIN_RATE_LIMIT_PER_ADDRESS") or limit * 5)
    # Count the account, not the spelling: "0770 123 4567" and "+9647701234567" share one
    # counter, so writing a number differently buys no extra guesses.
    try:
        name = parse_identifier(identifier)[1]
    except ValidationFailed:
        name = identifier.strip().lower()
    out = [Counter("id:" + name[:250], limit)]
    if address:
        out.append(Counter("addr:" + address[:60], per_address))
    return out


def _window() -> int:
    return int(current_app.config["LOGIN_RATE_WINDOW"])


def retry_after(counters: list[Counter]) -> int | None:
    """Seconds until a login may be tried again, or None if no counter is at its limit."""
    conn = get_redis()
    waits: list[int] = []
    if conn is not None:
        keys = [_PREFIX + c.key for c in counters]
        values = conn.mget(keys)
        for c, key, value in zip(counters, keys, values, strict=True):
            if value is not None and int(value) >= c.limit:
                waits.append(max(int(conn.ttl(key)), 1))
    else:
        now = utcnow()
        rows = db.execute(
            select(LoginThrottle.key, LoginThrottle.count, LoginThrottle.expires_at).where(
                LoginThrottle.key.in_([c.key for c in counters]),
                LoginThrottle.expires_at > now,
            )
        ).all()
        limits = {c.key: c.limit for c in counters}
        for key, count, expires_at in rows:
            if count >= limits[key]:
                waits.append(max(int((expires_at - now).total_seconds()) + 1, 1))
    return max(waits) if waits else None


def note_failure(counters: list[Counter]) -> None:
    """Count one failed attempt on each counter (the database path flushes, the caller
    commits)."""
    window = _window()
    conn = get_redis()
    if conn is not None:
        pipe = conn.pipeline(transaction=True)
        for c in counters:
            pipe.set(_PREFIX + c.key, 0, ex=window, nx=True)
            pipe.incr(_PREFIX + c.key)
        pipe.execute()
        return
    now = utcnow()
    until = now + timedelta(seconds=window)
    dialect = db.get_bind().dialect.name
    # One atomic upsert per counter: concurrent failures from several processes add up.
    upsert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    expired = LoginThrottle.expires_at <= literal(now, UTCDateTime())
    for c in counters:
        stmt = upsert(LoginThrottle).values(key=c.key, count=1, expires_at=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "count": case((expired, 1), else_=LoginThrottle.count + 1),
                "expires_at": case(
                    (expired, literal(until, UTCDateTime())), else_=LoginThrottle.expires_at
                ),
            },
        )
        db.execute(stmt)
    # Old windows are dead weight; dropping them here keeps the table small without a job.
    db.execute(delete(LoginThrottle).where(LoginThrottle.expires_at < now - timedelta(
        seconds=window)))
    db.flush()


def clear(counter: Counter) -> None:
    """Forget the failures on one counter (after a successful login by that name)."""
    conn = get_redis()
    if conn is not None:
        conn.delete(_PREFIX + counter.key)
    else:
        db.execute(delete(LoginThrottle).where(LoginThrottle.key == counter.key))
