"""A per-client budget of public tracking lookups per minute, shared by every process.

With Redis (REDIS_URL) the count is an INCR on a key that expires with its minute;
without it, a row per client and minute in `tracking_lookup_counters`. Nothing is kept
in memory, so several gunicorn workers share one budget.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete

from app.database import UTCDateTime, db, utcnow
from app.errors import RateLimited
from app.redisconn import get_redis
from tracking.models import LookupCounter

WINDOW = 60


def check_lookup(client: str) -> None:
    """Count one lookup by `client`; raises RateLimited past TRACKING_LOOKUPS_PER_MINUTE
    (0 turns the limit off). The database path commits its counter on its own."""
    limit = int(current_app.config["TRACKING_LOOKUPS_PER_MINUTE"])
    if limit <= 0:
        return
    now = utcnow()
    minute = int(now.timestamp()) // WINDOW
    key = f"track:{client[:60]}:{minute}"
    conn = get_redis()
    if conn is not None:
        pipe = conn.pipeline(transaction=True)
        pipe.incr("barid:" + key)
        pipe.expire("barid:" + key, WINDOW * 2)
        count = int(pipe.execute()[0])
    else:
        count = _count_in_db(key, now)
    if count > limit:
        raise RateLimited(_l("Too many lookups from your connection. Please wait a minute "
                             "and try again."), retry_after=WINDOW - int(now.timestamp())
                          % WINDOW or 1)


def _count_in_db(key: str, now) -> int:
    table = LookupCounter.__table__
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(key=key, count=1, expires_at=now + timedelta(seconds=WINDOW * 2))
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.key],
                                      set_={"count": table.c.count + 1})
    count = db.execute(stmt.returning(table.c.count)).scalar_one()
    if count == 1:  # once a minute per client is often enough to drop old rows
        from sqlalchemy import literal

        db.execute(delete(LookupCounter).where(
            LookupCounter.expires_at < literal(now, UTCDateTime())))
    db.commit()
    return int(count)
