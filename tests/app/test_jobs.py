"""The outbox, both executors, retries, the sweeper and periodic jobs, on real services.

Subscribers here write to a small table of their own (`job_effects`, in a separate
MetaData so the platform's schema and migrations never see it): one row per effect, so
"exactly once" is a row count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text

from app.database import db, get_engine
from app.events import (
    DomainEvent,
    JobState,
    OutboxJob,
    enqueue_after_commit,
    publish,
    publish_many,
    subscribe,
)
from app.logs import JsonFormatter, current_request_id

# Outbox jobs are handed over after a real commit, to rq workers and the inline thread,
# which read them through connections of their own.
pytestmark = pytest.mark.commits

ROOT = Path(__file__).resolve().parents[2]

effects_metadata = MetaData()
job_effects = Table(
    "job_effects",
    effects_metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("ref", String(64)),
    Column("request_id", String(64)),
    Column("pid", Integer),
)

log = logging.getLogger("barid.jobs.test")


def _record(kind: str, ref: str | None) -> None:
    db.execute(
        job_effects.insert().values(
            kind=kind, ref=ref, request_id=current_request_id(), pid=os.getpid()
        )
    )


@subscribe("test.jobs.parcel_weighed")
def record_weighing(event: DomainEvent) -> None:
    log.info("recording weighing of %s", event.payload["parcel"])
    _record("weighed", event.payload["parcel"])


def _tries(key: str) -> int:
    from app.redisconn import get_redis

    redis = get_redis()
    if redis is None:  # inline executor: count tries in the database, outside the job
        with get_engine().begin() as conn:
            conn.execute(job_effects.insert().values(kind="try", ref=key))
            return conn.execute(
                select(func.count()).where(job_effects.c.kind == "try", job_effects.c.ref == key)
            ).scalar_one()
    return int(redis.incr(f"test:tries:{key}"))


@subscribe("test.jobs.customs_flaky")
def assess_flaky(event: DomainEvent) -> None:
    """Fails on its first two tries (a customs service that is briefly down)."""
    _record("assessed", event.payload["parcel"])  # rolled back on failure
    if _tries(event.id) <= 2:
        raise ConnectionError("customs service unavailable")


@subscribe("test.jobs.counter_blocked")
def blocking_handover(event: DomainEvent) -> None:
    """Announces its pid, then waits for a file before recording its effect."""
    _record("handover", event.payload["parcel"])
    Path(event.payload["started"]).write_text(str(os.getpid()))
    release = Path(event.payload["release"])
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@subscribe("test.jobs.parcel_arrived")
def announce_arrival(event: DomainEvent) -> None:
    """A subscriber that publishes a follow-up event (chained jobs)."""
    _record("arrived", event.payload["parcel"])
    publish("test.jobs.parcel_weighed", {"parcel": event.payload["parcel"]})


@subscribe("test.jobs.payment_taken", only_if={"reference_kind": "shop_order"})
def mark_order_paid(event: DomainEvent) -> None:
    """Has work only for payments of orders (only_if says so, so others cost no job)."""
    _record("order_paid", event.payload["reference_id"])


@subscribe("test.jobs.payment_taken")
def log_any_payment(event: DomainEvent) -> None:
    _record("payment_logged", event.payload["reference_id"])


@subscribe("test.jobs.order_placed", urgent=True)
def confirm_order_now(event: DomainEvent) -> None:
    """Someone waits for this one: it goes to the front of its queue."""
    _record("confirmed", event.payload["order"])


def print_receipt(receipt: str) -> None:
    _record("receipt", receipt)


def run_sweeper_periodic() -> None:
    _record("periodic", None)
    db.commit()


def count(kind: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(
            select(func.count()).where(job_effects.c.kind == kind)
        ).scalar_one()


def outbox_rows() -> list[OutboxJob]:
    """This module's own jobs (domains also subscribe to every event, e.g. for webhooks)."""
    db.remove()
    mine = OutboxJob.task.startswith(__name__ + ":")
    return list(db.scalars(select(OutboxJob).where(mine).order_by(OutboxJob.id)))


@pytest.fixture(scope="module")
def effects_table(app):
    effects_metadata.create_all(get_engine())
    yield job_effects
    effects_metadata.drop_all(get_engine())


@pytest.fixture()
def jobs_app(app, effects_table):
    """The shared app with short retry intervals; config and job_effects restored after."""
    saved = dict(app.config)
    app.config.update(JOB_RETRY_INTERVALS=[0, 0, 0])
    with app.app_context():
        yield app
    app.config.clear()
    app.config.update(saved)
    with get_engine().begin() as conn:
        conn.execute(text("TRUNCATE job_effects RESTART IDENTITY"))


@pytest.fixture()
def rq_app(jobs_app, redis_url):
    """The app with REDIS_URL set (the rq executor); Redis db emptied around the test."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    jobs_app.config["REDIS_URL"] = redis_url
    yield jobs_app
    conn.flushdb()


@pytest.fixture()
def only_test_periodics(monkeypatch):
    """Hide the domains' periodic jobs so only the test's own run."""
    import app.jobs.beat as periodic_module

    monkeypatch.setattr(periodic_module, "_registry", {})


def rq_conn():
    from app.redisconn import get_redis

    return get_redis()


def work_burst(with_scheduler: bool = False) -> None:
    from rq import Queue, SimpleWorker

    conn = rq_conn()
    queues = [Queue(name, connection=conn) for name in ["default", "webhooks", "low"]]
    SimpleWorker(queues, connection=conn).work(burst=True, with_scheduler=with_scheduler)


# --- rq executor -------------------------------------------------------------------------


def test_published_event_runs_its_subscriber_once_through_rq(rq_app):
    from rq import Queue
    from rq.job import Job

    from app.jobs import dispatch, rq_job_id, run_outbox_job
    from app.jobs.dispatch import Staged

    publish("test.jobs.parcel_weighed", {"parcel": "RR123456785IQ"})
    db.flush()
    queue = Queue("default", connection=rq_conn())
    assert queue.count == 0, "nothing may be queued while the transaction is open"
    db.commit()

    [row] = outbox_rows()
    assert row.enqueued_at is not None
    assert queue.job_ids == [rq_job_id(row.id)]
    assert count("weighed") == 0

    work_burst()
    assert count("weighed") == 1
    [row] = outbox_rows()
    assert (row.state, row.attempts, row.last_error) == (JobState.DONE, 1, None)

    # A second delivery of the same job (the sweeper, a retry after a lost ack) and a
    # direct call do nothing more.
    dispatch([Staged(row.id, row.queue)])
    work_burst()
    assert run_outbox_job(row.id) is False
    assert count("weighed") == 1
    assert Job.fetch(rq_job_id(row.id), connection=rq_conn()).get_status() == "finished"


def test_rolled_back_transaction_runs_nothing(rq_app):
    from rq import Queue

    publish("test.jobs.parcel_weighed", {"parcel": "RR000000000IQ"})
    enqueue_after_commit(print_receipt, receipt="R-1")
    db.flush()
    db.rollback()
    db.commit()  # a later commit on the same session must not send the forgotten jobs

    assert outbox_rows() == []
    assert Queue("default", connection=rq_conn()).count == 0
    assert rq_conn().keys("rq:job:outbox-*") == []
    work_burst()
    assert count("weighed") == count("receipt") == 0


def test_savepoints_neither_send_early_nor_lose_the_outer_transactions_jobs(rq_app):
    from rq import Queue

    publish("test.jobs.parcel_weighed", {"parcel": "RR111111111IQ"})
    nested = db.begin_nested()
    enqueue_after_commit(print_receipt, receipt="dropped")
    db.flush()
    nested.rollback()
    released = db.begin_nested()
    enqueue_after_commit(print_receipt, receipt="kept")
    db.flush()
    released.commit()
    assert Queue("default", connection=rq_conn()).count == 0, "a savepoint is not a commit"
    db.commit()
    assert Queue("default", connection=rq_conn()).count == 2

    work_burst()
    assert count("weighed") == count("receipt") == 1
    with get_engine().connect() as conn:
        assert conn.execute(select(job_effects.c.ref).where(
            job_effects.c.kind == "receipt")).scalars().all() == ["kept"]
    assert [r.state for r in outbox_rows()] == [JobState.DONE, JobState.DONE]


def test_only_if_stages_a_subscriber_for_matching_events_only(rq_app):
    publish("test.jobs.payment_taken", {"reference_kind": "post_card", "reference_id": "7"})
    publish("test.jobs.payment_taken", {"reference_kind": "shop_order", "reference_id": "8"})
    publish("test.jobs.payment_taken", {"reference_id": "9"})  # no kind at all
    db.commit()
    tasks = sorted(r.task.rsplit(":", 1)[1] for r in outbox_rows())
    # Every payment is logged; only the order's payment is a job for mark_order_paid.
    assert tasks == ["log_any_payment"] * 3 + ["mark_order_paid"]
    work_burst()
    assert count("payment_logged") == 3
    with get_engine().connect() as conn:
        refs = conn.execute(select(job_effects.c.ref).where(
            job_effects.c.kind == "order_paid")).scalars().all()
    assert refs == ["8"]


def test_publish_many_stages_like_publish_and_sends_only_what_commits(rq_app):
    """Events published many at once (a batch of scans) write the same rows as one by
    one, send nothing before the commit nor anything from a rolled-back savepoint, and
    each job runs once."""
    from rq import Queue

    queue = Queue("default", connection=rq_conn())
    dropped = db.begin_nested()
    publish_many([("test.jobs.parcel_weighed", {"parcel": "RR222222222IQ"})])
    dropped.rollback()
    publish_many([
        ("test.jobs.parcel_weighed", {"parcel": "RR333333333IQ"}),
        ("test.jobs.payment_taken", {"reference_kind": "post_card", "reference_id": "7"}),
        ("test.jobs.payment_taken", {"reference_kind": "shop_order", "reference_id": "8"}),
    ])
    assert queue.count == 0, "nothing may be queued while the transaction is open"
    db.commit()
    rows = outbox_rows()
    assert sorted(r.task.rsplit(":", 1)[1] for r in rows) == [
        "log_any_payment", "log_any_payment", "mark_order_paid", "record_weighing"]
    assert all(r.enqueued_at is not None for r in rows)
    assert db.scalar(select(func.count()).select_from(DomainEvent)) == 3
    work_burst()
    work_burst()
    assert count("weighed") == 1
    assert count("payment_logged") == 2
    assert {r.state for r in outbox_rows()} == {JobState.DONE}


def test_urgent_subscriber_jumps_the_queue_and_runs_once(rq_app):
    from rq import Queue

    from app.jobs import rq_job_id
    from app.jobs.dispatch import sweep

    for n in range(3):
        publish("test.jobs.parcel_weighed", {"parcel": f"RR00000000{n}IQ"})
    db.commit()
    publish("test.jobs.order_placed", {"order": "42"})
    db.commit()
    queue = Queue("default", connection=rq_conn())
    [urgent] = [r for r in outbox_rows() if r.task.endswith(":confirm_order_now")]
    assert queue.job_ids[0] == rq_job_id(urgent.id), "the urgent job is first in line"
    assert len(queue.job_ids) == 4
    sweep()  # a sweep now re-sends nothing that rq still holds
    assert len(queue.job_ids) == 4
    work_burst()
    assert count("confirmed") == 1 and count("weighed") == 3


def test_subscriber_failing_twice_succeeds_on_third_attempt(rq_app):
    publish("test.jobs.customs_flaky", {"parcel": "CP123456785IQ"})
    db.commit()

    # Interval 0: rq puts the job straight back on its queue, so one burst does all tries.
    work_burst()
    assert count("assessed") == 1  # the two failed tries left nothing behind
    [row] = outbox_rows()
    assert (row.state, row.attempts, row.last_error) == (JobState.DONE, 3, None)


def test_retry_with_interval_waits_for_the_scheduler(rq_app):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    rq_app.config["JOB_RETRY_INTERVALS"] = [1, 1]
    publish("test.jobs.customs_flaky", {"parcel": "CP000000001IQ"})
    db.commit()

    work_burst()
    [row] = outbox_rows()
    assert (row.state, row.attempts) == (JobState.PENDING, 1)
    assert "customs service unavailable" in row.last_error
    registry = ScheduledJobRegistry(queue=Queue("default", connection=rq_conn()))
    assert registry.get_job_ids() == [f"outbox-{row.id}"]

    # A burst worker moves due scheduled jobs to the queue only when it starts, and
    # only if it runs the scheduler.
    for _ in range(2):
        time.sleep(1.05)
        work_burst(with_scheduler=True)
    [row] = outbox_rows()
    assert (row.state, row.attempts) == (JobState.DONE, 3)
    assert count("assessed") == 1


def test_job_that_keeps_failing_is_marked_failed(rq_app):
    rq_app.config["JOB_RETRY_INTERVALS"] = [0]
    publish("test.jobs.customs_flaky", {"parcel": "CP000000002IQ"})
    db.commit()

    work_burst()
    [row] = outbox_rows()
    assert (row.state, row.attempts) == (JobState.FAILED, 2)
    assert "ConnectionError" in row.last_error
    assert count("assessed") == 0


def test_crash_between_commit_and_enqueue_is_swept(rq_app, redis_url, caplog):
    from app.jobs import sweep

    # Redis unreachable at commit time: the commit stands, the hand-over fails.
    rq_app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    publish("test.jobs.parcel_weighed", {"parcel": "RR222222222IQ"})
    with caplog.at_level(logging.WARNING, logger="barid.redis"):
        db.commit()
    assert "redis://127.0.0.1:1/0 unreachable" in caplog.text
    assert "the sweeper sends them" in caplog.text
    rq_app.config["REDIS_URL"] = redis_url
    [row] = outbox_rows()
    assert row.enqueued_at is None

    assert sweep() == [], "a row is given a grace period to be handed over by its commit"
    rq_app.config["OUTBOX_DISPATCH_GRACE"] = 0
    assert sweep() == [row.id]
    assert sweep() == [], "a row just sent is not stale"
    work_burst()
    assert count("weighed") == 1
    assert outbox_rows()[0].state == JobState.DONE


def test_worker_killed_mid_job_runs_it_again_with_one_effect(rq_app, redis_url, pg_url,
                                                             tmp_path):
    from app.jobs import sweep

    started, release = tmp_path / "started", tmp_path / "release"
    publish("test.jobs.counter_blocked",
            {"parcel": "EE123456785IQ", "started": str(started), "release": str(release)})
    db.commit()
    [row] = outbox_rows()

    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
           "PYTHONPATH": str(ROOT), "BARID_ENV": "development"}
    with (tmp_path / "worker.log").open("wb") as worker_log:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "barid"), "worker", "--queues", "default"],
            cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=worker_log,
        )
    horse_pid = None
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists(), (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.05)
        horse_pid = int(started.read_text())
        assert horse_pid != worker.pid, "the job runs in a forked work-horse"
        # The machine loses the worker: the worker, its scheduler and the horse (which
        # rq puts in a process group of its own) die without any cleanup.
        os.killpg(worker.pid, signal.SIGKILL)
        os.kill(horse_pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        if horse_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(horse_pid, signal.SIGKILL)

    [row] = outbox_rows()
    assert row.state == JobState.PENDING
    assert count("handover") == 0, "the killed job's transaction was rolled back"

    release.touch()
    rq_app.config.update(OUTBOX_STALE_AFTER=0, OUTBOX_DISPATCH_GRACE=0)
    assert sweep() == [], "until its heartbeat runs out, rq counts the job as running"
    # The killed worker sends no more heartbeats: let its entry in rq's started registry
    # run out (rq gives it up to ~90 s).
    from rq.registry import StartedJobRegistry

    started_key = StartedJobRegistry("default", connection=rq_conn()).key
    entries = rq_conn().zrange(started_key, 0, -1)
    assert entries and all(e.startswith(b"outbox-%d:" % row.id) for e in entries)
    rq_conn().zadd(started_key, {e: time.time() - 1 for e in entries})
    assert sweep() == [row.id]
    # Another worker takes it (each job in a fresh fork that must not reuse the parent's
    # database connections).
    again = subprocess.run(
        [str(Path(sys.executable).parent / "barid"), "worker", "--burst", "--queues", "default"],
        cwd=ROOT, env=env, capture_output=True, timeout=60,
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert count("handover") == 1
    with get_engine().connect() as conn:
        assert conn.execute(select(job_effects.c.pid)).scalar_one() not in (
            os.getpid(), horse_pid)
    [row] = outbox_rows()
    assert row.state == JobState.DONE
    # Whatever rq itself later does with the abandoned copy, the effect stays single.
    work_burst()
    assert count("handover") == 1


def test_request_id_of_the_publishing_request_reaches_the_job(rq_app):
    # The request's own before/teardown hooks take the id from X-Request-ID.
    with rq_app.test_request_context("/", headers={"X-Request-ID": "req-7f3a9c"}):
        rq_app.preprocess_request()
        assert current_request_id() == "req-7f3a9c"
        publish("test.jobs.parcel_weighed", {"parcel": "RR333333333IQ"})
        db.commit()
        rq_app.do_teardown_request()
    assert current_request_id() is None

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(JsonFormatter().format(record))  # type: ignore[method-assign]
    logging.getLogger("barid.jobs").addHandler(handler)
    try:
        work_burst()
    finally:
        logging.getLogger("barid.jobs").removeHandler(handler)

    with get_engine().connect() as conn:
        assert conn.execute(select(job_effects.c.request_id)).scalars().all() == ["req-7f3a9c"]
    job_lines = [line for line in lines if "recording weighing" in line]
    assert job_lines and all('"request_id": "req-7f3a9c"' in line for line in job_lines)
    assert current_request_id() is None


def test_queue_depths_counts_the_backlog(rq_app):
    from app.jobs import queue_depths

    publish("test.jobs.parcel_weighed", {"parcel": "RR444444444IQ"})
    enqueue_after_commit(print_receipt, receipt="R-2")
    db.commit()
    assert queue_depths() == {"outbox_pending": 2, "outbox_failed": 0,
                              "queues": {"default": 2, "webhooks": 0, "low": 0}}
    work_burst()
    assert queue_depths()["outbox_pending"] == 0
    assert queue_depths()["queues"]["default"] == 0


def test_future_job_is_scheduled_not_queued(rq_app):
    from datetime import timedelta

    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from app.database import utcnow

    enqueue_after_commit(print_receipt, receipt="R-3", run_after=utcnow() + timedelta(hours=1))
    db.commit()
    queue = Queue("default", connection=rq_conn())
    assert queue.count == 0
    assert len(ScheduledJobRegistry(queue=queue)) == 1


def test_periodic_job_is_enqueued_once_per_interval_by_competing_workers(
        rq_app, only_test_periodics):
    from app.jobs import periodic
    from app.jobs.beat import beat_once

    periodic(every_seconds=60, queue="low", name="test-periodic")(run_sweeper_periodic)
    # Two workers' beat threads on the same tick: one wins the lock.
    first = beat_once(rq_app, rq_conn(), ["low"])
    second = beat_once(rq_app, rq_conn(), ["low"])
    assert first == ["test-periodic"] and second == []
    work_burst()
    assert count("periodic") == 1


def test_worker_refuses_to_start_without_redis(jobs_app):
    result = jobs_app.test_cli_runner().invoke(args=["worker"])
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output


def test_worker_refuses_unknown_queue(rq_app):
    result = rq_app.test_cli_runner().invoke(args=["worker", "--queues", "default,parcels"])
    assert result.exit_code == 2
    assert "unknown queue(s) parcels" in result.output


# --- inline executor and drain -----------------------------------------------------------


def test_without_an_executor_commit_runs_nothing_and_drain_runs_it(jobs_app):
    from app.jobs import drain

    publish("test.jobs.parcel_arrived", {"parcel": "RR555555555IQ"})
    enqueue_after_commit(print_receipt, receipt="R-4")
    db.commit()
    time.sleep(0.1)
    assert count("arrived") == count("receipt") == 0

    assert drain(jobs_app) == 3  # arrival, receipt, then the weighing it announced
    assert (count("arrived"), count("receipt"), count("weighed")) == (1, 1, 1)
    assert drain(jobs_app) == 0
    assert all(r.state == JobState.DONE for r in outbox_rows())


def test_drain_retries_after_backoff(jobs_app):
    from app.jobs import drain

    jobs_app.config["JOB_RETRY_INTERVALS"] = [60, 60]
    publish("test.jobs.customs_flaky", {"parcel": "CP000000003IQ"})
    db.commit()
    assert drain(jobs_app) == 1
    [row] = outbox_rows()
    assert (row.state, row.attempts) == (JobState.PENDING, 1)
    assert drain(jobs_app) == 0, "not due again before its backoff"

    jobs_app.config["JOB_RETRY_INTERVALS"] = [0, 0]
    db.execute(text("UPDATE outbox_jobs SET run_after = now()"))
    db.commit()
    assert drain(jobs_app) == 2  # fails once more, then succeeds
    [row] = outbox_rows()
    assert (row.state, row.attempts) == (JobState.DONE, 3)
    assert count("assessed") == 1


def test_drain_refuses_to_discard_unsaved_changes(jobs_app):
    from app.jobs import drain

    publish("test.jobs.parcel_weighed", {"parcel": "RR666666666IQ"})
    with pytest.raises(RuntimeError, match="commit first"):
        drain(jobs_app)
    db.rollback()


def test_inline_executor_runs_subscriber_after_commit_in_background(jobs_app,
                                                                  only_test_periodics):
    import threading

    from app.jobs import start_inline_executor, stop_inline_executor

    assert start_inline_executor(jobs_app) is True
    try:
        assert start_inline_executor(jobs_app) is False, "one thread per process"
        publish("test.jobs.parcel_weighed", {"parcel": "RR777777777IQ"})
        db.flush()
        time.sleep(0.3)
        assert count("weighed") == 0, "never before the commit"
        db.commit()
        committed = time.monotonic()
        while count("weighed") == 0 and time.monotonic() < committed + 5:
            time.sleep(0.01)
        assert count("weighed") == 1
        # Woken by the commit, not by its once-a-second poll.
        assert time.monotonic() - committed < 0.9
        with get_engine().connect() as conn:
            pid = conn.execute(select(job_effects.c.pid)).scalar_one()
        assert pid == os.getpid()
        assert "barid-inline-jobs" in [t.name for t in threading.enumerate()]
    finally:
        stop_inline_executor()
    assert outbox_rows()[0].state == JobState.DONE


def test_inline_executor_runs_periodic_jobs(jobs_app, only_test_periodics):
    from app.jobs import periodic, start_inline_executor, stop_inline_executor

    periodic(every_seconds=3600, name="test-inline-periodic")(run_sweeper_periodic)
    try:
        start_inline_executor(jobs_app)
        deadline = time.monotonic() + 5
        while count("periodic") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.2)
    finally:
        stop_inline_executor()
    assert count("periodic") == 1, "ran at start, not again within its interval"


# --- the sweeper ---------------------------------------------------------------------------


def test_sweeper_leaves_a_backlog_waiting_in_its_queue_alone(rq_app, caplog):
    from app.jobs import sweep

    for n in range(30):
        enqueue_after_commit(print_receipt, receipt=f"R-{n}")
    enqueue_after_commit(print_receipt, receipt="later", run_after=utcnow_plus(3600))
    db.commit()
    rq_app.config.update(OUTBOX_DISPATCH_GRACE=0, OUTBOX_STALE_AFTER=0)
    with caplog.at_level(logging.INFO, logger="barid.jobs"):
        assert sweep() == [], "every row is waiting in its queue or in the schedule"
    assert "none lost" in caplog.text
    work_burst()
    assert count("receipt") == 30, "each job ran once"


def test_sweeper_resends_a_job_rq_lost_once(rq_app, caplog):
    from rq.job import Job

    from app.jobs import rq_job_id, sweep

    enqueue_after_commit(print_receipt, receipt="lost")
    enqueue_after_commit(print_receipt, receipt="kept")
    db.commit()
    lost, kept = outbox_rows()
    # rq loses one job (a Redis restart without persistence, a flushed key ...).
    Job.fetch(rq_job_id(lost.id), connection=rq_conn()).delete()
    rq_app.config.update(OUTBOX_DISPATCH_GRACE=0, OUTBOX_STALE_AFTER=0)
    with caplog.at_level(logging.WARNING, logger="barid.jobs"):
        assert sweep() == [lost.id]
    assert "sweeper re-sent 1 lost outbox jobs" in caplog.text
    assert sweep() == [], "sent again, it waits in its queue"
    work_burst()
    with get_engine().connect() as conn:
        refs = sorted(conn.execute(select(job_effects.c.ref)).scalars())
    assert refs == ["kept", "lost"]


def test_sweeper_resends_a_job_rq_gave_up_on_while_its_row_is_pending(rq_app):
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from app.jobs import rq_job_id, sweep

    enqueue_after_commit(print_receipt, receipt="abandoned")
    db.commit()
    [row] = outbox_rows()
    # rq moved it to the failed registry (an abandoned work-horse with no retries left)
    # while the row, never claimed, is still pending.
    job = Job.fetch(rq_job_id(row.id), connection=rq_conn())
    from rq import Queue

    Queue("default", connection=rq_conn()).remove(job)
    FailedJobRegistry(queue=Queue("default", connection=rq_conn())).add(job, ttl=600)
    rq_app.config.update(OUTBOX_DISPATCH_GRACE=0, OUTBOX_STALE_AFTER=0)
    assert sweep() == [row.id]
    assert rq_job_id(row.id) not in FailedJobRegistry(
        queue=Queue("default", connection=rq_conn())).get_job_ids()
    work_burst()
    assert count("receipt") == 1


def test_only_one_sweeper_runs_at_a_time(rq_app, monkeypatch):
    import threading

    from app.jobs.sweeper import LOCK_KEY, run_sweeper

    # Another worker's sweeper holds the lock: this one does not start.
    held = rq_conn().lock(LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert run_sweeper(rq_app, rq_conn(), force=True) is None
    finally:
        held.release()

    # Two sweepers at the same moment: one sweeps, the other finds the lock taken.
    ran: list[int] = []
    gate = threading.Event()

    def slow_sweep(app=None):
        ran.append(1)
        gate.wait(5)
        return []

    monkeypatch.setattr("app.jobs.sweeper.sweep", slow_sweep)
    results: list = []
    conn = rq_conn()
    threads = [threading.Thread(target=lambda: results.append(
        run_sweeper(rq_app, conn, force=True))) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(ran) == 1 and sorted(map(repr, results)) == ["None", "[]"]


def test_sweeper_is_not_a_queued_job_and_runs_once_per_interval(rq_app):
    from app.jobs import periodic_jobs
    from app.jobs.sweeper import run_sweeper

    assert "outbox-sweeper" not in [j.name for j in periodic_jobs()], \
        "a queued sweeper would wait behind the backlog it clears"
    rq_app.config["OUTBOX_SWEEP_EVERY"] = 60
    assert run_sweeper(rq_app, rq_conn()) == []
    assert run_sweeper(rq_app, rq_conn()) is None, "another worker swept this interval"


def utcnow_plus(seconds: int):
    from datetime import timedelta

    from app.database import utcnow

    return utcnow() + timedelta(seconds=seconds)
