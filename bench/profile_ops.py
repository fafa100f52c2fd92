"""Round trips and profiles per operation, for P1 (tracking lookup), P3 (bulk ingest)
and P5 (ledger transfer), on a scratch PostgreSQL database.

Counts the statements each operation sends (a SQLAlchemy before_cursor_execute listener:
an executemany counts once; BEGIN and COMMIT are not statements and are listed apart)
and prints the top functions by cumulative time from cProfile.

    .venv/bin/python bench/profile_ops.py [--parcels 2000] [--batch 2000] [--top 12]
        [--only p1,p3,p5] [--codes EDD,EDE]

Creates its own database and drops it at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.on = False

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            self.statements.append(statement.split(None, 3)[0].upper()
                                   + (" (many)" if executemany else ""))

    def note(self, what: str) -> None:
        if self.on:
            self.statements.append(what)

    @contextmanager
    def counting(self):
        self.statements = []
        self.on = True
        try:
            yield self
        finally:
            self.on = False


DRIVER = {"statements": 0}


def _count_driver_statements() -> None:
    """Count what the driver sends, whoever calls it (SQLAlchemy or a service's own
    cursor): each execute and COPY as one statement, an executemany as one per row."""
    cls = psycopg.Cursor
    execute, executemany, copy = cls.execute, cls.executemany, cls.copy

    def counted_execute(self, *a, **k):
        DRIVER["statements"] += 1
        return execute(self, *a, **k)

    def counted_executemany(self, query, params, *a, **k):
        params = list(params)
        DRIVER["statements"] += len(params)
        return executemany(self, query, params, *a, **k)

    def counted_copy(self, *a, **k):
        DRIVER["statements"] += 1
        return copy(self, *a, **k)

    cls.execute, cls.executemany, cls.copy = (counted_execute, counted_executemany,
                                              counted_copy)


def profile(label: str, fn, repeat: int, counter: Counter, top: int) -> None:
    fn()  # warm: compiled statement caches, pools
    before = DRIVER["statements"]
    with counter.counting():
        fn()
    sent = DRIVER["statements"] - before
    per_op = list(counter.statements)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(repeat):
        fn()
    prof.disable()
    elapsed = (time.perf_counter() - t0) / repeat
    kinds: dict[str, int] = {}
    for s in per_op:
        kinds[s] = kinds.get(s, 0) + 1
    print(f"\n== {label}: {len(per_op)} round trips per operation "
          f"({', '.join(f'{k} x{v}' for k, v in sorted(kinds.items()))}); "
          f"{1000 * elapsed:.2f} ms per operation under the profiler; "
          f"{sent} statements sent by the driver (an executemany's rows each, a COPY "
          f"one, BEGIN/COMMIT not)")
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats(os.environ.get("BARID_PROFILE_SORT", "cumulative")).print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    for ln in lines[start:start + top + 1]:
        print("   " + ln[:150])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--only", default="p1,p3,p5")
    ap.add_argument("--codes", default="EDD,EDE",
                    help="P3's event codes: EDD,EDE come after the fill's last stage "
                         "(flagged, no status change); EDF,EDH change every parcel's "
                         "status (one published event and its jobs per parcel)")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    only = set(args.only.split(","))

    name = f"barid_bench_profile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = "postgresql+psycopg://" + ADMIN.rsplit("/", 1)[0].removeprefix(
        "postgresql://") + f"/{name}"
    try:
        from app import create_app
        from app.database import Base, db, get_engine
        from app.models_registry import load_all
        from bench.tracking_fill import fill

        app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                          "TRACKING_LOOKUPS_PER_MINUTE": 0, "BULK_MAX_ROWS": 100_000,
                          "PIN_ARGON2_TIME_COST": 1, "PIN_ARGON2_MEMORY_KIB": 1024,
                          "PIN_ARGON2_PARALLELISM": 1, "PAYMENTS_CARD_MAX_BALANCE": 10**12,
                          "PAYMENTS_TOPUP_MAX": 10**12})
        load_all()
        Base.metadata.create_all(get_engine())
        numbers = fill(url, args.parcels, 10)
        counter = Counter()
        event.listen(get_engine(), "before_cursor_execute", counter)
        _count_driver_statements()
        # psycopg opens a transaction with its own BEGIN before the first statement, and
        # the pool rolls back a returned connection: round trips too.
        event.listen(get_engine(), "begin", lambda conn: counter.note("BEGIN"))
        event.listen(get_engine(), "commit", lambda conn: counter.note("COMMIT"))
        event.listen(get_engine(), "rollback", lambda conn: counter.note("ROLLBACK"))
        event.listen(get_engine().pool, "reset",
                     lambda dbapi_conn, rec, state: counter.note("RESET"))
        rng = random.Random(1)

        if "p1" in only:
            client = app.test_client()

            def lookup_json() -> None:
                r = client.get("/api/v1/tracking/" + rng.choice(numbers))
                assert r.status_code == 200, r.status_code

            def lookup_html() -> None:
                r = client.get("/track/" + rng.choice(numbers))
                assert r.status_code == 200, r.status_code

            profile("P1 GET /api/v1/tracking/<n>", lookup_json, 300, counter, args.top)
            profile("P1 GET /track/<n> (HTML)", lookup_html, 300, counter, args.top)

        if "p3" in only:
            from tracking.services import bulk

            seq = iter(range(10**9))

            def ingest() -> None:
                now = datetime.now(UTC)
                k = next(seq)
                rows = [{"tracking_number": rng.choice(numbers),
                         "code": rng.choice(args.codes.split(",")),
                         "occurred_at": (now - timedelta(minutes=args.batch - i)).isoformat(),
                         "event_id": f"prof-{k}-{i}", "office_code": "BGD-01"}
                        for i in range(args.batch)]
                with app.app_context():
                    batch = bulk.submit_batch(rows, source="api", partner="bench")
                    db.commit()
                    b = bulk.process_batch(batch.id)
                    db.commit()
                    # A few rows repeat a scan (same code, same office, minutes apart).
                    assert b.rejected == 0, (b.accepted, b.duplicates, b.rejected)
                    db.remove()

            profile(f"P3 process_batch of {args.batch} events", ingest, 1, counter, args.top)

        if "p5" in only:
            from payments import cards as card_svc
            from payments import ledger, services
            from payments.models import Account

            with app.app_context():
                ids = []
                for i in range(4):
                    c = card_svc.issue_card(holder_name="Bench", national_id=str(i),
                                            mobile="+9647700000000", pin="4826",
                                            user_id=None, clerk_id=None, office_id=None)
                    services.receive_cash(office_id=None, clerk_id=None, amount=10**9,
                                          currency="IQD", reference_kind="post_card",
                                          reference_id=str(c.id), purpose="card_topup",
                                          idempotency_key=f"bench-{c.id}")
                    ids.append(c.account_id)
                ledger.purpose_account("postage", "IQD")
                db.commit()
                db.remove()

            def transfer() -> None:
                with app.app_context():
                    card_acc = db.get(Account, rng.choice(ids))
                    revenue = ledger.purpose_account("postage", "IQD")
                    ledger.post_entry(idempotency_key=f"prof:{uuid.uuid4().hex}",
                                      kind="bench", legs=[ledger.debit(card_acc, 5),
                                                          ledger.credit(revenue, 5)])
                    db.commit()
                    db.remove()

            profile("P5 transfer (2 account loads + post_entry + commit)", transfer, 300,
                    counter, args.top)

            def post_only() -> None:
                with app.app_context():
                    card_acc = db.get(Account, rng.choice(ids))
                    revenue = ledger.purpose_account("postage", "IQD")
                    start = len(counter.statements)
                    ledger.post_entry(idempotency_key=f"prof:{uuid.uuid4().hex}",
                                      kind="bench", legs=[ledger.debit(card_acc, 5),
                                                          ledger.credit(revenue, 5)])
                    post_only.n = len(counter.statements) - start  # type: ignore[attr-defined]
                    db.commit()
                    db.remove()

            with counter.counting():
                post_only()
            print(f"   post_entry alone: {post_only.n} statements")  # type: ignore[attr-defined]
            with app.app_context():
                problems = ledger.verify()
                db.remove()
            print(f"   ledger verify: {problems if problems else 'ok'}")
        db.remove()
        get_engine().dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
