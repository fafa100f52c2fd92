"""Where one ledger transfer's time goes: statements (round trips) and CPU per transfer,
in one process against PostgreSQL, with the same transfer body as bench/ledger.py.

    .venv/bin/python bench/ledger_profile.py [--transfers 500] [--profile]

Creates a scratch database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import random
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ledger import ADMIN, ledger_transfer, prepare_ledger  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=500)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+psycopg://")
    try:
        from sqlalchemy import event

        from app.database import get_engine, init_engine

        app, ids, revenue_id = prepare_ledger(url, 16)
        init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        stmts: collections.Counter[str] = collections.Counter()
        event.listen(get_engine(), "before_cursor_execute",
                     lambda c, cur, s, p, ctx, many: stmts.update([" ".join(s.split())[:90]]))
        commits = collections.Counter()
        event.listen(get_engine(), "commit", lambda c: commits.update(["COMMIT"]))
        event.listen(get_engine(), "rollback", lambda c: commits.update(["ROLLBACK"]))
        rnd = random.Random(1)
        for _ in range(50):
            ledger_transfer(app, ids, revenue_id, rnd)
        stmts.clear()
        commits.clear()
        prof = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for _ in range(args.transfers):
            ledger_transfer(app, ids, revenue_id, rnd)
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        n = args.transfers
        print(f"{n} transfers: CPU {1000 * cpu / n:.2f} ms, wall {1000 * wall / n:.2f} ms "
              "per transfer (this process)")
        print(f"statements per transfer: {sum(stmts.values()) / n:.2f} "
              f"(+ {sum(commits.values()) / n:.2f} commit/rollback; BEGIN is implicit)")
        for s, k in stmts.most_common():
            print(f"  {k / n:5.2f}  {s}")
        for s, k in commits.items():
            print(f"  {k / n:5.2f}  {s}")
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
            print(out.getvalue())
        get_engine().dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
