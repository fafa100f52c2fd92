"""Requests per API key per fixed window, counted in Redis (or the database without it).

API_RATE_LIMIT requests per API_RATE_WINDOW seconds (default 600 per 60 s). With Redis
each window is one INCR with an expiry; without Redis (the embedded default) a row of
`api_rate_counters` per key and window, so every web process counts the same requests.
The answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
(seconds until the window ends); a refused request gets 429 with `Retry-After`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from app.api.models import ApiRateCounter
from app.database import get_engine, utcnow

log = logging.getLogger("barid.api")


@dataclass(frozen=True)
class Allowance:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    allowed: bool

    def headers(self) -> list[tuple[str, str]]:
        out = [("RateLimit-Limit", str(self.limit)),
               ("RateLimit-Remaining", str(max(self.remaining, 0))),
               ("RateLimit-Reset", str(self.reset))]
        if not self.allowed:
            out.append(("Retry-After", str(self.reset)))
        return out


def _count_redis(conn, name: str, window: int) -> int:
    with conn.pipeline() as pipe:
        pipe.incr(name)
        pipe.expire(name, window + 1, nx=True)
        count, _ = pipe.execute()
    return int(count)


def _count_db(name: str, window_end: float) -> int:
    from datetime import UTC, datetime

    expires = datetime.fromtimestamp(window_end, UTC)
    with get_engine().begin() as conn:
        for _ in range(3):
            row = conn.execute(
                update(ApiRateCounter).where(ApiRateCounter.key == name)
                .values(count=ApiRateCounter.count + 1).returning(ApiRateCounter.count)
            ).scalar_one_or_none()
            if row is not None:
                return int(row)
            try:
                with conn.begin_nested():
                    conn.execute(insert(ApiRateCounter).values(
                        key=name, count=1, expires_at=expires))
                return 1
            except IntegrityError:
                continue  # another process inserted the row first
    return 1


def hit(api_key_id: int) -> Allowance:
    """Count one request of the key and say whether it is within the limit."""
    limit = int(current_app.config.get("API_RATE_LIMIT", 600))
    window = max(int(current_app.config.get("API_RATE_WINDOW", 60)), 1)
    now = time.time()
    start = int(now // window) * window
    reset = max(int(start + window - now + 0.999), 1)
    name = f"barid:api:rate:{api_key_id}:{start}"
    from app.redisconn import get_redis

    conn = get_redis()
    if conn is not None:
        try:
            count = _count_redis(conn, name, window)
        except Exception:
            # Redis down: count in the database rather than refuse every request.
            log.exception("rate limit: Redis unavailable, counting in the database")
            count = _count_db(name, start + window)
    else:
        count = _count_db(name, start + window)
    return Allowance(limit=limit, remaining=limit - count, reset=reset,
                     allowed=count <= limit)


def sweep_counters() -> int:
    """Delete database counters whose window has ended; returns how many."""
    with get_engine().begin() as conn:
        result = conn.execute(delete(ApiRateCounter).where(
            ApiRateCounter.expires_at < utcnow() - timedelta(seconds=1)))
    return int(result.rowcount or 0)


__all__ = ["Allowance", "hit", "sweep_counters"]
