"""`make bench`: run the benchmarks and print one table of Barid against its baselines.

Each benchmark creates and drops its own PostgreSQL database and prints its own lines;
this collects the `BENCH <json>` line each ends with. Covered here: P1 (public tracking
lookup, wrk), P3 (bulk event ingest) and P5 (ledger transfers). The other goals of issue
15 (P2, P4, P6-P9) have benchmarks of their own in bench/ not yet wired in.

    python bench/run.py [--quick]   # --quick: 1 run of 3 s each, smaller data (a check)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / script), "--json", *args]
    print("$ " + " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if not line.startswith("BENCH "):
            print("  " + line)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return {}
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    return json.loads(last[-1][6:]) if last else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    quick = ["--runs", "1", "--seconds", "3"] if args.quick else []
    tracking = run("tracking.py", *quick, *(["--parcels", "10000", "--batch", "2000"]
                                             if args.quick else []))
    ledger = run("ledger.py", *quick)

    rows = []
    cond_t, cond_l = tracking.get("conditions", {}), ledger.get("conditions", {})
    where = f"{cond_t.get('database', '?')}, {os.cpu_count()} CPUs"
    if "p1" in tracking:
        p1 = tracking["p1"]
        j, h, b = p1["barid_json"], p1["barid_html"], p1["bare"]
        conds = (f"gunicorn -w 2, wrk 16 conns, {cond_t['rows']}, {where}, "
                 f"load {j['load']:.1f}")
        rows.append(("P1 tracking JSON (req/s)", j["rps"], "bare Flask", b["rps"],
                     p1["ratio"], f"{j['p50']:.0f}/{j['p99']:.0f} ms", conds))
        rows.append(("P1 tracking HTML (req/s)", h["rps"], "Barid JSON", j["rps"],
                     h["rps"] / j["rps"], f"{h['p50']:.0f}/{h['p99']:.0f} ms", conds))
    if "p3" in tracking:
        p3 = tracking["p3"]
        rows.append(("P3 bulk ingest (events/s)", p3["rate"], "COPY", p3["copy"],
                     p3["ratio"], "-", f"1 process, {cond_t['rows']}, executemany "
                     f"{p3['executemany']:.0f}/s, load {p3['load']:.1f}"))
    if "p5" in ledger:
        p5 = ledger["p5"]
        rows.append(("P5 ledger transfers (/s)", p5["ledger"], "plain SQL", p5["baseline"],
                     p5["ratio"], "-", f"{cond_l['clients']} processes, {cond_l['rows']}, "
                     f"pgbench TPC-B {p5['pgbench']:.0f} tps (ratio "
                     f"{p5['ratio_pgbench']:.2f}), load {p5['load']:.1f}"))
    runs = cond_t.get("runs") or cond_l.get("runs") or "?"
    print(f"\nmedians of {runs} runs")
    print(f"{'work':27} {'Barid':>9}  {'baseline':12} {'':>9}  {'ratio':>5}  "
          f"{'p50/p99':>12}  conditions")
    for work, barid, base_name, base, ratio, lat, conds in rows:
        print(f"{work:27} {barid:9.0f}  {base_name:12} {base:9.0f}  {ratio:5.2f}  "
              f"{lat:>12}  {conds}")
    for goal in ("P2", "P4", "P6", "P7", "P8", "P9"):
        print(f"{goal:27} {'-':>9}  not in make bench yet (see bench/)")


if __name__ == "__main__":
    main()
