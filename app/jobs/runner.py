"""The one job body both executors run: `run_outbox_job(job_id)`.

The job claims its outbox row and does its work in one transaction. The claim is a
conditional UPDATE (pending -> done) rather than a read followed by a write: on
PostgreSQL it takes the row lock, so a second delivery of the same job waits for the
first and then finds nothing to claim; on SQLite (the embedded default) it takes the
database write lock, which a SELECT ... FOR UPDATE would not. Because the claim and the
task's own database effects commit together, a job delivered twice has its effect once,
and a job whose worker dies mid-way has none, so it can simply run again.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from app import metrics
from app.database import db, get_engine, unit_of_work, utcnow
from app.events import DomainEvent, JobState, OutboxJob
from app.logs import reset_request_id, set_request_id

from .context import job_context

log = logging.getLogger("barid.jobs")

DEFAULT_RETRY_INTERVALS = (10, 30, 120, 600, 1800)


def retry_intervals() -> list[int]:
    """Seconds to wait before each retry; a job is tried len(intervals) + 1 times."""
    return list(current_app.config.get("JOB_RETRY_INTERVALS", DEFAULT_RETRY_INTERVALS))


def max_attempts() -> int:
    return len(retry_intervals()) + 1


def import_task(path: str) -> Callable[..., Any]:
    """The function named by a task path "package.module:function"."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def run_outbox_job(job_id: int) -> bool:
    """Run outbox job `job_id` once: its subscriber with the event, or func(**args).

    The runner owns the job's unit of work: the claim (the row marked done), the task's
    effects and the commit are one transaction. Returns False without doing anything
    when the row is missing, already done, or failed for good. When the task raises,
    the unit of work rolls its effects and the claim back; then the row's attempts,
    last_error and next run time are recorded in a unit of work of their own (state
    becomes "failed" after the last attempt), and the exception is raised again so the
    executor retries.
    """
    started = time.perf_counter()
    task: str | None = None
    with job_context():
        try:
            with unit_of_work():
                job = db.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id == job_id, OutboxJob.state == JobState.PENDING)
                    .values(
                        state=JobState.DONE,
                        finished_at=utcnow(),
                        attempts=OutboxJob.attempts + 1,
                        last_error=None,
                    )
                    .returning(OutboxJob.task, OutboxJob.args, OutboxJob.event_id,
                               OutboxJob.request_id)
                ).one_or_none()
                if job is None:
                    # Nothing was claimed, so the commit changes nothing: a second
                    # delivery, counted so wasted executions show on /metrics.
                    metrics.observe_job(_task_of(job_id), "skipped", 0.0)
                    return False
                task = job.task
                _run_task(job_id, job.task, job.args, job.event_id, job.request_id)
        except Exception as exc:
            _record_failure(job_id, exc)
            metrics.observe_job(task or _task_of(job_id), "failed",
                                time.perf_counter() - started)
            raise
        metrics.observe_job(task or "unknown", "done", time.perf_counter() - started)
        log.info("job %s done", job_id, extra={"barid_job_id": job_id})
        return True


def _task_of(job_id: int) -> str:
    """The task of outbox job `job_id` for its metrics label ("unknown" when gone)."""
    try:
        with get_engine().connect() as conn:
            task = conn.execute(select(OutboxJob.task).where(OutboxJob.id == job_id)).scalar()
    except Exception:
        log.exception("could not read the task of job %s", job_id)
        return "unknown"
    return task or "unknown"


def _run_task(job_id: int, task: str, args: dict[str, Any] | None, event_id: str | None,
              request_id: str | None) -> None:
    """Call the job's function inside the runner's unit of work, under its request id."""
    token = set_request_id(request_id)
    try:
        func = import_task(task)
        log.info("job %s started: %s", job_id, task,
                 extra={"barid_job_id": job_id, "barid_task": task})
        if event_id is not None:
            event = db.get(DomainEvent, event_id)
            if event is None:
                raise LookupError(f"domain event {event_id} of job {job_id} is missing")
            func(event)
        else:
            func(**(args or {}))
    finally:
        reset_request_id(token)


def _record_failure(job_id: int, exc: BaseException) -> None:
    """Count a failed attempt in its own unit of work, after the task's was rolled back."""
    try:
        with unit_of_work():
            job = db.execute(
                select(OutboxJob).where(OutboxJob.id == job_id).with_for_update()
            ).scalar_one_or_none()
            if job is None or job.state != JobState.PENDING:
                return
            intervals = retry_intervals()
            job.attempts += 1
            job.last_error = "".join(traceback.format_exception(exc))[-4000:]
            if job.attempts >= len(intervals) + 1:
                job.state = JobState.FAILED
                job.finished_at = utcnow()
                log.error("job %s failed for good after %s attempts: %s", job_id,
                          job.attempts, exc, extra={"barid_job_id": job_id})
            else:
                wait = intervals[min(job.attempts - 1, len(intervals) - 1)]
                job.run_after = utcnow() + timedelta(seconds=wait)
                log.warning("job %s attempt %s failed, next try in %ss: %s", job_id,
                            job.attempts, wait, exc, extra={"barid_job_id": job_id})
    except Exception:
        log.exception("could not record the failure of job %s", job_id)
