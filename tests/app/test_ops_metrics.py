"""/metrics: who may read it, job counters, the backlog read at scrape time, and honest
sums across real processes (gunicorn with 2 workers and an rq worker sharing one
PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from sqlalchemy import func, select

from app import metrics
from app.database import db, get_engine, utcnow
from app.events import JobState, OutboxJob, enqueue_after_commit
from app.metrics import check_mode, gunicorn_on_starting, parse_networks
from app.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STRANGER = "203.0.113.9"


def sort_letters(bag: str) -> None:
    """A job that does its work (nothing to undo)."""


def lose_letters(bag: str) -> None:
    """A job that always fails."""
    raise RuntimeError(f"bag {bag} lost")


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, frozenset(labels.items())), 0.0)


def _scrape(client) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _db_count(state: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(OutboxJob)
                            .where(OutboxJob.state == state)).scalar_one()


# --- who may read it -----------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_the_host_itself_reads_metrics(client, address):
    r = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert r.status_code == 200
    assert "barid_http_requests_total" in r.get_data(as_text=True)


def test_a_stranger_gets_403_and_no_numbers(client):
    client.get("/livez")
    r = client.get("/metrics", environ_base={"REMOTE_ADDR": STRANGER},
                   headers={"X-Forwarded-For": "127.0.0.1"})  # no proxy is trusted
    assert r.status_code == 403
    assert "barid_" not in r.get_data(as_text=True)


def test_metrics_allow_takes_cidr_blocks(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_ALLOW", ["10.0.0.0/8", "fd00::/8"])
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "fd00::7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}).status_code == 403


def test_a_wrong_metrics_allow_stops_the_start_naming_it(monkeypatch):
    assert parse_networks(" 10.0.0.0/8 ,::1") == ["10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8, everyone")
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        load_settings(Flask("t"), "metrics", metrics.SETTINGS, overrides={})


def test_a_multiproc_dir_given_only_as_a_setting_is_refused(tmp_path):
    # prometheus_client was imported here without the variable: the counts would stay
    # in memory where no scrape of the directory reads them.
    check_mode({"PROMETHEUS_MULTIPROC_DIR": None})
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        check_mode({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})


def _dead_pid() -> int:
    """The pid of a process that has ended (reaped)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(gone.stdout)


def test_gunicorn_on_starting_clears_what_stopped_processes_left(tmp_path, monkeypatch):
    dead_pid = _dead_pid()
    (tmp_path / f"counter_{dead_pid}.db").write_bytes(b"left from the last run")
    (tmp_path / "histogram_rq-old.db").write_bytes(b"an older naming")
    (tmp_path / "old").mkdir()
    # A process still running (a `barid worker` not restarted with the web) keeps its
    # counts.
    running = tmp_path / f"counter_{os.getpid()}.db"
    running.write_bytes(b"still counting")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_on_starting(None)
    assert list(tmp_path.iterdir()) == [running]


# --- jobs and backlog, one process ------------------------------------------------------------


@pytest.mark.commits
def test_job_runs_are_counted_by_task_and_outcome(app, client):
    from app.jobs import drain, run_outbox_job

    done_task, lost_task = f"{__name__}:sort_letters", f"{__name__}:lose_letters"
    before = _scrape(client)
    with app.app_context():
        ok = enqueue_after_commit(sort_letters, bag="B-1")
        enqueue_after_commit(lose_letters, bag="B-2")
        db.commit()
        ok_id = ok.id
        drain(app, max_rounds=1)
        assert run_outbox_job(ok_id) is False  # delivered twice: nothing to do
    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("barid_jobs_total", task=done_task, outcome="done") == 1
    assert grew("barid_jobs_total", task=done_task, outcome="skipped") == 1
    assert grew("barid_jobs_total", task=lost_task, outcome="failed") == 1
    assert grew("barid_jobs_total", task=lost_task, outcome="done") == 0
    assert grew("barid_job_duration_seconds_count", task=done_task, outcome="done") == 1
    assert grew("barid_job_duration_seconds_count", task=lost_task, outcome="failed") == 1


@pytest.mark.commits
def test_backlog_gauges_match_the_outbox_and_the_queues(app, client, redis_url, monkeypatch):
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    try:
        with app.app_context():
            long_ago = utcnow() - timedelta(minutes=2)
            db.add_all([
                OutboxJob(task=f"{__name__}:sort_letters", args={}, created_at=long_ago,
                          run_after=long_ago),
                OutboxJob(task=f"{__name__}:sort_letters", args={}),
                OutboxJob(task=f"{__name__}:lose_letters", args={}, state=JobState.FAILED),
            ])
            db.commit()
        monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
        Queue("default", connection=conn).enqueue("tests.app.test_ops_metrics.sort_letters",
                                                  "B-3")
        text = _scrape(client)
        assert _value(text, "barid_outbox_pending") == _db_count(JobState.PENDING) >= 2
        assert _value(text, "barid_outbox_failed") == _db_count(JobState.FAILED) >= 1
        age = _value(text, "barid_outbox_oldest_pending_age_seconds")
        assert 120 <= age < 180
        assert _value(text, "barid_queue_depth", queue="default") == 1
        assert _value(text, "barid_queue_depth", queue="webhooks") == 0
        assert _value(text, "barid_backlog_up", source="redis") == 1
    finally:
        conn.flushdb()


@pytest.mark.commits
def test_with_redis_down_the_scrape_still_shows_the_outbox(app, client, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    with app.app_context():
        db.add(OutboxJob(task=f"{__name__}:sort_letters", args={}))
        db.commit()
    monkeypatch.setitem(app.config, "REDIS_URL", dead)
    text = _scrape(client)
    assert _value(text, "barid_backlog_up", source="redis") == 0
    assert _value(text, "barid_backlog_up", source="database") == 1
    assert _value(text, "barid_outbox_pending") == _db_count(JobState.PENDING) >= 1


# --- many processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _counters(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample that may only grow: counters and histogram buckets, sums, counts."""
    return {k: v for k, v in _samples(text).items()
            if k[0].endswith(("_total", "_bucket", "_count", "_sum"))}


def _worker_pids(folder: Path, master: int) -> set[int]:
    return {int(p.stem.split("_")[-1]) for p in folder.glob("counter_*.db")
            if p.stem.split("_")[-1].isdigit()} - {master}


@pytest.mark.commits
def test_two_gunicorn_workers_and_an_rq_worker_sum_honestly(app, pg_url, redis_url, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    stale = folder / f"counter_{_dead_pid()}.db"
    stale.write_bytes(b"stale")  # what a previous run left
    conf = ROOT / "deploy" / "gunicorn.conf.py"  # the shipped one, with its hooks
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BARID_", "REDIS_"))}
    env.update(DATABASE_URL=pg_url, PROMETHEUS_MULTIPROC_DIR=str(folder),
               PYTHONPATH=str(ROOT), BARID_ENV="development")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    log_file = log.open("wb")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(conf), "-w", "2", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5",
         "--control-socket", str(tmp_path / "gunicorn.ctl"), "app.wsgi:app"],
        cwd=ROOT, env=env, start_new_session=True,
        # A file, not a pipe: a full pipe would block the workers' access log.
        stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(OSError):
                if _get(f"{base}/readyz")[0] == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(log.read_text()[-3000:])
        assert not stale.exists(), "the start cleared what the last run left"

        sent = 0
        last: dict = {}
        pool = concurrent.futures.ThreadPoolExecutor(6)

        def send(n: int) -> None:
            nonlocal sent
            statuses = list(pool.map(lambda _: _get(f"{base}/livez")[0], range(n)))
            assert statuses == [200] * n
            sent += n

        def scrape() -> str:
            nonlocal last
            status, text = _get(f"{base}/metrics")
            assert status == 200
            now = _counters(text)
            went_down = {k: (last[k], v) for k, v in now.items() if k in last and v < last[k]}
            assert not went_down, went_down
            assert set(last) <= set(now), "a series vanished"
            last = now
            return text

        def until_served_by(workers: int) -> set[int]:
            """Send requests until `workers` processes have answered (each loads the app
            in its own time after the fork)."""
            deadline = time.monotonic() + 60
            while len(_worker_pids(folder, server.pid)) < workers \
                    and time.monotonic() < deadline:
                send(6)
            pids = _worker_pids(folder, server.pid)
            assert len(pids) == workers, pids
            return pids

        until_served_by(2)
        livez = ("barid_http_requests_total",
                 frozenset({"method": "GET", "url_rule": "/livez", "status": "200"}.items()))
        for i in range(20):
            send(6)
            # Both workers serve, and a parcel number never becomes a label.
            _get(f"{base}/api/v1/tracking/EE123456785IQ")
            text = scrape()
            assert last[livez] == sent, (i, last[livez], sent)
            assert "EE123456785IQ" not in text
            if i == 9:
                # A worker dies: gunicorn starts another; the dead one's counts stay.
                os.kill(sorted(_worker_pids(folder, server.pid))[0], signal.SIGKILL)
                time.sleep(0.5)
        # The replacement serves too.
        until_served_by(3)
        scrape()
        assert last[livez] == sent

        # Jobs run by `barid worker` (a forked work-horse per job) land in the same sums.
        conn = redis.Redis.from_url(redis_url)
        conn.flushdb()
        saved = app.config.get("REDIS_URL")
        app.config["REDIS_URL"] = redis_url
        try:
            with app.app_context():
                for bag in ("B-1", "B-2"):
                    enqueue_after_commit(sort_letters, bag=bag)
                enqueue_after_commit(lose_letters, bag="B-3")
                db.commit()
        finally:
            app.config["REDIS_URL"] = saved
        assert Queue("default", connection=conn).count == 3
        files_before = set(folder.glob("*.db"))
        worker = subprocess.Popen(
            [str(BIN / "barid"), "worker", "--burst", "--queues", "default"],
            cwd=ROOT, env={**env, "REDIS_URL": redis_url}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()[-2000:]
        conn.flushdb()
        text = scrape()
        task = f"{__name__}:sort_letters"
        assert _value(text, "barid_jobs_total", task=task, outcome="done") == 2
        with get_engine().connect() as db_conn:
            lost = db_conn.execute(select(OutboxJob.attempts).where(
                OutboxJob.task == f"{__name__}:lose_letters")).scalar_one()
        assert lost >= 1
        assert _value(text, "barid_jobs_total", task=f"{__name__}:lose_letters",
                      outcome="failed") == lost
        # Three work-horses, one set of files: named after their worker, not themselves.
        assert {f.name for f in set(folder.glob("*.db")) - files_before} == {
            f"counter_{worker.pid}.db", f"histogram_{worker.pid}.db"}
        # The backlog is read from the database at scrape time.
        assert _value(text, "barid_outbox_pending") == _db_count(JobState.PENDING)
        assert _value(text, "barid_outbox_failed") == _db_count(JobState.FAILED)

        # `barid metrics-serve` on a port of its own reads the same sums.
        side_port = _free_port()
        side = subprocess.Popen(
            [str(BIN / "barid"), "metrics-serve", "--port", str(side_port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            side_text = ""
            while time.monotonic() < deadline and not side_text:
                with contextlib.suppress(OSError):
                    side_text = _get(f"http://127.0.0.1:{side_port}/metrics")[1]
                time.sleep(0.2)
            assert _value(side_text, *livez[:1], **dict(livez[1])) == sent
            assert _value(side_text, "barid_jobs_total", task=task, outcome="done") == 2
        finally:
            side.terminate()
            side.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log_file.close()


def test_a_metrics_store_that_fails_costs_no_request_and_no_job(app, client, monkeypatch):
    class Broken:
        def labels(self, *_a):
            raise OSError("No space left on device")

    monkeypatch.setattr(metrics, "HTTP_REQUESTS", Broken())
    monkeypatch.setattr(metrics, "JOBS", Broken())
    assert client.get("/livez").status_code == 200
    metrics.observe_job("tests:anything", "done", 0.1)  # logged, not raised
    with pytest.raises(ValueError):
        metrics.observe_job("tests:anything", "lost", 0.1)


def test_a_worker_starting_before_gunicorn_makes_the_directory(tmp_path):
    folder = tmp_path / "run" / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BARID_", "REDIS_"))}
    env.update(PROMETHEUS_MULTIPROC_DIR=str(folder), PYTHONPATH=str(ROOT),
               DATABASE_URL=f"sqlite:///{tmp_path / 'barid.sqlite3'}")
    subprocess.run([sys.executable, "-c", "from app import create_app; create_app()"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    assert folder.is_dir()
