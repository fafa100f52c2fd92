"""The outbox sweeper: on its own schedule in the beat of every `barid worker`, one at a
time per deployment.

It is not a job on a queue: a queued sweeper waits behind the very backlog it exists to
clear (after a Redis outage it expired there, and nothing was swept for minutes). Every
worker's beat thread calls `run_sweeper` each second; the first to win the interval key
`barid:sweeper:due` (SET NX EX OUTBOX_SWEEP_EVERY) takes the lock `barid:sweeper:lock`
and sweeps. So any living worker sweeps, one sweep runs at a time across every host,
and a sweep that outlasts its interval is not joined by a second one.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from flask import Flask
from redis.exceptions import LockError

from app.redisconn import UNAVAILABLE

from .dispatch import sweep

DUE_KEY = "barid:sweeper:due"
LOCK_KEY = "barid:sweeper:lock"
# Seconds the lock outlives a sweeper that died holding it.
LOCK_TIMEOUT = 120


def run_sweeper(app: Flask, connection: Any, *, force: bool = False) -> list[int] | None:
    """Sweep the outbox if this process wins this interval and the deployment's lock.

    Returns the ids sent again, or None when another process swept this interval or
    holds the lock. `force` ignores the interval (not the lock). Raises redis errors
    when Redis is down.
    """
    every = max(int(app.config.get("OUTBOX_SWEEP_EVERY", 10)), 1)
    if not force and not connection.set(DUE_KEY, str(time.time()), nx=True, ex=every):
        return None
    lock = connection.lock(LOCK_KEY, timeout=LOCK_TIMEOUT, blocking=False)
    if not lock.acquire(blocking=False):
        return None
    try:
        with app.app_context():
            return sweep(app)
    finally:
        with contextlib.suppress(LockError, *UNAVAILABLE):
            lock.release()


def sweep_outbox() -> None:
    """Re-send pending outbox jobs their executor lost (see app.jobs.dispatch.sweep).

    Kept for callers that sweep by hand; the workers' beat runs `run_sweeper`. Changes
    only `enqueued_at` of the rows it re-sends.
    """
    sweep()
