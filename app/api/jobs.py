"""Housekeeping of the API platform."""

from __future__ import annotations

import logging

from app.api.idempotency import sweep_expired
from app.jobs import periodic

log = logging.getLogger("barid.api")


@periodic(every_seconds=3600, queue="low", name="api-housekeeping")
def sweep_api_records() -> None:
    """Delete idempotency records older than API_IDEMPOTENCY_TTL (on their own
    connection, as app.api.idempotency does). Changes only that table; raises nothing of
    its own. Rate counters expire by themselves (app.ratelimit)."""
    kept = sweep_expired()
    log.info("api housekeeping: %s idempotency records removed", kept)
