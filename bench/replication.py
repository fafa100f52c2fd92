"""Post-card payments per second on the two sites, with synchronous and with
asynchronous replication, in one run; and the standby's lag under that load.

Sets up Baghdad (primary) and Basra (standby) with deploy/pg-site.sh on spare ports,
builds Barid's schema on Baghdad, issues CARDS post cards, then runs CLIENTS processes
paying at the counter (`payments.services.pay_with_post_card`: PIN check, row lock,
balance check, ledger entry, outbox row, one commit) for SECONDS in each mode,
alternating synchronous and asynchronous ROUNDS times. While they run, a sampler reads
`pg_stat_replication` on Baghdad every 0.2 s. Prints the median of each mode, their
ratio and the conditions.

    .venv/bin/python bench/replication.py [--clients 8] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.throwaway import free_port  # noqa: E402

PG_SITE = str(ROOT / "deploy" / "pg-site.sh")
PIN = "7305"


def _sql(port: int, statement: str, dbname: str = "postgres"):
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname,
                         autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else None


def _app(url: str):
    os.environ["DATABASE_URL"] = url
    os.environ["MAIL_BACKEND"] = "memory"
    from app import create_app

    return create_app()


def _setup(url: str, cards: int) -> dict:
    from app.auth.models import PostOffice, Role
    from app.auth.services import create_user
    from app.database import Base, db, get_engine, unit_of_work
    from payments import services as pay

    app = _app(url)
    with app.app_context():
        Base.metadata.create_all(get_engine())
        with unit_of_work():
            office = PostOffice(code="BGD-BENCH", name_ar="بغداد", name_en="Baghdad",
                                governorate="IQ-BG")
            db.add(office)
            db.flush()
            clerk = create_user("Bench Clerk", email="clerk@bench.iq",
                                password="bench-password-2026", roles=(Role.CLERK,),
                                post_office_code=office.code)
            numbers = []
            for i in range(cards):
                card = pay.issue_card_at_counter(
                    holder_name=f"Holder {i}", national_id=f"1990{i:08d}",
                    mobile=f"+96477{i:08d}", pin=PIN, account_email=None,
                    clerk_id=clerk.id, office_id=office.id)
                pay.cash_top_up(card.id, amount=1_000_000, clerk_id=clerk.id,
                                office_id=office.id, idempotency_key=f"seed-{i}")
                numbers.append(card.number)
        return {"clerk": clerk.id, "cards": numbers}


def _client(n: int, clients: int, url: str, state: dict, seconds: float, start, ready,
            done) -> None:
    from app.database import unit_of_work
    from payments import services as pay

    app = _app(url)
    ok = 0
    with app.app_context(), app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.1.1"}):
        ready.wait()
        while start.value == 0.0:  # the parent stamps the start just after the barrier
            time.sleep(0.001)
        end = start.value + seconds
        i = 0
        # Each client pays from its own cards, so no two wait on one card's PIN check.
        mine = state["cards"][n::clients]
        while time.time() < end:
            number = mine[i % len(mine)]
            try:
                with unit_of_work():
                    pay.pay_with_post_card(
                        card_number=number, pin=PIN, amount=250, currency="IQD",
                        reference_kind="bench", reference_id=f"{n}-{i}", purpose="postage",
                        idempotency_key=f"bench-{os.getpid()}-{time.time_ns()}",
                        actor_id=state["clerk"], at_counter=True)
                ok += 1
            except Exception as exc:  # counted apart; a refused payment is not a payment
                print(f"client {n}: {type(exc).__name__}: {exc}", file=sys.stderr)
            i += 1
    with done.get_lock():
        done.value += ok


def _run(url: str, state: dict, clients: int, seconds: float, port: int) -> dict:
    ctx = mp.get_context("spawn")  # each client a fresh interpreter, as a web worker
    done = ctx.Value("q", 0)
    ready = ctx.Barrier(clients + 1)
    start = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_client, args=(n, clients, url, state, seconds, start, ready, done))
             for n in range(clients)]
    for p in procs:
        p.start()
    lags: list[tuple[int, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            row = _sql(port, "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), "
                             "replay_lsn)), 0), coalesce(max(extract(epoch FROM "
                             "replay_lag)), 0) FROM pg_stat_replication")[0]
            lags.append((int(row[0]), float(row[1])))
            time.sleep(0.2)

    ready.wait()
    start.value = time.time()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for p in procs:
        p.join()
    stop.set()
    sampler.join()
    took = max(time.time() - start.value, seconds)
    return {"per_s": done.value / took,
            "lag_bytes_p50": statistics.median(b for b, _ in lags) if lags else 0,
            "lag_bytes_max": max((b for b, _ in lags), default=0),
            "lag_s_max": max((s for _, s in lags), default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cards", type=int, default=64)
    parser.add_argument("--light-pin", action="store_true",
                        help="hash PINs with argon2's smallest cost, so what the run "
                             "measures is the commit, not the PIN hash")
    args = parser.parse_args()
    if args.light_pin:
        os.environ.update(PIN_ARGON2_TIME_COST="1", PIN_ARGON2_MEMORY_KIB="1024",
                          PIN_ARGON2_PARALLELISM="1")

    base = Path(tempfile.mkdtemp(prefix="barid-bench-sites-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    ports = {"baghdad": free_port(), "basra": free_port()}
    dirs = {name: str(base / name) for name in ports}
    try:
        subprocess.run([PG_SITE, "primary", "baghdad", str(ports["baghdad"]),
                        dirs["baghdad"], "basra"], check=True, capture_output=True)
        subprocess.run([PG_SITE, "standby", "basra", str(ports["basra"]), dirs["basra"],
                        str(ports["baghdad"])], check=True, capture_output=True)
        _sql(ports["baghdad"], "CREATE DATABASE barid")
        url = f"postgresql://postgres@127.0.0.1:{ports['baghdad']}/barid"
        state = _setup(url, args.cards)
        results: dict[str, list[dict]] = {"synchronous": [], "asynchronous": []}
        load = os.getloadavg()[0]
        for _ in range(args.rounds):
            for mode, names in (("synchronous", "basra"), ("asynchronous", "")):
                _sql(ports["baghdad"], f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
                _sql(ports["baghdad"], "SELECT pg_reload_conf()")
                time.sleep(0.5)
                results[mode].append(_run(url, state, args.clients, args.seconds,
                                          ports["baghdad"]))
        med = {m: statistics.median(r["per_s"] for r in rs) for m, rs in results.items()}
        pin = ("argon2 at its smallest cost (--light-pin)" if args.light_pin
               else "argon2 at the production cost")
        print(f"conditions: {args.clients} client processes paying by post card at the "
              f"counter (PIN hashed with {pin}), {args.cards} cards, "
              f"{args.seconds:.0f} s a run, {args.rounds} "
              f"rounds alternating; PostgreSQL "
              f"{_sql(ports['baghdad'], 'SHOW server_version')[0][0]} primary and standby "
              f"on this host ({os.cpu_count()} cores); load average before: {load:.1f}")
        print(f"{'replication':<14}{'payments/s (median)':>22}{'runs':>30}"
              f"{'lag p50 / max bytes':>24}{'lag max s':>12}")
        for mode, rs in results.items():
            runs = ", ".join(f"{r['per_s']:.1f}" for r in rs)
            lag50 = statistics.median(r["lag_bytes_p50"] for r in rs)
            lagmax = max(r["lag_bytes_max"] for r in rs)
            lags = max(r["lag_s_max"] for r in rs)
            print(f"{mode:<14}{med[mode]:>22.1f}{runs:>30}{lag50:>14.0f} / {lagmax:<8}"
                  f"{lags:>11.3f}")
        print(f"synchronous / asynchronous: {med['synchronous'] / med['asynchronous']:.2f}")
    finally:
        for d in dirs.values():
            subprocess.run([PG_SITE, "stop", d, "immediate"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
