"""Periodic jobs: `@periodic(every_seconds=..., queue=...)` for any domain.

A periodic job is a plain function of no arguments, run in a unit of work that the
runner (`run_periodic`) opens, and is safe to run twice or late.

Under rq each `barid worker` runs a small beat thread (app.jobs.worker.Beat). Every
second it tries, for each periodic job, `SET barid:periodic:<name> NX EX <every_seconds>`
on Redis; the one worker that wins enqueues the job, so a job runs once per interval
however many workers run. The outbox sweeper is not such a job: the beat runs it itself
(app.jobs.sweeper), so it never waits in a queue behind the backlog.
(rq's own CronScheduler has no such lock: each worker would enqueue every job.)
Under the inline executor its thread runs them on their interval.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask
from rq import Queue

from app import metrics
from app.database import unit_of_work
from app.events import task_path

from .context import job_context
from .runner import import_task

log = logging.getLogger("barid.jobs")

F = TypeVar("F", bound=Callable[[], Any])


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int
    queue: str


_registry: dict[str, PeriodicJob] = {}


def periodic(every_seconds: int, *, queue: str = "low", name: str | None = None
             ) -> Callable[[F], F]:
    """Register a function of no arguments to run every `every_seconds` seconds."""
    if every_seconds < 1:
        raise ValueError("every_seconds must be at least 1")

    def register(func: F) -> F:
        path = task_path(func)
        key = name or path
        _registry[key] = PeriodicJob(key, path, int(every_seconds), queue)
        return func

    return register


def periodic_jobs() -> list[PeriodicJob]:
    return list(_registry.values())


def run_periodic(task: str) -> None:
    """Run periodic task `task` ("module:function") in an app context, once.

    The task runs in one unit of work: committed when it returns, rolled back when it
    raises. An exception is logged and raised (rq records it); the next tick runs it
    again.
    """
    started = time.perf_counter()
    with job_context():
        try:
            with unit_of_work():
                import_task(task)()
        except Exception:
            log.exception("periodic job %s failed", task)
            metrics.observe_job(task, "failed", time.perf_counter() - started)
            raise
        metrics.observe_job(task, "done", time.perf_counter() - started)


class PeriodicClock:
    """Runs due periodic jobs in the calling thread (inline executor), one per call, so
    the outbox is looked at between them."""

    def __init__(self) -> None:
        self.next_run: dict[str, float] = {}

    def run_next(self) -> str | None:
        """Run the most overdue periodic job, if one is due; returns its name."""
        now = time.monotonic()
        due = [j for j in periodic_jobs() if self.next_run.get(j.name, 0.0) <= now]
        if not due:
            return None
        job = min(due, key=lambda j: self.next_run.get(j.name, 0.0))
        self.next_run[job.name] = now + job.every_seconds
        # A failure is logged by run_periodic; the job runs again next interval.
        with contextlib.suppress(Exception):
            run_periodic(job.task)
        return job.name


def beat_once(app: Flask, connection: Any, queues: list[str] | None = None) -> list[str]:
    """Enqueue each periodic job whose interval lock this process wins; returns names.

    Only jobs on `queues` (default: every platform queue) are considered.
    """
    queues = queues or list(app.config["RQ_QUEUES"])
    enqueued = []
    for job in periodic_jobs():
        if job.queue not in queues:
            continue
        key = f"barid:periodic:{job.name}"
        if not connection.set(key, str(time.time()), nx=True, ex=job.every_seconds):
            continue
        Queue(job.queue, connection=connection).enqueue(
            run_periodic, job.task,
            description=f"periodic {job.name}",
            # A late copy of a periodic job is useless once the next one is due.
            ttl=max(job.every_seconds * 2, 60),
            result_ttl=job.every_seconds * 2,
        )
        enqueued.append(job.name)
    return enqueued
