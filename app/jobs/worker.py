"""`barid worker`: an rq worker with the scheduler and the beat, that rides out outages.

rq's Worker quits when Redis goes away (its loop breaks on a connection error, and
registering a worker needs Redis), so `barid worker` runs it in a loop of its own: when
Redis cannot be reached it logs once, waits with capped exponential backoff
(1, 2, 4, 8, 10 s), builds a new rq worker and goes on. SIGTERM or SIGINT stops it
promptly at any point: during a job through rq's warm shutdown, during a wait at once.

The beat thread (periodic jobs and the outbox sweeper) runs for the life of the
process, across those rebuilds, and waits for Redis the same way.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import click
import redis
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import Queue, SimpleWorker, Worker
from rq.worker import BaseWorker
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import configure_mappers

from app.redisconn import UNAVAILABLE, get_redis, new_client

from .beat import beat_once
from .context import set_process_app
from .sweeper import run_sweeper

log = logging.getLogger("barid.jobs")

# Seconds between attempts to reach Redis again: doubled after each failure up to the cap.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 10.0
# A worker that ran this long before it lost Redis starts its backoff afresh.
BACKOFF_RESET_AFTER = 60.0


# Held by the beat thread while it works and by the worker while it forks (a work-horse
# per job, the scheduler process): a child forked while the beat holds a lock of its own
# (the database pool's, libpq's, a logging handler's) would wait for it forever.
FORK_LOCK = threading.Lock()


class _ForkSafe:
    """Forks only while the beat thread is between ticks (see FORK_LOCK)."""

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        with FORK_LOCK:
            super().fork_work_horse(job, queue)  # type: ignore[misc]

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        with FORK_LOCK:
            super()._start_scheduler(*args, **kwargs)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        with FORK_LOCK:  # may start the scheduler process again
            super().run_maintenance_tasks()  # type: ignore[misc]


class ForkingWorker(_ForkSafe, Worker):
    """rq's Worker (a forked work-horse per job) that forks only outside beat ticks."""


class InProcessWorker(_ForkSafe, SimpleWorker):
    """rq's SimpleWorker (jobs in the worker process; the scheduler is still forked)."""


class Beat(threading.Thread):
    """The beat thread of `barid worker`: each second, enqueue the periodic jobs this
    process wins and run the outbox sweeper if it is this process's turn (its own Redis
    client, so it shares no socket or lock with the worker across rq's fork).

    An outage of Redis or the database is logged when it starts and when it ends."""

    def __init__(self, app: Flask, redis_url: str, queues: list[str]) -> None:
        super().__init__(name="barid-beat", daemon=True)
        self.app = app
        self.queues = queues
        self.connection = new_client(redis_url)
        self.stopping = threading.Event()
        self.trouble: str | None = None

    def tick(self) -> None:
        beat_once(self.app, self.connection, self.queues)
        run_sweeper(self.app, self.connection)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with FORK_LOCK:
                    self.tick()
            except UNAVAILABLE as exc:
                self._trouble("redis", "beat: Redis unreachable (%s); periodic jobs and the "
                              "outbox sweeper wait for it", exc)
            except DBAPIError as exc:
                self._trouble("database", "beat: database unreachable (%s); the outbox "
                              "sweeper waits for it", type(exc.orig).__name__)
            except Exception:
                log.exception("periodic beat failed")
            else:
                if self.trouble is not None:
                    log.warning("beat: %s reachable again", self.trouble)
                    self.trouble = None
            self.stopping.wait(1.0)

    def _trouble(self, what: str, message: str, *args: Any) -> None:
        if self.trouble != what:
            log.warning(message, *args)
            self.trouble = what

    def stop(self) -> None:
        self.stopping.set()


class _Stop(Exception):
    """Raised by the worker's own signal handler outside rq's loop: stop now."""


class _Signals:
    """SIGTERM/SIGINT while rq's loop is not running (starting up, waiting for Redis)."""

    def __init__(self) -> None:
        self.received = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = True
        raise _Stop(signal.Signals(signum).name)


def _wait(seconds: float) -> None:
    """Sleep `seconds` in short steps (a signal raises _Stop out of it at once)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.2))


def run_worker(connection: redis.Redis, queue_names: list[str], *, no_fork: bool = False,
               burst: bool = False, name: str | None = None,
               signals: _Signals | None = None) -> int:
    """Run rq workers on `queue_names` until stopped; returns the exit status.

    When Redis is unreachable (at start or later) it logs, waits with capped
    exponential backoff and starts a new rq worker; in burst mode it gives up instead
    (status 1). A signal (SIGTERM/SIGINT) ends it with status 0.
    """
    signals = signals or _Signals()
    signals.install()
    worker_class: type[BaseWorker] = InProcessWorker if no_fork else ForkingWorker
    backoff = BACKOFF_FIRST
    previous: BaseWorker | None = None
    outage = False
    while True:
        started = time.monotonic()
        worker: BaseWorker | None = None
        problem: str
        try:
            connection.ping()
            if previous is not None:
                # The worker that lost Redis could not record its end; a named worker
                # could not start again under the same name while that record stands.
                with contextlib.suppress(Exception):
                    previous.register_death()
            if outage:
                log.warning("barid worker: Redis reachable again; starting a new rq worker")
                outage = False
            worker = worker_class([Queue(n, connection=connection) for n in queue_names],
                                  connection=connection, name=name)
            previous = worker
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            problem = "the rq worker loop ended"
        except _Stop:
            return 0
        except UNAVAILABLE as exc:
            problem = f"Redis unreachable ({type(exc).__name__}: {exc})"
        finally:
            # rq's handlers point at a worker that is gone; ours stop the waits below.
            signals.install()
        if signals.received or burst or (
                worker is not None and worker._shutdown_requested_date is not None):
            if burst and worker is None:
                log.error("barid worker: %s", problem)
                return 1
            return 0
        if time.monotonic() - started > BACKOFF_RESET_AFTER:
            backoff = BACKOFF_FIRST
        if not outage:
            log.warning("barid worker: %s; trying again with backoff up to %ss",
                        problem, BACKOFF_CAP)
            outage = True
        try:
            _wait(backoff)
        except _Stop:
            return 0
        backoff = min(backoff * 2, BACKOFF_CAP)


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
    and delayed jobs, and the beat that enqueues periodic jobs and runs the outbox
    sweeper.

    By default each job runs in a forked work-horse (rq's Worker), so a job that
    crashes, hangs past its timeout or leaks memory does not take the worker down.
    When Redis is down the worker waits for it (backoff up to 10 s) instead of exiting;
    with --burst it exits with status 1.
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
    if burst:
        try:
            connection.ping()
        except UNAVAILABLE as exc:
            click.echo(f"barid worker: cannot reach Redis at {url}: {exc}", err=True)
            sys.exit(1)
    # Configure every mapper once, here, before rq forks a work-horse per job: otherwise
    # each horse configures them again (about 250 of the ~295 ms a trivial job took).
    configure_mappers()
    beat = None
    if not burst:
        beat = Beat(app, url, names)
        beat.start()
    try:
        status = run_worker(connection, names, no_fork=no_fork, burst=burst, name=name)
    finally:
        if beat is not None:
            beat.stop()
    if status:
        sys.exit(status)
