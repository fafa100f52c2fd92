"""P4: orders placed per second with post-card payment, 16 clients, on PostgreSQL.

Each client is a process (as gunicorn workers are) with its own connection and its own
shopper, who pays with their own post card (a hold on the card: PIN checked with
argon2id before any stock row is locked, the card's ledger accounts locked after the
stock rows). One order = add one product to the cart (shop.services.cart.add_to_cart,
commits), price the cart for the shopper's address (checkout.quote_cart) and place it
(checkout.place_order: cart locked, the cart priced again and the PIN checked for that
total, then the stock rows locked, stock taken with a conditional UPDATE, order +
consignment + line + history + outbox rows, the hold on the card, one commit). p50/p99
are per order. Each client places 2 untimed orders first: --hot-stock must exceed
2 x --clients, or the hot product sells out during the warm-up.

Two catalogs: "spread" (each order picks one of 500 products: little contention) and
"hot" (every order takes the same product, whose stock is --hot-stock units: all clients
queue on one stock row until it is sold out; the rate is units sold over the time to
sell them, and the units sold must equal the stock exactly, no more, no fewer).

Every run checks zero oversell: orders = units taken from stock = holds on cards, and no
stock below zero. The argon2id cost of PIN checks is --argon2 "test" (t=1, 1 MiB, 1
lane: the test suite's) or "production" (payments/settings.py defaults: t=3, 64 MiB, 4
lanes); the time one PIN check takes at both is measured and reported beside the order
time. Statements per order are counted in one client. Medians of --runs runs (3;
--quick: 1 short run), each on a fresh database created here and dropped afterwards.
The last line is `BENCH {json}` for bench/run.py.

    .venv/bin/python bench/checkout.py [--quick] [--runs 3] [--seconds 5] [--clients 16]
        [--catalogs spread,hot] [--hot-stock 400] [--argon2 test|production] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PRODUCTS = {"spread": 500, "hot": 1}
PIN = "482913"
ARGON2 = {"test": dict(PIN_ARGON2_TIME_COST=1, PIN_ARGON2_MEMORY_KIB=1024,
                       PIN_ARGON2_PARALLELISM=1),
          "production": {}}  # payments/settings.py's defaults
BIG = 10**8


def _config(url: str, argon2: str) -> dict:
    # Room on each card for every order of a run (limits that guard real cards' top-ups).
    return {"DATABASE_URL": url, "TESTING": True, "REDIS_URL": None, "MAIL_BACKEND": "memory",
            "PAYMENTS_TOPUP_MAX": BIG, "PAYMENTS_CARD_MAX_BALANCE": BIG, **ARGON2[argon2]}


def _prepare(url: str, clients: int, products: int, stock: int, argon2: str):
    from app import create_app
    from app.auth.models import User
    from app.auth.services import create_post_office, create_user
    from app.database import Base, db, get_engine, init_engine, unit_of_work
    from app.models_registry import load_all
    from payments.cards import issue_card
    from payments.services import cash_top_up
    from shop.models import Address, Category, Merchant, Product

    app = create_app(_config(url, argon2))
    load_all()
    init_engine(url, pool_pre_ping=False)
    with app.test_request_context("/"):
        Base.metadata.create_all(get_engine())
        with unit_of_work():
            office = create_post_office("BGD-01", "مكتب بريد بغداد", "Baghdad Post Office",
                                        "IQ-BG")
            clerk = create_user("Clerk", email="clerk@bench.iq", password="correct horse 42",
                                roles=["clerk"], post_office_code="BGD-01")
            owner = User(email="owner@bench.iq", full_name="Owner", password_hash="x")
            db.add(owner)
            db.flush()
            shop = Merchant(slug="bench", name_ar="متجر", name_en="Shop", owner_id=owner.id,
                            status="active", governorate="IQ-BG")
            cat = Category(slug="bench", name_ar="قسم", name_en="Shelf")
            db.add_all([shop, cat])
            db.flush()
            db.add_all([Product(merchant_id=shop.id, category_id=cat.id,
                                title_ar=f"منتج {i}", title_en=f"Product {i}",
                                price=10_000 + i, stock=stock, weight_g=500,
                                hs_code="851712", origin_country="IQ")
                        for i in range(products)])
            people = []
            for n in range(clients):
                u = User(email=f"shopper{n}@bench.iq", full_name=f"Shopper {n}",
                         password_hash="x")
                db.add(u)
                db.flush()
                a = Address(user_id=u.id, recipient_name="زينب", phone="+9647701234567",
                            governorate=random.choice(["IQ-BG", "IQ-BA", "IQ-AR"]),
                            district="الكرادة", landmark="قرب الجامع")
                db.add(a)
                card = issue_card(holder_name=f"Shopper {n}", national_id=f"19900{n:05d}",
                                  mobile="07701234567", pin=PIN, user_id=u.id,
                                  clerk_id=clerk.id, office_id=office.id)
                cash_top_up(card.id, amount=BIG // 2, clerk_id=clerk.id, office_id=office.id,
                            idempotency_key=f"bench-{n}")
                db.flush()
                people.append((u.id, a.id, card.id))
            ids = list(db.scalars(db.query(Product.id).statement))
        db.remove()
    get_engine().dispose()
    return app, people, ids


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def run(url: str, clients: int, seconds: float, catalog: str, hot_stock: int,
        argon2: str, profile: bool = False) -> dict:
    stock = hot_stock if catalog == "hot" else BIG
    app, people, product_ids = _prepare(url, clients, PRODUCTS[catalog], stock, argon2)
    ctx = mp.get_context("fork")
    ready, go = ctx.Barrier(clients + 1), ctx.Barrier(clients + 1)
    out = ctx.Queue()
    start_at = ctx.Value("d", 0.0)

    def loop(n: int) -> None:
        from sqlalchemy import event

        from app.auth.models import User
        from app.database import db, get_engine, init_engine, unit_of_work
        from shop.services import checkout
        from shop.services.cart import CartOwner, CartRefused, add_to_cart
        from shop.services.placing import SoldOut

        init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        stmts = [0]
        event.listen(get_engine(), "before_cursor_execute",
                     lambda *_a: stmts.__setitem__(0, stmts[0] + 1))
        user_id, address_id, card_id = people[n]
        rnd = random.Random(n)
        dest = {"method": "door", "address_id": address_id}
        pay = checkout.PaymentChoice("post_card", card_id=card_id, pin=PIN)
        prof = cProfile.Profile() if profile and n == 0 else None
        times: list[float] = []
        sold_out = errors = warm = 0
        last_ok = 0.0
        while True:
            if warm > 1:  # two untimed orders first: imports, the connection, caches
                if warm == 2:
                    ready.wait()
                    go.wait()  # the clock starts when every client is warm
                    times.clear()
                    stmts[0] = 0
                    warm += 1
                # The hot product's clients go on until it is sold out (at most 20 times
                # the run's time); the spread catalog's for the run's time.
                limit = seconds * (20 if catalog == "hot" else 1)
                if time.time() >= start_at.value + limit:
                    break
            else:
                warm += 1
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            with app.test_request_context("/"):
                try:
                    # As the pages do: adding to the cart, then placing, each its own
                    # unit of work (the services only flush).
                    with unit_of_work():
                        add_to_cart(CartOwner(user_id, {}), rnd.choice(product_ids), 1)
                    user = db.get(User, user_id)
                    quote = checkout.quote_cart(user, checkout.destination_for(user, **dest))
                    with unit_of_work():
                        checkout.place_order(user_id, dest, payment=pay,
                                             seen_digest=quote.digest,
                                             checkout_key=uuid.uuid4().hex)
                    times.append(time.perf_counter() - t0)
                    last_ok = time.time()
                except (SoldOut, CartRefused):  # the last units went to others
                    sold_out += 1
                    if catalog == "hot":
                        break  # sold out: this client is done
                except Exception as exc:  # noqa: BLE001 - counted and shown, never hidden
                    errors += 1
                    if errors == 1:
                        print(f"client {n}: {type(exc).__name__}: {exc}", file=sys.stderr)
                finally:
                    db.remove()
            if prof:
                prof.disable()
        if prof:
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(30)
            print(f"--- profile of client 0 ({len(times)} orders)\n{s.getvalue()}")
        out.put({"times": times, "sold_out": sold_out, "errors": errors, "last_ok": last_ok,
                 "stmts": stmts[0], "warm": 2})

    procs = [ctx.Process(target=loop, args=(n,)) for n in range(clients)]
    for p in procs:
        p.start()
    ready.wait()
    start_at.value = time.time()
    go.wait()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    done = sum(len(r["times"]) for r in results)
    times = [t for r in results for t in r["times"]]
    from shop.services.references import ORDER_KIND

    with psycopg.connect(url) as conn:
        orders = conn.execute("SELECT count(*) FROM shop_orders").fetchone()[0]
        taken = conn.execute(f"SELECT sum({stock} - stock) FROM products").fetchone()[0]
        lowest = conn.execute("SELECT min(stock) FROM products").fetchone()[0]
        holds = conn.execute("SELECT count(*) FROM payments WHERE reference_kind = %s "
                             "AND method = 'post_card'", (ORDER_KIND,)).fetchone()[0]
    # Zero oversell: every order took exactly its unit and held its money; none went below.
    warm = sum(r["warm"] for r in results)
    assert orders == taken == holds == done + warm, (orders, taken, holds, done, warm)
    assert lowest >= 0, lowest
    if catalog == "hot":
        assert taken == hot_stock, ("stock left unsold", taken, hot_stock)
        elapsed = max(r["last_ok"] for r in results) - start_at.value
    else:
        elapsed = seconds
    c0 = results[0]
    return {"rate": done / elapsed, "p50": 1000 * _pct(times, 0.5),
            "p99": 1000 * _pct(times, 0.99), "orders": done,
            "errors": sum(r["errors"] for r in results),
            "sold_out": sum(r["sold_out"] for r in results),
            "stmts": c0["stmts"] / max(1, len(c0["times"]))}


def pin_check_ms(argon2: str) -> float:
    """Milliseconds one argon2id PIN check takes at this cost (median of 5)."""
    from app import create_app
    from payments.cards import _hasher, _peppered

    app = create_app(_config("sqlite://", argon2))
    with app.app_context():
        hasher = _hasher()
        h = hasher.hash(_peppered(PIN))
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            hasher.verify(h, _peppered(PIN))
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short run")
    parser.add_argument("--json", action="store_true",
                        help="accepted for bench/run.py; the BENCH line is always printed")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--catalogs", default="spread,hot")
    parser.add_argument("--hot-stock", type=int, default=400)
    parser.add_argument("--argon2", choices=sorted(ARGON2), default="test")
    parser.add_argument("--profile", action="store_true", help="cProfile client 0")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds, args.hot_stock = 1, 3, 150
    if "hot" in args.catalogs.split(",") and args.hot_stock <= 2 * args.clients:
        # Every client's two warm-up orders come first; a client that finds the product
        # sold out then never reaches the start line, and the run would wait forever.
        parser.error(f"--hot-stock must be more than {2 * args.clients} (2 warm-up orders "
                     "per client)")
    logging.disable(logging.INFO)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    base = ADMIN.rsplit("/", 1)[0]
    pin_ms = {cost: pin_check_ms(cost) for cost in ARGON2}
    print(f"one PIN check (argon2id): test cost {pin_ms['test']:.1f} ms, production cost "
          f"{pin_ms['production']:.1f} ms; this run uses the {args.argon2} cost")
    rows = []
    for catalog in args.catalogs.split(","):
        results, loads = [], []
        for r in range(args.runs):
            name = f"barid_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                loads.append(os.getloadavg()[0])
                results.append(run(f"{base}/{name}", args.clients, args.seconds, catalog,
                                   args.hot_stock, args.argon2,
                                   profile=args.profile and r == 0))
            finally:
                with psycopg.connect(ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        med = {k: statistics.median(x[k] for x in results)
               for k in ("rate", "p50", "p99", "stmts")}
        errors = sum(x["errors"] for x in results)
        share = pin_ms[args.argon2] / med["p50"] if med["p50"] else 0
        what = (f"{PRODUCTS[catalog]} products" if catalog == "spread"
                else f"1 product, {args.hot_stock} units, sold out exactly")
        cond = (f"{args.clients} client processes, {what}, post card (hold), argon2id "
                f"{args.argon2} cost ({pin_ms[args.argon2]:.1f} ms a PIN check = "
                f"{100 * share:.0f} % of p50; production cost {pin_ms['production']:.0f} ms), "
                f"{med['stmts']:.1f} statements per order, {errors} errors, zero oversell "
                f"checked; PostgreSQL {version} local, {os.cpu_count()} CPUs, load average "
                f"{min(loads):.1f}-{max(loads):.1f}, medians of {args.runs} run(s)")
        print(f"{catalog:6}: {med['rate']:7.1f} orders/s, p50 {med['p50']:.1f} ms, "
              f"p99 {med['p99']:.1f} ms; {cond}")
        target = 200 if catalog == "spread" else 60
        rows.append({"goal": "P4", "work": f"checkout with post card, {catalog} catalog "
                                           "(orders/s)",
                     "barid": round(med["rate"], 1), "baseline_name": f"target {target} orders/s",
                     "baseline": None, "ratio": None, "p50": round(med["p50"], 1),
                     "p99": round(med["p99"], 1), "conditions": cond})
    print("BENCH " + json.dumps({"rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
