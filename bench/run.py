"""`make bench`: run every benchmark of issue 15 (P1-P9) and print one table.

Each benchmark is a script in bench/ that creates and drops its own PostgreSQL database
(and empties the Redis database it is given) and ends with a line
`BENCH {"rows": [...]}` (see bench/common.py); this collects the rows and prints them:
Barid, the baseline, the ratio, p50/p99 where they apply, the conditions and the load
average before the run. Medians of 3 runs (--quick: 1 short run with smaller data, to
check that everything works). Never part of `make test`.

    python bench/run.py [--quick] [--only P1,P9] [--redis-db 14]
    make bench BENCH_ARGS="--quick"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> list[dict]:
    """Run one benchmark script; its table rows ([] when it failed)."""
    cmd = [sys.executable, str(ROOT / "bench" / script), "--json", *args]
    print("$ " + " ".join(cmd[1:]), flush=True)
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if not line.startswith("BENCH "):
            print("  " + line)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return []
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    return json.loads(last[-1][6:]).get("rows", []) if last else []


def plan(quick: bool, redis_db: str) -> list[tuple[str, str, list[str]]]:
    """(goals, script, arguments) of every benchmark, full or --quick."""
    q = quick
    runs = ["--runs", "1"] if q else ["--runs", "3"]
    redis = ["--redis-db", redis_db]
    return [
        ("P1 P3", "tracking.py", [*runs, "--seconds", "3" if q else "10",
                                  *(["--parcels", "10000", "--batch", "2000"] if q else [])]),
        ("P2", "labels.py", [*runs, "--parcels", "100" if q else "300",
                             "--renders", "100" if q else "300"]),
        ("P4", "checkout.py", ["--clients", "16", "--seconds", "3" if q else "5",
                               *runs]),
        ("P5", "ledger.py", [*runs, "--seconds", "3" if q else "10"]),
        ("P6", "jobs.py", [*runs, "--jobs", "100" if q else "300", *redis]),
        ("P6", "webhooks.py", ["--messages", "200" if q else "1000", *redis]),
        ("P7", "memory.py", [*redis]),
        ("P8", "fresh_clone.py", []),
        ("P9", "order_paid.py", [*runs, "--seconds", "10" if q else "20", *redis]),
    ]


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="goals to run, e.g. P1,P9")
    ap.add_argument("--redis-db", default=os.environ.get("BARID_TEST_REDIS_DB", "14"))
    args = ap.parse_args()
    only = {g.strip().upper() for g in args.only.split(",") if g.strip()}
    rows: list[dict] = []
    missing = []
    started = time.monotonic()
    for goals, script, script_args in plan(args.quick, args.redis_db):
        if only and not only & set(goals.split()):
            continue
        got = run(script, *script_args)
        rows.extend(got)
        if not got:
            missing.append(f"{goals} ({script} failed: see above)")

    print(f"\n{'medians of 1 short run (--quick)' if args.quick else 'medians of 3 runs'} "
          f"unless the conditions say otherwise; {os.cpu_count()} CPUs; "
          f"{time.monotonic() - started:.0f} s in all")
    print(f"{'work':30} {'Barid':>9}  {'baseline':14} {'':>9}  {'ratio':>5}  "
          f"{'p50/p99 ms':>13}  {'load':>4}  conditions")
    for r in rows:
        lat = (f"{fmt(r.get('p50'))}/{fmt(r.get('p99'))}"
               if r.get("p50") is not None else "-")
        print(f"{r['work']:30} {r['barid']:9.1f}  {r['baseline_name']:14} "
              f"{fmt(r.get('baseline'), '9.1f'):>9}  {fmt(r.get('ratio'), '5.2f'):>5}  "
              f"{lat:>13}  {fmt(r.get('load'), '4.1f'):>4}  {r['conditions']}")
    for m in missing:
        print(f"{m:30} not measured")


if __name__ == "__main__":
    main()
