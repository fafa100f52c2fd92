"""`barid worker`: an rq worker with the scheduler, on the platform's queues."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from rq import Queue, SimpleWorker, Worker

from app.redisconn import get_redis

from .beat import Beat
from .context import set_process_app


@click.command("worker")
@click.option("--queues", "queues_opt", default="",
              help="Comma-separated queues to serve (default: every platform queue).")
@click.option("--burst", is_flag=True, help="Run what is queued now, then exit.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@click.option("--no-fork", "no_fork", is_flag=True,
              help="Run jobs in the worker process itself: about three times the "
                   "throughput, but a job that crashes or leaks memory takes the worker "
                   "with it.")
@with_appcontext
def worker_command(queues_opt: str, burst: bool, name: str | None, no_fork: bool) -> None:
    """Run background jobs from Redis (needs REDIS_URL), with rq's scheduler for retries
    and delayed jobs, and the beat that enqueues periodic jobs.

    By default each job runs in a forked work-horse (rq's Worker), so a job that
    crashes, hangs past its timeout or leaks memory does not take the worker down.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config.get("REDIS_URL")
    if not url:
        click.echo(
            "barid worker: REDIS_URL is not set. Without Redis, jobs run on the inline "
            "executor inside `barid run`; set REDIS_URL=redis://host:6379/0 to run workers.",
            err=True,
        )
        sys.exit(2)
    known = list(app.config["RQ_QUEUES"])
    names = [q.strip() for q in queues_opt.split(",") if q.strip()] or known
    unknown = [q for q in names if q not in known]
    if unknown:
        click.echo(f"barid worker: unknown queue(s) {', '.join(unknown)}; "
                   f"the platform's queues are {', '.join(known)}", err=True)
        sys.exit(2)
    set_process_app(app)
    connection = get_redis(url)
    assert connection is not None
    try:
        connection.ping()
    except Exception as exc:
        click.echo(f"barid worker: cannot reach Redis at {url}: {exc}", err=True)
        sys.exit(1)
    worker_class = SimpleWorker if no_fork else Worker
    worker = worker_class([Queue(n, connection=connection) for n in names],
                          connection=connection, name=name)
    beat = None
    if not burst:
        beat = Beat(app, url, names)
        beat.start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        if beat is not None:
            beat.stop()
