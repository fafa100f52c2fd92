"""P6 (jobs): trivial jobs per second, the default `barid worker` against plain rq.

1. Barid: N outbox jobs of a trivial task (`bench.jobs:noop`, no database work of its
   own) are committed, so the after-commit dispatcher hands them to rq; one
   `barid worker --burst --queues default` (the default: a forked work-horse per job, the
   outbox claim and commit in each) runs them.
2. Baseline: the same number of plain rq jobs of the same function, run by one
   `rq worker --burst` (rq's Worker: a forked work-horse per job).

The rate is taken from rq's own end times of the jobs (first to last), so the start-up
of either process is left out. Ends with `BENCH <json>` (--json).

    .venv/bin/python bench/jobs.py [--jobs 300] [--runs 3] [--redis-db 14]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import emit, median_of, row  # noqa: E402

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def noop(**_kwargs: object) -> None:
    """The trivial job."""


def rate_of(conn, ids: list[str]) -> float:
    from rq.job import Job

    ends = sorted(j.ended_at for j in Job.fetch_many(ids, connection=conn)
                  if j is not None and j.ended_at is not None)
    if len(ends) < 2:
        return float("nan")
    return (len(ends) - 1) / (ends[-1] - ends[0]).total_seconds()


def barid_run(n: int, redis_url: str) -> float:
    import redis

    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    with psycopg.connect(ADMIN, autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}"')
    try:
        from app import create_app
        from app.database import Base, db, get_engine, init_engine, unit_of_work
        from app.events import enqueue_after_commit
        from app.jobs import rq_job_id
        from app.models_registry import load_all

        app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url,
                          "MAIL_BACKEND": "memory"})
        load_all()
        init_engine(url)
        with app.app_context():
            Base.metadata.create_all(get_engine())
            ids = []
            with unit_of_work():
                for _ in range(n):
                    ids.append(enqueue_after_commit("bench.jobs:noop"))
                db.flush()
                ids = [rq_job_id(j.id) for j in ids]
            db.remove()
        get_engine().dispose()
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url,
               "PYTHONPATH": str(ROOT), "MAIL_BACKEND": "memory", "LOG_LEVEL": "WARNING"}
        subprocess.run([str(Path(sys.executable).parent / "barid"), "worker", "--burst",
                        "--queues", "default"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        with psycopg.connect(url) as pg:
            done = pg.execute("SELECT count(*) FROM outbox_jobs WHERE state = 'done'"
                              ).fetchone()[0]
        assert done == n, (done, n)
        return rate_of(conn, ids)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.flushdb()


def plain_run(n: int, redis_url: str) -> float:
    import redis
    from rq import Queue

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    try:
        q = Queue("default", connection=conn)
        ids = [q.enqueue("bench.jobs.noop").id for _ in range(n)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([str(Path(sys.executable).parent / "rq"), "worker", "--burst",
                        "--url", redis_url, "--logging_level", "WARNING", "default"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        return rate_of(conn, ids)
    finally:
        conn.flushdb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--redis-db", type=int,
                    default=int(os.environ.get("BARID_TEST_REDIS_DB", "14")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"

    def once() -> dict[str, float]:
        plain = plain_run(args.jobs, redis_url)
        barid = barid_run(args.jobs, redis_url)
        print(f"  P6 run: barid worker {barid:.0f} jobs/s, rq worker {plain:.0f} jobs/s",
              flush=True)
        return {"barid": barid, "plain": plain}

    med = median_of(args.runs, once)
    emit([row("P6", "P6 jobs, barid worker (/s)", med["barid"], "rq worker", med["plain"],
              conditions=f"1 worker, fork per job, {args.jobs} trivial jobs, PostgreSQL",
              load=med["load"], runs=args.runs)], json_line=args.json)


if __name__ == "__main__":
    main()
