"""Housekeeping of the API platform."""

from __future__ import annotations

import logging

from app.jobs import periodic

log = logging.getLogger("barid.api")


@periodic(every_seconds=3600, queue="low", name="api-housekeeping")
def sweep_api_records() -> None:
    """Delete idempotency records older than API_IDEMPOTENCY_TTL and rate counters of
    ended windows. Changes only those two tables; raises nothing of its own."""
    from app.api.idempotency import sweep_expired
    from app.api.ratelimit import sweep_counters

    kept = sweep_expired()
    counters = sweep_counters()
    log.info("api housekeeping: %s idempotency records, %s rate counters removed",
             kept, counters)
