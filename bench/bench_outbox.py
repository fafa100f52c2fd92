"""Measure the outbox: commit overhead of publishing, and jobs per second per executor.

    BENCH_REDIS_DB=12 .venv/bin/python bench/bench_outbox.py [jobs]

Creates a PostgreSQL database of its own on BARID_TEST_PG's server (dropped at the end)
and empties the Redis database BENCH_REDIS_DB (default 12) before and after.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.events import DomainEvent, publish, subscribe  # noqa: E402

PG_ADMIN = os.environ.get("BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = f"redis://127.0.0.1:6379/{int(os.environ.get('BENCH_REDIS_DB', '12'))}"


@subscribe("bench.parcel_scanned")
def count_scan(event: DomainEvent) -> None:
    """A subscriber with a small database effect of its own (one UPDATE)."""
    from sqlalchemy import text

    from app.database import db

    db.execute(text("UPDATE bench_counter SET n = n + 1"))


def commit_latency(app, n: int, redis: str | None) -> list[float]:
    from app.database import db

    app.config["REDIS_URL"] = redis
    out = []
    with app.app_context():
        for i in range(n):
            t = time.perf_counter()
            publish("bench.parcel_scanned", {"i": i})
            db.commit()
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    import redis as redis_lib
    from rq import Queue, SimpleWorker, Worker
    from sqlalchemy import text

    from app import create_app
    from app.database import Base, db, get_engine
    from app.jobs import drain
    from app.models_registry import load_all

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    r = redis_lib.Redis.from_url(REDIS_URL)
    r.flushdb()
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True})
        load_all()
        Base.metadata.create_all(get_engine())
        with get_engine().begin() as conn:
            conn.execute(text("CREATE TABLE bench_counter (n integer)"))
            conn.execute(text("INSERT INTO bench_counter VALUES (0)"))

        def report(label: str, ms: list[float]) -> None:
            ms = sorted(ms)
            print(f"{label:44s} median {statistics.median(ms):6.2f} ms   "
                  f"p95 {ms[int(len(ms) * 0.95)]:6.2f} ms")

        report("commit with publish, no executor", commit_latency(app, n, None))
        with app.app_context():
            t = time.perf_counter()
            ran = drain(app, max_rounds=1000)
            dt = time.perf_counter() - t
        print(f"{'drain (inline executor body)':44s} {ran / dt:8.0f} jobs/s ({ran} jobs)")

        report("commit with publish + rq hand-over", commit_latency(app, n, REDIS_URL))
        with app.app_context():
            t = time.perf_counter()
            SimpleWorker([Queue("default", connection=r)], connection=r).work(
                burst=True, logging_level="WARNING")
            dt = time.perf_counter() - t
        print(f"{'rq SimpleWorker (no fork)':44s} {n / dt:8.0f} jobs/s")

        commit_latency(app, n, REDIS_URL)
        with app.app_context():
            t = time.perf_counter()
            Worker([Queue("default", connection=r)], connection=r).work(
                burst=True, logging_level="WARNING")
            dt = time.perf_counter() - t
        print(f"{'rq Worker (fork per job, as barid worker)':44s} {n / dt:8.0f} jobs/s")
        with get_engine().connect() as conn:
            total = conn.execute(text("SELECT n FROM bench_counter")).scalar_one()
        print(f"subscriber effects: {total} for {3 * n} published events")
        db.remove()
        get_engine().dispose()
    finally:
        r.flushdb()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
