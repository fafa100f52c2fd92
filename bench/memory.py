"""P7: resident memory of a production-shaped deployment on one host.

Starts gunicorn with deploy/gunicorn.conf.py (preload, gthread) and 2 workers, and one
`barid worker`, on a scratch PostgreSQL database and the Redis database --redis-db;
serves some pages (tracking, shop, login, metrics) so the workers have done real work,
then sums the resident memory (VmRSS) and the proportional set size (Pss: shared pages
counted once, split between the processes that share them) of the master, its workers,
the `barid worker` and whatever it forked (rq's scheduler). Ends with `BENCH <json>`.

    .venv/bin/python bench/memory.py [--redis-db 14]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import emit, free_port, load, row  # noqa: E402

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def kib(pid: int, field: str) -> int:
    """VmRSS from /proc/<pid>/status, or Pss from smaps_rollup, in KiB (0 if gone)."""
    try:
        if field == "Pss":
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        else:
            text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            kids = []
        todo.extend(int(k) for k in kids)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-db", type=int,
                    default=int(os.environ.get("BARID_TEST_REDIS_DB", "14")))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    procs: list[subprocess.Popen] = []
    log = tempfile.NamedTemporaryFile(prefix="barid-bench-p7-", suffix=".log",  # noqa: SIM115
                                      delete=False)
    try:
        from app import create_app
        from app.database import Base, get_engine, unit_of_work
        from app.models_registry import load_all
        from app.seed import seed_demo

        app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory"})
        load_all()
        with app.app_context():
            Base.metadata.create_all(get_engine())
            with unit_of_work():
                seed_demo()
        get_engine().dispose()
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url,
               "BARID_ENV": "development", "MAIL_BACKEND": "memory",
               "PYTHONPATH": str(ROOT), "TRACKING_LOOKUPS_PER_MINUTE": "0"}
        port = free_port()
        before = load()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
             "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "app.wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log,
            start_new_session=True))
        procs.append(subprocess.Popen(
            [str(Path(sys.executable).parent / "barid"), "worker"], cwd=ROOT, env=env,
            stdout=log, stderr=log, start_new_session=True))
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{base}/livez", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        s = requests.Session()
        paths = ["/", "/shop/", "/login", "/track/", "/metrics", "/lang/en?next=/",
                 "/shop/search?q=lamp", "/no-such-page"]
        for i in range(args.requests):
            s.get(base + paths[i % len(paths)], timeout=30)
        time.sleep(3)  # the worker's beat has ticked; rq's scheduler is up
        parts = {}
        for label, proc in (("gunicorn", procs[0]), ("barid worker", procs[1])):
            pids = tree(proc.pid)
            parts[label] = (len(pids), sum(kib(p, "VmRSS") for p in pids),
                            sum(kib(p, "Pss") for p in pids))
        rss = sum(v[1] for v in parts.values()) / 1024
        pss = sum(v[2] for v in parts.values()) / 1024
        for label, (n, r, p) in parts.items():
            print(f"  {label}: {n} processes, RSS {r / 1024:.0f} MiB, PSS {p / 1024:.0f} MiB")
        detail = "; ".join(f"{label} {n} procs RSS {r / 1024:.0f} PSS {p / 1024:.0f}"
                           for label, (n, r, p) in parts.items())
        conds = f"{detail}; after {args.requests} requests, demo data"
        emit([row("P7", "P7 memory PSS in all (MiB)", pss, "goal <=", 300.0,
                  conditions="PSS: shared pages counted once; " + conds, load=before,
                  runs=1, ok=pss <= 300),
              row("P7", "P7 memory RSS sum (MiB)", rss, "goal <=", 300.0,
                  conditions="RSS counts each shared page in every process; " + conds,
                  load=before, runs=1, ok=rss <= 300)], json_line=args.json)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        redis.Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()
