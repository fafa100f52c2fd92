"""The inline executor: a thread in the web process that drains the outbox.

Used when no Redis is configured (the embedded default of `barid run`). The thread wakes
right after a commit that staged jobs, and every second otherwise, runs every pending
job whose `run_after` has come (a failed one comes back after its backoff), and runs the
periodic jobs on their interval. `drain()` does one such pass synchronously, for tests.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, has_app_context
from sqlalchemy import select

from app.database import db, unit_of_work, utcnow
from app.events import JobState, OutboxJob

from .beat import PeriodicClock
from .context import set_process_app
from .runner import run_outbox_job

log = logging.getLogger("barid.jobs")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_wake = threading.Event()
_stop = threading.Event()


def running() -> bool:
    return _thread is not None and _thread.is_alive()


def wake() -> None:
    """Ask the inline thread to look at the outbox now."""
    _wake.set()


def due_job_ids(limit: int = 100) -> list[int]:
    """Ids of pending jobs whose time has come, oldest first.

    Read through the scoped session (so a caller whose session is bound to a test's
    connection sees that connection's rows) in a unit of work of its own, which ends
    the read transaction: each job then starts on a fresh snapshot.
    """
    with unit_of_work():
        return list(
            db.scalars(
                select(OutboxJob.id)
                .where(OutboxJob.state == JobState.PENDING, OutboxJob.run_after <= utcnow())
                .order_by(OutboxJob.id)
                .limit(limit)
            )
        )


def _run_due_once() -> tuple[int, int]:
    """Run every due job once; returns (jobs run, of which failed)."""
    ran = failed = 0
    for job_id in due_job_ids():
        ran += 1
        try:
            run_outbox_job(job_id)
        except Exception:
            failed += 1  # recorded on the row by run_outbox_job; retried after backoff
    return ran, failed


def drain(app: Flask, max_rounds: int = 10) -> int:
    """Run every due pending outbox job now, in the calling thread; returns how many ran.

    Jobs staged by the jobs themselves run in the next round, up to `max_rounds`.
    A job that fails is recorded and left for its backoff; drain does not raise.
    Commit first: drain starts a fresh database session and refuses to drop unsaved
    changes (RuntimeError).
    """
    if db.registry.has():
        session = db()
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("drain() would discard unsaved changes: commit first")
    total = 0

    def rounds() -> None:
        nonlocal total
        for _ in range(max_rounds):
            ran, _failed = _run_due_once()
            total += ran
            if not ran:
                return

    if has_app_context():
        rounds()
    else:
        with app.app_context():
            rounds()
    return total


def _loop(app: Flask) -> None:
    clock = PeriodicClock()
    while not _stop.is_set():
        _wake.clear()
        busy = False
        try:
            with app.app_context():
                ran = 1
                while ran and not _stop.is_set():
                    ran, _failed = _run_due_once()
                busy = clock.run_next() is not None
        except Exception:
            log.exception("inline executor pass failed")
        if not busy:
            _wake.wait(1.0)


def start_inline_executor(app: Flask) -> bool:
    """Start the inline executor thread in this process (once); True if it started now."""
    global _thread
    with _lock:
        if running():
            return False
        set_process_app(app)
        _stop.clear()
        _thread = threading.Thread(target=_loop, args=(app,), name="barid-inline-jobs",
                                   daemon=True)
        _thread.start()
        log.info("inline job executor started")
        return True


def stop_inline_executor(timeout: float = 10.0) -> None:
    """Stop the inline thread after its current job (used by tests and shutdown)."""
    global _thread
    with _lock:
        thread = _thread
        if thread is None:
            return
        _stop.set()
        _wake.set()
        thread.join(timeout)
        _thread = None


def wait_idle(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until no pending job is due (for tests of the inline executor)."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            if not due_job_ids(limit=1):
                return True
            time.sleep(0.05)
    return False
