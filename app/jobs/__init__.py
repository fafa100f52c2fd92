"""Background jobs: the outbox dispatcher, two executors, retries, sweeper, periodic jobs.

- After a commit that staged outbox rows (app.events.publish / enqueue_after_commit),
  `dispatch` hands them to the executor: rq when REDIS_URL is set (`barid worker`),
  else the inline thread of the web process when it runs (`start_inline_executor`).
  With neither (tests without Redis) nothing happens until `drain(app)`.
- `run_outbox_job(job_id)` is the one job body: it claims the row and does the task in
  one transaction, so a job delivered twice has its effect once.
- Failures are retried with backoff (JOB_RETRY_INTERVALS); the sweeper re-sends rows
  that were never handed over or that rq lost (a worker died): it runs in the beat of
  every `barid worker`, one at a time per deployment, never as a queued job.
- Redis down: commits still stage jobs (they wait in the outbox), `barid worker` waits
  for Redis with backoff, and the sweeper sends the backlog when Redis is back.
- `@periodic(every_seconds=..., queue=...)` registers recurring jobs for any domain.
"""

from __future__ import annotations

from flask import Flask

from .beat import periodic, periodic_jobs, run_periodic
from .context import process_app, set_process_app
from .dispatch import (
    dispatch,
    dispatch_pending,
    install_session_hooks,
    queue_depths,
    register_queue_runner,
    rq_job_id,
    sweep,
)
from .inline import drain, start_inline_executor, stop_inline_executor
from .runner import DEFAULT_RETRY_INTERVALS, import_task, run_outbox_job
from .sweeper import run_sweeper, sweep_outbox
from .worker import run_worker, worker_command

__all__ = [
    "dispatch",
    "dispatch_pending",
    "drain",
    "import_task",
    "init_app",
    "periodic",
    "periodic_jobs",
    "register_queue_runner",
    "queue_depths",
    "rq_job_id",
    "run_outbox_job",
    "run_periodic",
    "run_sweeper",
    "run_worker",
    "start_inline_executor",
    "stop_inline_executor",
    "sweep",
    "sweep_outbox",
]


def init_app(app: Flask) -> None:
    """Install the after-commit dispatcher, job settings and the `barid worker` command."""
    app.config.setdefault("JOB_RETRY_INTERVALS", list(DEFAULT_RETRY_INTERVALS))
    app.config.setdefault("JOB_TIMEOUT", 180)
    # A row never handed over is re-sent after this many seconds (the commit that staged
    # it normally hands it over within milliseconds).
    app.config.setdefault("OUTBOX_DISPATCH_GRACE", 5)
    # A handed-over row still pending after this many seconds is looked up in rq, and
    # sent again only if rq no longer holds it (see app.jobs.dispatch.sweep).
    app.config.setdefault("OUTBOX_STALE_AFTER", 60)
    # Seconds between sweeps (the beat of whichever `barid worker` wins the interval).
    app.config.setdefault("OUTBOX_SWEEP_EVERY", 10)
    install_session_hooks()
    if process_app() is None:
        set_process_app(app)
    app.cli.add_command(worker_command)
