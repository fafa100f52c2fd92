"""Tracking lookups per second and bulk event ingest, on PostgreSQL.

1. Fills a fresh database with 100,000 parcels and 1,000,000 events (10 each).
2. Lookups: GET /api/v1/tracking/<number> for random known numbers, with 1 and 16
   concurrent keep-alive clients, against Barid under gunicorn (2 workers), and against
   bench/tracking_bare.py (a bare Flask route doing the same indexed lookup, also 2
   workers). The lookup rate limit is off for the run (TRACKING_LOOKUPS_PER_MINUTE=0).
3. Bulk ingest: a batch of new events through tracking.services.bulk (stored rows, then
   the job body that ingests them one by one with de-duplication and status derivation).

Creates its own database and drops it at the end.

    .venv/bin/python bench/tracking.py [--parcels 100000] [--events-per-parcel 10]
        [--seconds 10] [--batch 5000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CODES = ["EMA", "EDD", "EDE", "EMG", "EDD", "EDE", "EMG", "EDG", "EDD", "EDG"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(url: str, n_parcels: int, per_parcel: int) -> list[str]:
    """Schema from the models, then parcels and events in bulk; returns the numbers."""
    from tracking.s10 import compose
    from tracking.upu import event_codes

    numbers = [compose("CP", i) for i in range(1, n_parcels + 1)]
    codes = (CODES * (per_parcel // len(CODES) + 1))[:per_parcel]
    statuses = [event_codes()[c].status for c in codes]
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        office = conn.execute(
            "INSERT INTO post_offices (code, name_ar, name_en, governorate, address, "
            "is_exchange_office, created_at) VALUES ('BGD-01', 'مكتب بريد بغداد', "
            "'Baghdad', 'IQ-BG', '', true, now()) RETURNING id").fetchone()[0]
        conn.execute("CREATE TEMP TABLE nums (id bigint, n text)")
        with conn.cursor().copy("COPY nums (id, n) FROM STDIN") as copy:
            for i, n in enumerate(numbers, start=1):
                copy.write_row((i, n))
        conn.execute(f"""
            INSERT INTO parcels (id, tracking_number, service, direction, status, closed,
              failed_attempts, last_event_at, last_activity_at, sender_name, sender_phone,
              sender_country, sender_governorate, sender_district, sender_landmark,
              sender_address, recipient_name, recipient_phone, recipient_country,
              recipient_governorate, recipient_district, recipient_landmark,
              recipient_address, origin_office_id, weight_grams, length_cm, width_cm,
              height_cm, postage_amount, postage_currency, importer_reference,
              invoice_number, licence_number, certificate_number, created_at)
            SELECT id, n, 'parcel', 'domestic', '{statuses[-1]}', false, 0,
              now() - interval '1 hour', now(), 'مرسل', '07700000000', 'IQ', 'IQ-BG', '', '',
              '', 'مستلم', '07800000000', 'IQ', 'IQ-BA', '', '', '', {office}, 1000, 0, 0, 0,
              5000, 'IQD', '', '', '', '', now()
            FROM nums""")
        conn.execute("SELECT setval(pg_get_serial_sequence('parcels', 'id'), "
                     f"{n_parcels})")
        arr_codes = "ARRAY[" + ",".join(f"'{c}'" for c in codes) + "]"
        arr_status = "ARRAY[" + ",".join(f"'{s}'" for s in statuses) + "]"
        conn.execute(f"""
            INSERT INTO parcel_events (uid, parcel_id, code, status, occurred_at,
              occurred_utc_offset, received_at, office_id, location, source, note,
              after_final)
            SELECT 'b:' || p.id || ':' || g.k, p.id, ({arr_codes})[g.k], ({arr_status})[g.k],
              now() - interval '10 days' + g.k * interval '20 hours', 180, now(), {office},
              '', 'partner', '', false
            FROM parcels p CROSS JOIN generate_series(1, {per_parcel}) AS g(k)""")
        conn.execute("ANALYZE")
    return numbers


def start_gunicorn(target: str, env: dict, chdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # The app logs one JSON line per request: a file, not an unread pipe that fills up.
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - outlives this function, with the server
        prefix="barid-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
         "--chdir", str(chdir), "--log-level", "warning", target],
        env=env, stdout=log, stderr=log)
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/v1/tracking/CP000000014IQ")
            c.getresponse().read()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"gunicorn {target} did not start: see {log.name}")


def load(host: str, numbers: list[str], clients: int, seconds: float) -> dict:
    """`clients` keep-alive connections asking for random numbers for `seconds`."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def worker(i: int) -> None:
        rng = random.Random(i)
        h, p = host.split(":")
        conn = http.client.HTTPConnection(h, int(p), timeout=30)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/api/v1/tracking/" + rng.choice(numbers))
                res = conn.getresponse()
                res.read()
                ok = res.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(h, int(p), timeout=30)
            if not ok:
                errors[i] += 1
            latencies[i].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = sorted(x for xs in latencies for x in xs)
    return {"rps": len(flat) / elapsed, "p50": 1000 * statistics.median(flat),
            "p95": 1000 * flat[int(len(flat) * 0.95)], "errors": sum(errors),
            "requests": len(flat)}


def bulk_ingest(url: str, numbers: list[str], rows: int) -> tuple[float, dict]:
    from app import create_app
    from app.database import db, get_engine
    from tracking.services import bulk

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                      "BULK_MAX_ROWS": max(rows, 20000)})
    rng = random.Random(5)
    now = datetime.now(UTC)
    batch_rows = [{"tracking_number": rng.choice(numbers), "code": rng.choice(["EDD", "EDE"]),
                   "occurred_at": (now - timedelta(minutes=rows - i)).isoformat(),
                   "event_id": f"bulk-{i}", "office_code": "BGD-01"} for i in range(rows)]
    with app.app_context():
        t0 = time.perf_counter()
        batch = bulk.submit_batch(batch_rows, source="api", partner="bench")
        b = bulk.process_batch(batch.id)
        db.commit()
        elapsed = time.perf_counter() - t0
        summary = {"accepted": b.accepted, "duplicates": b.duplicates, "rejected": b.rejected}
        db.remove()
    get_engine().dispose()
    return elapsed, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--events-per-parcel", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--pg", default=os.environ.get(
        "BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    logging.disable(logging.INFO)

    name = f"barid_bench_tracking_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    sa_url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    procs: list[subprocess.Popen] = []
    try:
        from app import create_app
        from app.database import Base, get_engine
        from app.models_registry import load_all

        create_app({"DATABASE_URL": sa_url, "REDIS_URL": None})
        load_all()
        Base.metadata.create_all(get_engine())
        get_engine().dispose()
        t0 = time.perf_counter()
        numbers = fill(sa_url, args.parcels, args.events_per_parcel)
        print(f"filled {args.parcels:,} parcels and {args.parcels * args.events_per_parcel:,}"
              f" events in {time.perf_counter() - t0:.1f} s")

        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(DATABASE_URL=sa_url, TRACKING_LOOKUPS_PER_MINUTE="0",
                   MAIL_BACKEND="memory", BARID_ENV="development", PYTHONPATH=str(ROOT))
        barid, barid_host = start_gunicorn("app:create_app()", env, ROOT)
        procs.append(barid)
        bare, bare_host = start_gunicorn("tracking_bare:app", env, ROOT / "bench")
        procs.append(bare)
        print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}; servers: gunicorn -w 2 each; "
              f"{args.seconds:.0f} s per run")
        results = {}
        for clients in (1, 16):
            for label, host in (("barid", barid_host), ("bare", bare_host)):
                load(host, numbers, clients, 2.0)  # warm the pools and caches
                r = load(host, numbers, clients, args.seconds)
                results[(label, clients)] = r
                print(f"  {label:5} {clients:2} clients: {r['rps']:7.0f} lookups/s  "
                      f"p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
                      f"errors {r['errors']} of {r['requests']}")
            ratio = results[("barid", clients)]["rps"] / results[("bare", clients)]["rps"]
            print(f"  ratio barid/bare at {clients} clients: {ratio:.2f}")
        for p in procs:
            p.terminate()
            p.wait(30)
        procs.clear()

        elapsed, summary = bulk_ingest(sa_url, numbers, args.batch)
        print(f"bulk ingest: {args.batch:,} events in {elapsed:.2f} s = "
              f"{args.batch / elapsed:.0f} events/s ({summary})")
    finally:
        for p in procs:
            p.terminate()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
