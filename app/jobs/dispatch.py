"""After commit, hand new outbox rows to the executor; the sweeper re-sends stale ones.

The session hooks watch `app.database.db`: every OutboxJob inserted by a flush is noted
on the session, handed to the executor only after the transaction commits, and forgotten
when it rolls back. So no job is queued inside an open transaction and a rolled-back
change queues nothing. If the process dies between the commit and the hand-over, or the
hand-over fails (Redis down), the row stays pending with no `enqueued_at`, and the
sweeper sends it later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import Flask
from rq import Queue, Retry
from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session, SessionTransaction

from app.database import db, get_engine, utcnow
from app.events import JobState, OutboxJob
from app.redisconn import get_redis

from . import inline
from .context import process_app
from .runner import DEFAULT_RETRY_INTERVALS, run_outbox_job

log = logging.getLogger("barid.jobs")

_PENDING_KEY = "barid_outbox_new"
_installed = False


class Staged(NamedTuple):
    """What the executor needs to know of an outbox row."""

    id: int
    queue: str
    run_after: datetime | None = None


def rq_job_id(job_id: int) -> str:
    """The rq id of an outbox job: fixed, so a re-sent job replaces its earlier copy."""
    return f"outbox-{job_id}"


def install_session_hooks() -> None:
    """Listen on the shared session (once per process)."""
    global _installed
    if _installed:
        return
    event.listen(db, "after_flush", _after_flush)
    event.listen(db, "after_commit", _after_commit)
    event.listen(db, "after_rollback", _after_rollback)
    _installed = True


# Staged rows are kept per savepoint (None: the outer transaction), so rolling back a
# savepoint forgets only what was flushed inside it, and releasing one hands its rows to
# the enclosing level. SQLAlchemy fires after_commit/after_rollback for savepoints too;
# get_nested_transaction() tells which level ended.


def _level(tx: SessionTransaction | None) -> SessionTransaction | None:
    while tx is not None and not tx.nested:
        tx = tx.parent
    return tx


def _after_flush(session: Session, _flush_context: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, OutboxJob)]
    if new:
        levels = session.info.setdefault(_PENDING_KEY, {})
        levels.setdefault(session.get_nested_transaction(), {}).update(
            {o.id: Staged(o.id, o.queue, o.run_after) for o in new}
        )


def _after_rollback(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        session.info.pop(_PENDING_KEY, None)
    else:
        session.info.get(_PENDING_KEY, {}).pop(savepoint, None)


def _after_commit(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    levels = session.info.get(_PENDING_KEY)
    if not levels:
        return
    if savepoint is not None:
        released = levels.pop(savepoint, None)
        if released:
            levels.setdefault(_level(savepoint.parent), {}).update(released)
        return
    session.info.pop(_PENDING_KEY, None)
    staged = sorted(job for level in levels.values() for job in level.values())
    if staged:
        try:
            dispatch(staged)
        except Exception:
            # The change is committed; the sweeper will send these jobs later.
            log.exception("could not hand outbox jobs %s to the executor",
                          [j.id for j in staged])


def executor_kind(app: Flask | None = None) -> str | None:
    """"rq" when Redis is configured, "inline" when this process runs the inline thread."""
    app = app or process_app()
    if app is not None and app.config.get("REDIS_URL"):
        return "rq"
    if inline.running():
        return "inline"
    return None


def dispatch(jobs: list[Staged], app: Flask | None = None) -> int:
    """Hand outbox jobs to the configured executor; returns how many went.

    Under rq each becomes rq job "outbox-<id>" on its queue with retries and backoff
    (scheduled for its `run_after` when that is in the future), and the rows get
    `enqueued_at`. Under inline the thread is woken. With no executor
    (tests without Redis) nothing happens: `drain()` runs the work.
    """
    app = app or process_app()
    kind = executor_kind(app)
    if kind == "inline":
        inline.wake()
        return 0
    if kind != "rq" or not jobs:
        return 0
    assert app is not None
    conn = get_redis(app.config["REDIS_URL"])
    assert conn is not None
    intervals = list(app.config.get("JOB_RETRY_INTERVALS", DEFAULT_RETRY_INTERVALS))
    timeout = app.config.get("JOB_TIMEOUT", 180)
    soon = utcnow() + timedelta(seconds=1)
    with conn.pipeline() as pipe:
        for job in jobs:
            queue = Queue(job.queue, connection=conn)
            options: dict[str, Any] = {
                "job_id": rq_job_id(job.id),
                "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
                "job_timeout": timeout,
                "description": f"outbox job {job.id}",
                "pipeline": pipe,
            }
            if job.run_after is not None and job.run_after > soon:
                queue.enqueue_at(job.run_after, run_outbox_job, job.id, **options)
            else:
                queue.enqueue(run_outbox_job, job.id, **options)
        pipe.execute()
    ids = [job.id for job in jobs]
    # Deliberately on a connection of its own, outside any session: this runs after the
    # request's commit (from the session's after_commit hook), where the session cannot
    # start new work, and the mark must not wait for or join anyone's transaction.
    with get_engine().begin() as conn_db:
        conn_db.execute(
            update(OutboxJob)
            .where(OutboxJob.id.in_(ids), OutboxJob.state == JobState.PENDING)
            .values(enqueued_at=utcnow())
        )
    return len(ids)


def stale_jobs(app: Flask | None = None) -> list[Staged]:
    """Pending jobs no executor took: never sent after a grace period, or sent long ago."""
    app = app or process_app()
    assert app is not None
    now = utcnow()
    grace = timedelta(seconds=app.config.get("OUTBOX_DISPATCH_GRACE", 5))
    stale = timedelta(seconds=app.config.get("OUTBOX_STALE_AFTER", 300))
    # Read on a connection of its own: the sweeper must see what other processes
    # committed, whatever the calling session has open.
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(OutboxJob.id, OutboxJob.queue, OutboxJob.run_after)
            .where(
                OutboxJob.state == JobState.PENDING,
                or_(
                    and_(OutboxJob.enqueued_at.is_(None), OutboxJob.created_at <= now - grace),
                    and_(
                        OutboxJob.enqueued_at <= now - stale,
                        OutboxJob.run_after <= now - stale,
                    ),
                ),
            )
            .order_by(OutboxJob.id)
            .limit(app.config.get("OUTBOX_SWEEP_BATCH", 500))
        ).all()
    return [Staged(r.id, r.queue, r.run_after) for r in rows]


def sweep() -> list[int]:
    """Send again every stale pending outbox job; returns their ids.

    Covers a crash between commit and hand-over and a worker killed mid-job. A job
    delivered twice is harmless: run_outbox_job claims its row and skips done work.
    """
    jobs = stale_jobs()
    if jobs:
        log.warning("sweeper re-sending %s outbox jobs", len(jobs),
                    extra={"barid_job_ids": [j.id for j in jobs]})
        dispatch(jobs)
    return [j.id for j in jobs]


dispatch_pending = sweep


def queue_depths(app: Flask | None = None) -> dict[str, Any]:
    """Backlog for /metrics: outbox rows by state, and each rq queue's length under rq.

    Returns {"outbox_pending": int, "outbox_failed": int, "queues": {name: length}}.
    """
    app = app or process_app()
    assert app is not None
    # Its own connection: /metrics reads committed state and opens no session work.
    with get_engine().connect() as conn:
        counts = dict(
            conn.execute(
                select(OutboxJob.state, func.count())
                .where(OutboxJob.state.in_([JobState.PENDING, JobState.FAILED]))
                .group_by(OutboxJob.state)
            ).all()
        )
    queues: dict[str, int] = {}
    if app.config.get("REDIS_URL"):
        conn_r = get_redis(app.config["REDIS_URL"])
        assert conn_r is not None
        for name in app.config["RQ_QUEUES"]:
            queues[name] = Queue(name, connection=conn_r).count
    return {
        "outbox_pending": int(counts.get(JobState.PENDING, 0)),
        "outbox_failed": int(counts.get(JobState.FAILED, 0)),
        "queues": queues,
    }
