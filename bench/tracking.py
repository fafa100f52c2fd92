"""P1 public tracking lookups and P3 bulk event ingest, on PostgreSQL, beside baselines.

1. Fills a fresh database with 100,000 parcels and 1,000,000 events (10 each).
2. P1: `wrk` (Debian's package; 2 threads, 16 connections, a Lua script rotating over
   known numbers) against Barid under gunicorn (2 workers): GET /api/v1/tracking/<n>
   and the HTML page /track/<n>; and against bench/tracking_bare.py (a bare Flask route
   doing the same indexed lookups, also 2 workers). The lookup rate limit is off
   (TRACKING_LOOKUPS_PER_MINUTE=0). Medians of --runs runs; p50 and p99 from wrk.
3. P3: a batch of new events through tracking.services.bulk (stored rows, then the job
   body, with de-duplication and status derivation), beside COPY of the same rows into
   the same events table, and a plain executemany INSERT of them.

Creates its own database and drops it at the end. With --json, the last line is
`BENCH <json>` for bench/run.py.

    python bench/tracking.py [--parcels 100000] [--events-per-parcel 10] [--seconds 10]
        [--runs 3] [--batch 5000] [--skip-p1] [--skip-p3] [--json]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import row  # noqa: E402 - after the path is set
from bench.tracking_fill import fill  # noqa: E402

BIN = Path(sys.executable).parent
LUA = """
local numbers = {}
for line in io.lines(os.getenv("BARID_NUMBERS")) do numbers[#numbers + 1] = line end
local prefix = os.getenv("BARID_PATH")
local i = 0
init = function(args) i = math.random(1, #numbers) end
request = function()
  i = i % #numbers + 1
  return wrk.format("GET", prefix .. numbers[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK %d %f %f %f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(target: str, env: dict, chdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # The app logs one JSON line per request: a file, not an unread pipe that fills up.
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - outlives this function, with the server
        prefix="barid-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
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


def wrk(host: str, path: str, numbers_file: str, seconds: float) -> dict:
    """One wrk run: 2 threads, 16 connections; requests/s, p50 and p99 in ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    env = {**os.environ, "BARID_NUMBERS": numbers_file, "BARID_PATH": path}
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{max(1, int(seconds))}s", "-s", f.name,
                          f"http://{host}"], env=env, capture_output=True, text=True,
                         check=True).stdout
    os.unlink(f.name)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    n, secs, p50, p99, errors = line.split()[1:]
    return {"rps": int(n) / float(secs), "p50": float(p50), "p99": float(p99),
            "errors": int(errors), "requests": int(n)}


def median_run(runs: int, fn) -> dict:
    """Medians of `runs` runs of fn(), each with the load average before it."""
    results = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        r = fn()
        r["load"] = load
        results.append(r)
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def ingest_rows(numbers: list[str], rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [{"tracking_number": rng.choice(numbers), "code": rng.choice(["EDD", "EDE"]),
             "occurred_at": (now - timedelta(minutes=rows - i)).isoformat(),
             "event_id": f"bulk-{seed}-{i}", "office_code": "BGD-01"} for i in range(rows)]


def ingest_baselines(url: str, batch_rows: list[dict]) -> dict:
    """COPY and executemany of the same rows (parcel id by number, resolved beforehand;
    each code's own status) into the same table Barid writes, parcel_events with its
    million rows, indexes and foreign keys, committed as Barid's batch is: the rate the
    database allows. Each baseline's rows are deleted again afterwards, untimed."""
    from tracking.upu import event_codes

    out = {}
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        ids = dict(conn.execute("SELECT tracking_number, id FROM parcels").fetchall())
        office = conn.execute("SELECT id FROM post_offices WHERE code = 'BGD-01'").fetchone()[0]
        values = [(f"{r['event_id']}-{{}}", ids[r["tracking_number"]], r["code"],
                   event_codes()[r["code"]].status, r["occurred_at"], office)
                  for r in batch_rows]
        cols = "uid, parcel_id, code, status, occurred_at, office_id, " \
               "occurred_utc_offset, received_at, location, source, note, " \
               "after_final, out_of_sequence"
        for how in ("copy", "executemany"):
            t0 = time.perf_counter()
            with conn.transaction():
                rows = [(u.format(how), p, c, st, at, o, 180, datetime.now(UTC), "",
                         "partner", "", False, False) for u, p, c, st, at, o in values]
                if how == "copy":
                    with conn.cursor().copy(f"COPY parcel_events ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    conn.cursor().executemany(
                        f"INSERT INTO parcel_events ({cols}) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
            out[how] = len(rows) / (time.perf_counter() - t0)
            conn.execute("DELETE FROM parcel_events WHERE uid = ANY(%s)",
                         [[r[0] for r in rows]])
    return out


def bulk_ingest(url: str, batch_rows: list[dict]) -> tuple[float, dict]:
    from app import create_app
    from app.database import db, get_engine
    from tracking.services import bulk

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                      "BULK_MAX_ROWS": max(len(batch_rows), 20000)})
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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--skip-p1", action="store_true")
    ap.add_argument("--skip-p3", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pg", default=os.environ.get(
        "BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    logging.disable(logging.INFO)

    name = f"barid_bench_tracking_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    sa_url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    procs: list[subprocess.Popen] = []
    report: dict = {"conditions": {
        "database": f"PostgreSQL {version}", "cpus": os.cpu_count(),
        "rows": f"{args.parcels:,} parcels / {args.parcels * args.events_per_parcel:,} events",
        "runs": args.runs}}
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
        print(f"filled {report['conditions']['rows']} in {time.perf_counter() - t0:.1f} s")

        if not args.skip_p1:
            env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
            env.update(DATABASE_URL=sa_url, TRACKING_LOOKUPS_PER_MINUTE="0",
                       MAIL_BACKEND="memory", BARID_ENV="development", PYTHONPATH=str(ROOT))
            barid, barid_host = start_gunicorn("app:create_app()", env, ROOT)
            procs.append(barid)
            bare, bare_host = start_gunicorn("tracking_bare:app", env, ROOT / "bench")
            procs.append(bare)
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
                f.write("\n".join(numbers) + "\n")
            p1 = {}
            for label, host, path in (("barid_json", barid_host, "/api/v1/tracking/"),
                                      ("barid_html", barid_host, "/track/"),
                                      ("bare", bare_host, "/api/v1/tracking/")):
                wrk(host, path, f.name, 2)  # warm the pools and caches
                p1[label] = r = median_run(args.runs, lambda h=host, p=path: wrk(
                    h, p, f.name, args.seconds))
                print(f"  P1 {label:10} wrk 2 threads 16 connections: {r['rps']:7.0f} req/s  "
                      f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  errors {r['errors']:.0f}"
                      f"  (load before {r['load']:.1f})")
            os.unlink(f.name)
            p1["ratio"] = p1["barid_json"]["rps"] / p1["bare"]["rps"]
            p1["html_over_json"] = p1["barid_json"]["rps"] / p1["barid_html"]["rps"]
            print(f"  P1 ratio barid/bare: {p1['ratio']:.2f}; HTML takes "
                  f"{p1['html_over_json']:.2f}x the JSON's time")
            report["p1"] = p1
            for p in procs:
                p.terminate()
                p.wait(30)
            procs.clear()

        if not args.skip_p3:
            runs = []
            for k in range(args.runs):
                rows = ingest_rows(numbers, args.batch, seed=k)
                load = os.getloadavg()[0]
                elapsed, summary = bulk_ingest(sa_url, rows)
                base = ingest_baselines(sa_url, rows)
                runs.append({"rate": args.batch / elapsed, "copy": base["copy"],
                             "executemany": base["executemany"], "load": load})
                print(f"  P3 run {k + 1}: {args.batch:,} events in {elapsed:.2f} s = "
                      f"{args.batch / elapsed:.0f} events/s ({summary}); COPY "
                      f"{base['copy']:.0f}/s, executemany {base['executemany']:.0f}/s "
                      f"(load before {load:.1f})")
            p3 = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            p3["ratio"] = p3["rate"] / p3["copy"]
            print(f"  P3 median {p3['rate']:.0f} events/s, ratio to COPY {p3['ratio']:.2f}")
            report["p3"] = p3
    finally:
        for p in procs:
            p.terminate()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        rows = []
        where = f"{report['conditions']['rows']}, {report['conditions']['database']}"
        if "p1" in report:
            j, h, b = p1["barid_json"], p1["barid_html"], p1["bare"]
            conds = f"gunicorn -w 2, wrk 2 threads 16 conns, {where}"
            rows.append(row("P1", "P1 tracking JSON (req/s)", j["rps"], "bare Flask",
                            b["rps"], p50=j["p50"], p99=j["p99"], conditions=conds,
                            load=j["load"], runs=args.runs))
            rows.append(row("P1", "P1 tracking HTML (req/s)", h["rps"], "Barid JSON",
                            j["rps"], p50=h["p50"], p99=h["p99"], conditions=conds,
                            load=h["load"], runs=args.runs))
        if "p3" in report:
            rows.append(row("P3", "P3 bulk ingest (events/s)", p3["rate"], "COPY",
                            p3["copy"], conditions=f"1 process, batch {args.batch:,} into "
                            f"{where}, executemany {p3['executemany']:.0f}/s",
                            load=p3["load"], runs=args.runs))
        print("BENCH " + json.dumps({**report, "rows": rows}))


if __name__ == "__main__":
    main()
