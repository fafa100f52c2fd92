"""After commit, hand new outbox rows to the executor; the sweeper re-sends lost ones.

The session hooks watch `app.database.db`: every OutboxJob inserted by a flush is noted
on the session, handed to the executor only after the transaction commits, and forgotten
when it rolls back. So no job is queued inside an open transaction and a rolled-back
change queues nothing. If the process dies between the commit and the hand-over, or the
hand-over fails (Redis down), the row stays pending with no `enqueued_at`, and the
sweeper sends it later. While Redis is down the hand-over is not even tried (the circuit
breaker of app.redisconn), so a request never waits on it.

Each row is rq job "outbox-<id>" (`rq_job_id`). The sweeper re-sends a pending row only
when rq has truly lost that job: it is in no queue, no scheduled or deferred registry,
and not running (a started job whose worker stopped sending heartbeats is lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import redis
from flask import Flask
from rq import Queue, Retry
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session, SessionTransaction

from app.database import db, get_engine, utcnow
from app.events import PENDING_OUTBOX_KEY as _PENDING_KEY
from app.events import JobState, OutboxJob, Staged, is_urgent
from app.redisconn import UNAVAILABLE, breaker, get_redis

from . import inline
from .context import process_app
from .runner import DEFAULT_RETRY_INTERVALS, run_outbox_job

log = logging.getLogger("barid.jobs")

_installed = False
# The rq callable per queue, when a queue's jobs are better run some other way than one
# `run_outbox_job` each (the webhooks queue drains an endpoint's due attempts in one
# work-horse). It must take the outbox id and run that row, as run_outbox_job does.
_queue_runners: dict[str, Callable[[int], Any]] = {}


def register_queue_runner(queue: str, func: Callable[[int], Any]) -> None:
    """Make rq run the outbox jobs of `queue` with `func(job_id)` (an importable,
    module-level function) instead of run_outbox_job."""
    _queue_runners[queue] = func


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
            {o.id: Staged(o.id, o.queue, o.run_after, is_urgent(o.task)) for o in new}
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
        except Exception:  # a bug, not an outage: dispatch() absorbs Redis being down
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

    Redis being down raises nothing: the rows stay pending for the sweeper, the outage
    is logged once, and Redis is not asked again for a few seconds (app.redisconn.Breaker).
    """
    app = app or process_app()
    kind = executor_kind(app)
    if kind == "inline":
        inline.wake()
        return 0
    if kind != "rq" or not jobs:
        return 0
    assert app is not None
    circuit = breaker(app.config["REDIS_URL"])
    if not circuit.allow():
        return 0
    try:
        sent = send_to_rq(jobs, app)
    except UNAVAILABLE as exc:
        circuit.failed(exc, "new jobs wait in the outbox and the sweeper sends them "
                            "when it is back")
        return 0
    circuit.succeeded()
    return sent


def send_to_rq(jobs: list[Staged], app: Flask) -> int:
    """Enqueue `jobs` on rq and stamp their rows' `enqueued_at`; raises redis errors."""
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
            runner = _queue_runners.get(job.queue, run_outbox_job)
            if job.run_after is not None and job.run_after > soon:
                queue.enqueue_at(job.run_after, runner, job.id, **options)
            else:
                queue.enqueue(runner, job.id, at_front=job.urgent, **options)
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


def candidate_jobs(app: Flask, after_id: int = 0, limit: int = 500) -> list[Staged]:
    """Pending rows that may be lost, by id after `after_id`: due, and either never
    handed over after a grace period or handed over more than OUTBOX_STALE_AFTER ago.

    Under rq each one is then looked up in rq (`lost_jobs`) before it is sent again.
    """
    now = utcnow()
    grace = timedelta(seconds=app.config.get("OUTBOX_DISPATCH_GRACE", 5))
    stale = timedelta(seconds=app.config.get("OUTBOX_STALE_AFTER", 60))
    # Read on a connection of its own: the sweeper must see what other processes
    # committed, whatever the calling session has open.
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(OutboxJob.id, OutboxJob.queue, OutboxJob.run_after, OutboxJob.task)
            .where(
                OutboxJob.id > after_id,
                OutboxJob.state == JobState.PENDING,
                OutboxJob.run_after <= now - grace,
                or_(
                    and_(OutboxJob.enqueued_at.is_(None), OutboxJob.created_at <= now - grace),
                    OutboxJob.enqueued_at <= now - stale,
                ),
            )
            .order_by(OutboxJob.id)
            .limit(limit)
        ).all()
    return [Staged(r.id, r.queue, r.run_after, is_urgent(r.task)) for r in rows]



def rq_waiting_ids(conn: redis.Redis, queues: Iterable[str]) -> set[str]:
    """The rq ids of every job rq still holds for later or is running now, read in one
    MULTI/EXEC so a job moving between queue, registry and worker is seen exactly where
    it is: queued (also the intermediate list a worker pops into), scheduled, deferred,
    or started with a heartbeat that has not expired. A started job whose worker died
    keeps its entry until the heartbeat (the job's timeout, at most ~90 s ahead) runs
    out; after that it counts as lost."""
    queues = list(queues)
    with conn.pipeline(transaction=True) as pipe:
        for name in queues:
            queue = Queue(name, connection=conn)
            pipe.lrange(queue.key, 0, -1)
            pipe.lrange(queue.intermediate_queue_key, 0, -1)
            pipe.zrange(ScheduledJobRegistry(queue=queue).key, 0, -1)
            pipe.zrange(DeferredJobRegistry(queue=queue).key, 0, -1)
            pipe.zrangebyscore(StartedJobRegistry(queue=queue).key, time.time(), "+inf")
        replies = pipe.execute()
    waiting: set[str] = set()
    for i, members in enumerate(replies):
        for raw in members:
            entry = raw.decode() if isinstance(raw, bytes) else str(raw)
            if i % 5 == 4:  # started entries are "<job id>:<execution id>"
                entry = entry.rsplit(":", 1)[0]
            waiting.add(entry)
    return waiting


def _still_pending(ids: list[int]) -> list[int]:
    with get_engine().connect() as conn:
        return list(conn.scalars(
            select(OutboxJob.id).where(OutboxJob.id.in_(ids),
                                       OutboxJob.state == JobState.PENDING)))


def sweep(app: Flask | None = None) -> list[int]:
    """Send again every pending outbox job its executor has lost; returns their ids.

    Covers a crash between commit and hand-over, hand-overs skipped while Redis was down,
    a worker killed mid-job, and rq losing a job. Under rq a row is sent again only when
    its rq job is in no queue or registry that will still run it (`rq_waiting_ids`), so a
    backlog waiting in its queue is never sent twice; rows are read in batches until
    none are left. A job delivered twice anyway is harmless: run_outbox_job claims its
    row and skips done work. Changes only `enqueued_at` of the rows it sends; the number
    sent is logged. Raises redis errors when Redis is down (the caller tries later).
    """
    app = app or process_app()
    assert app is not None
    batch = int(app.config.get("OUTBOX_SWEEP_BATCH", 500))
    kind = executor_kind(app)
    if kind != "rq":
        # The inline thread reads due rows from the outbox itself: nothing can be lost.
        jobs = candidate_jobs(app, limit=batch)
        if jobs:
            dispatch(jobs, app)
        return [j.id for j in jobs]
    conn = get_redis(app.config["REDIS_URL"])
    assert conn is not None
    waiting: set[str] | None = None
    sent: list[int] = []
    checked = 0
    after = 0
    while True:
        candidates = candidate_jobs(app, after_id=after, limit=batch)
        if not candidates:
            break
        after = candidates[-1].id
        checked += len(candidates)
        if waiting is None:
            # Read after the first candidates: a row pending in the database then and
            # absent from rq now was lost, or has finished meanwhile (checked below).
            waiting = rq_waiting_ids(conn, app.config["RQ_QUEUES"])
        lost = [j for j in candidates if rq_job_id(j.id) not in waiting]
        if lost:
            alive = set(_still_pending([j.id for j in lost]))
            lost = [j for j in lost if j.id in alive]
        if lost:
            _forget_failed(conn, lost)
            send_to_rq(lost, app)
            sent.extend(j.id for j in lost)
        if len(candidates) < batch:
            break
    if sent:
        log.warning("sweeper re-sent %s lost outbox jobs (%s pending rows checked)",
                    len(sent), checked, extra={"barid_job_ids": sent[:1000],
                                               "barid_resent": len(sent)})
    elif checked:
        log.info("sweeper checked %s pending outbox rows: none lost", checked,
                 extra={"barid_resent": 0})
    return sent


def _forget_failed(conn: redis.Redis, jobs: list[Staged]) -> None:
    """Take lost jobs out of rq's failed registries, so the copy sent again is the only
    record rq keeps of them."""
    with conn.pipeline() as pipe:
        for job in jobs:
            registry = FailedJobRegistry(queue=Queue(job.queue, connection=conn))
            pipe.zrem(registry.key, rq_job_id(job.id))
        pipe.execute()


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
