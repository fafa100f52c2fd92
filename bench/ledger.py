"""Ledger transfers per second: 16 concurrent clients on PostgreSQL, beside a baseline.

Each client is a process (as gunicorn workers are) with its own connection.

The ledger path is `payments.ledger.post_entry` (idempotency-key lookup, row locks in id
order with SELECT ... FOR UPDATE, overdraft check, insert of the entry under its unique
key, two postings, two cached-balance updates, one commit). The baseline does the same
work as plain SQL (psycopg, no ORM): the same lock read in id order, overdraft check,
unique key, indexes and foreign keys. The bare plain-SQL figure (inserts and updates
only, no checks: what this benchmark compared with first) is printed beside it. Each
transfer moves 1..500 IQD from one of CARDS post cards to one revenue account, so every
path contends on that row.

    .venv/bin/python bench/ledger.py [--clients 16] [--seconds 10] [--cards 64]

Needs the local PostgreSQL (BARID_BENCH_PG, default postgres@127.0.0.1:5432); creates a
scratch database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import row  # noqa: E402

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_clients(clients: int, seconds: float, setup, body) -> tuple[int, int]:
    """Run body(state, rnd) in a loop in `clients` processes for `seconds`.

    Processes, not threads, like gunicorn workers: each client has its own interpreter
    and connection. setup() runs once per process and returns its state.
    Returns (transfers done, refused).
    """
    ctx = mp.get_context("fork")
    done, refused = ctx.Value("q", 0), ctx.Value("q", 0)
    ready = ctx.Barrier(clients + 1)
    start_at = ctx.Value("d", 0.0)

    def loop(n: int) -> None:
        state = setup()
        rnd = random.Random(n)
        ready.wait()
        mine = bad = 0
        while time.time() < start_at.value + seconds:
            if body(state, rnd):
                mine += 1
            else:
                bad += 1
        with done.get_lock():
            done.value += mine
        with refused.get_lock():
            refused.value += bad

    procs = [ctx.Process(target=loop, args=(n,)) for n in range(clients)]
    for p in procs:
        p.start()
    start_at.value = time.time() + 0.5
    ready.wait()
    for p in procs:
        p.join()
    return done.value, refused.value


def prepare_ledger(url: str, cards: int) -> tuple[Any, list[int], int]:
    """The app on `url` with its schema, `cards` topped-up post cards and the revenue
    account; returns (app, the cards' account ids, the revenue account's id)."""
    from app import create_app
    from app.database import Base, db, get_engine, init_engine
    from app.models_registry import load_all
    from payments import cards as card_svc
    from payments import ledger, services

    app = create_app({"DATABASE_URL": url, "TESTING": True, "REDIS_URL": None,
                      "PIN_ARGON2_TIME_COST": 1, "PIN_ARGON2_MEMORY_KIB": 1024,
                      "PIN_ARGON2_PARALLELISM": 1, "PAYMENTS_CARD_MAX_BALANCE": 10**12,
                      "PAYMENTS_TOPUP_MAX": 10**12})
    load_all()
    get_engine().dispose()
    init_engine(url, pool_pre_ping=False)
    with app.app_context():
        Base.metadata.create_all(get_engine())
        ids = []
        for i in range(cards):
            c = card_svc.issue_card(holder_name="Bench", national_id=str(i),
                                    mobile="+9647700000000", pin="4826", user_id=None,
                                    clerk_id=None, office_id=None)
            services.receive_cash(office_id=None, clerk_id=None, amount=10**9, currency="IQD",
                                  reference_kind="post_card", reference_id=str(c.id),
                                  purpose="card_topup", idempotency_key=f"bench-{c.id}")
            ids.append(c.account_id)
        revenue_id = ledger.purpose_account("postage", "IQD").id
        db.commit()
        db.remove()
    get_engine().dispose()
    return app, ids, revenue_id


def ledger_transfer(app: Any, ids: list[int], revenue_id: int, rnd: random.Random) -> bool:
    """One transfer through post_entry in its own transaction; False when refused.

    The caller knows both account ids, as the baseline does, and loads the two accounts
    in one SELECT (until 2026-12-01: db.get of the card, then the revenue account by its
    code, two round trips the baseline does not make)."""
    from sqlalchemy import select

    from app.database import db
    from payments import ledger
    from payments.errors import InsufficientFunds
    from payments.models import Account

    with app.app_context():
        try:
            card_id = rnd.choice(ids)
            both = {a.id: a for a in db.scalars(
                select(Account).where(Account.id.in_([card_id, revenue_id])))}
            card_acc, revenue = both[card_id], both[revenue_id]
            amount = rnd.randint(1, 500)
            ledger.post_entry(idempotency_key=f"bench:{uuid.uuid4().hex}", kind="bench",
                              legs=[ledger.debit(card_acc, amount),
                                    ledger.credit(revenue, amount)])
            db.commit()
            return True
        except InsufficientFunds:
            db.rollback()
            return False
        finally:
            db.remove()


def bench_ledger(url: str, clients: int, seconds: float, cards: int) -> tuple[float, int, str]:
    from app.database import db, get_engine, init_engine
    from payments import ledger

    app, ids, revenue_id = prepare_ledger(url, cards)

    def setup():
        init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        return None

    def transfer(_state, rnd: random.Random) -> bool:
        return ledger_transfer(app, ids, revenue_id, rnd)

    done, refused = run_clients(clients, seconds, setup, transfer)
    init_engine(url, pool_pre_ping=False)
    with app.app_context():
        problems = ledger.verify()
        db.remove()
    get_engine().dispose()
    verdict = "ledger verify: ok" if not problems else f"ledger verify: {problems}"
    return done / seconds, refused, verdict


BASELINE_SCHEMA = """
    CREATE TABLE b_accounts (id bigserial PRIMARY KEY, balance bigint NOT NULL,
                             no_overdraft boolean NOT NULL DEFAULT true);
    CREATE TABLE b_entries (id bigserial PRIMARY KEY, key varchar(200) NOT NULL UNIQUE,
                            kind text, created_at timestamptz DEFAULT now());
    CREATE INDEX ON b_entries (created_at);
    CREATE TABLE b_postings (id bigserial PRIMARY KEY,
                             entry_id bigint NOT NULL REFERENCES b_entries (id),
                             account_id bigint NOT NULL REFERENCES b_accounts (id),
                             amount bigint NOT NULL CHECK (amount <> 0), currency text);
    CREATE INDEX ON b_postings (entry_id);
    CREATE INDEX ON b_postings (account_id, id);
"""


def bench_baseline(url: str, clients: int, seconds: float, cards: int, *,
                   fair: bool = True) -> float:
    """Plain SQL with psycopg, no ORM. fair=True does the ledger's work: the accounts
    locked in id order with their balances read (SELECT ... FOR UPDATE), the overdraft
    check, the entry inserted under a unique idempotency key, its postings and both
    balances, with the ledger's indexes and foreign keys. fair=False is the bare
    script this benchmark started with: the inserts and updates only, no lock read, no
    check, no unique key, no foreign keys (kept to show what the checks cost)."""
    dsn = url
    with psycopg.connect(dsn, autocommit=True) as conn:
        if fair:
            conn.execute(BASELINE_SCHEMA)
        else:
            conn.execute("""
                CREATE TABLE b_accounts (id bigserial PRIMARY KEY, balance bigint NOT NULL);
                CREATE TABLE b_entries (id bigserial PRIMARY KEY, key text, kind text,
                                        created_at timestamptz DEFAULT now());
                CREATE TABLE b_postings (id bigserial PRIMARY KEY, entry_id bigint,
                                         account_id bigint, amount bigint, currency text);
            """)
        conn.execute("INSERT INTO b_accounts (balance) SELECT 1000000000 FROM "
                     "generate_series(1, %s)", (cards + 1,))

    def setup():
        return psycopg.connect(dsn)

    def transfer(conn, rnd: random.Random) -> bool:
        card, revenue = rnd.randint(2, cards + 1), 1
        amount = rnd.randint(1, 500)
        with conn.transaction():
            if fair:
                locked = conn.execute(
                    "SELECT id, balance, no_overdraft FROM b_accounts WHERE id = ANY(%s) "
                    "ORDER BY id FOR UPDATE", ([revenue, card],)).fetchall()
                if any(no_od and bal - (amount if acc == card else 0) < 0
                       for acc, bal, no_od in locked):
                    return False
                got = conn.execute("INSERT INTO b_entries (key, kind) VALUES (%s, 'bench') "
                                   "ON CONFLICT (key) DO NOTHING RETURNING id",
                                   (uuid.uuid4().hex,)).fetchone()
                if got is None:
                    return False
                entry = got[0]
            else:
                entry = conn.execute("INSERT INTO b_entries (key, kind) VALUES (%s, 'bench') "
                                     "RETURNING id", (uuid.uuid4().hex,)).fetchone()[0]
            conn.execute("INSERT INTO b_postings (entry_id, account_id, amount, currency) "
                         "VALUES (%s, %s, %s, 'IQD'), (%s, %s, %s, 'IQD')",
                         (entry, card, amount, entry, revenue, -amount))
            conn.execute("UPDATE b_accounts SET balance = balance - %s WHERE id = %s",
                         (amount, card))
            conn.execute("UPDATE b_accounts SET balance = balance + %s WHERE id = %s",
                         (amount, revenue))
        return True

    done, _ = run_clients(clients, seconds, setup, transfer)
    return done / seconds


def bench_pgbench(url: str, clients: int, seconds: float) -> float:
    """pgbench's TPC-B-like script on a scale-1 database: the machine's transaction rate."""
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", url], check=True, capture_output=True)
    out = subprocess.run(["pgbench", "-c", str(clients), "-j", "2", "-T",
                          str(max(1, int(seconds))), url], check=True, capture_output=True,
                         text=True).stdout
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--cards", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true",
                        help="end with a line `BENCH <json>` for bench/run.py")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        names = [f"barid_bench_{uuid.uuid4().hex[:8]}" for _ in range(4)]
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN.rsplit("/", 1)[0]
        try:
            load = os.getloadavg()[0]
            ledger_tps, refused, verdict = bench_ledger(
                f"{base}/{names[0]}".replace("postgresql://", "postgresql+psycopg://"),
                args.clients, args.seconds, args.cards)
            baseline_tps = bench_baseline(f"{base}/{names[1]}", args.clients, args.seconds,
                                          args.cards)
            bare_tps = bench_baseline(f"{base}/{names[2]}", args.clients, args.seconds,
                                      args.cards, fair=False)
            pgbench_tps = bench_pgbench(f"{base}/{names[3]}", args.clients, args.seconds)
        finally:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        runs.append({"ledger": ledger_tps, "baseline": baseline_tps, "pgbench": pgbench_tps,
                     "bare": bare_tps, "load": load, "refused": refused})
        print(f"  run: ledger {ledger_tps:.0f}/s ({refused} refused; {verdict}), plain SQL "
              f"{baseline_tps:.0f}/s (bare {bare_tps:.0f}/s), pgbench TPC-B {pgbench_tps:.0f} tps "
              f"(load before {load:.1f})")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"PostgreSQL {version}, {args.clients} concurrent clients (processes), "
          f"{args.seconds:.0f} s each, {args.cards} cards -> 1 revenue account, "
          f"{os.cpu_count()} CPUs; medians of {args.runs}")
    print(f"ledger (post_entry, locks + checks + idempotency): {med['ledger']:8.0f} transfers/s")
    print(f"baseline (plain SQL, the same locks and checks):   {med['baseline']:8.0f} transfers/s")
    print(f"bare plain SQL (inserts/updates, no checks):       {med['bare']:8.0f} transfers/s")
    print(f"pgbench TPC-B:                                     {med['pgbench']:8.0f} tps")
    print(f"ratio ledger/baseline: {med['ledger'] / med['baseline']:.2f}; "
          f"ledger/pgbench: {med['ledger'] / med['pgbench']:.2f}; "
          f"ledger/bare: {med['ledger'] / med['bare']:.2f}")
    if args.json:
        rows = [row("P5", "P5 ledger transfers (/s)", med["ledger"], "plain SQL",
                    med["baseline"], conditions=f"{args.clients} processes, {args.cards} "
                    f"cards, PostgreSQL {version}; pgbench TPC-B {med['pgbench']:.0f} tps, "
                    f"ledger/pgbench {med['ledger'] / med['pgbench']:.2f}; bare plain SQL (no "
                    f"lock read, checks or unique key) {med['bare']:.0f}/s, ledger/bare "
                    f"{med['ledger'] / med['bare']:.2f}",
                    load=med["load"], runs=args.runs)]
        print("BENCH " + json.dumps({"rows": rows, "conditions": {
            "database": f"PostgreSQL {version}", "clients": args.clients,
            "cpus": os.cpu_count(), "rows": f"{args.cards} cards", "runs": args.runs},
            "p5": {**med, "ratio": med["ledger"] / med["baseline"],
                   "ratio_pgbench": med["ledger"] / med["pgbench"],
                   "ratio_bare": med["ledger"] / med["bare"]}}))


if __name__ == "__main__":
    main()
