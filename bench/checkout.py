"""Orders placed per second on PostgreSQL with 1, 4 and 16 concurrent clients.

Each client is a process (as gunicorn workers are) with its own connection and its own
shopper. One order = add one product to the cart (shop.services.cart.add_to_cart,
commits), price the cart for the shopper's address (checkout.quote_cart) and place it
(checkout.place_order: cart and stock rows locked with SELECT ... FOR UPDATE, stock
decremented, order + consignment + line + history + order.placed outbox rows, one
commit). Payment is by bank card, which starts later, so no PIN hashing is measured.

Two catalogs: "spread" (each order picks one of 500 products: little contention) and
"hot" (every order takes the same product: all clients queue on one stock row).

    .venv/bin/python bench/checkout.py [--seconds 5] [--clients 1,4,16]

Needs the local PostgreSQL (BARID_BENCH_PG, default postgres@127.0.0.1:5432); creates a
scratch database per run and drops it afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import emit, load, row  # noqa: E402

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PRODUCTS = {"spread": 500, "hot": 1}


def _prepare(url: str, clients: int, products: int):
    from app import create_app
    from app.auth.models import User
    from app.database import Base, db, get_engine, init_engine
    from app.models_registry import load_all
    from shop.models import Address, Category, Merchant, Product

    app = create_app({"DATABASE_URL": url, "TESTING": True, "REDIS_URL": None})
    load_all()
    init_engine(url, pool_pre_ping=False)
    with app.app_context():
        Base.metadata.create_all(get_engine())
        owner = User(email="owner@bench.iq", full_name="Owner", password_hash="x")
        db.add(owner)
        db.flush()
        shop = Merchant(slug="bench", name_ar="متجر", name_en="Shop", owner_id=owner.id,
                        status="active", governorate="IQ-BG")
        cat = Category(slug="bench", name_ar="قسم", name_en="Shelf")
        db.add_all([shop, cat])
        db.flush()
        db.add_all([Product(merchant_id=shop.id, category_id=cat.id, title_ar=f"منتج {i}",
                            title_en=f"Product {i}", price=10_000 + i, stock=10**8,
                            weight_g=500, hs_code="851712", origin_country="IQ")
                    for i in range(products)])
        people = []
        for n in range(clients):
            u = User(email=f"shopper{n}@bench.iq", full_name=f"Shopper {n}", password_hash="x")
            db.add(u)
            db.flush()
            a = Address(user_id=u.id, recipient_name="زينب", phone="+9647701234567",
                        governorate=random.choice(["IQ-BG", "IQ-BA", "IQ-AR"]),
                        district="الكرادة", landmark="قرب الجامع")
            db.add(a)
            db.flush()
            people.append((u.id, a.id))
        ids = list(db.scalars(db.query(Product.id).statement))
        db.commit()
        db.remove()
    get_engine().dispose()
    return app, people, ids


def run(url: str, clients: int, seconds: float, catalog: str) -> tuple[int, int, int]:
    app, people, product_ids = _prepare(url, clients, PRODUCTS[catalog])
    ctx = mp.get_context("fork")
    done, failed = ctx.Value("q", 0), ctx.Value("q", 0)
    ready = ctx.Barrier(clients + 1)
    start_at = ctx.Value("d", 0.0)

    def loop(n: int) -> None:
        from app.auth.models import User
        from app.database import db, init_engine, unit_of_work
        from shop.services import checkout
        from shop.services.cart import CartOwner, add_to_cart

        init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        user_id, address_id = people[n]
        rnd = random.Random(n)
        dest = {"method": "door", "address_id": address_id}
        ready.wait()
        mine = bad = 0
        while time.time() < start_at.value + seconds:
            with app.app_context():
                try:
                    # As the pages do: adding to the cart, then placing, each its own
                    # unit of work (the services only flush).
                    with unit_of_work():
                        add_to_cart(CartOwner(user_id, {}), rnd.choice(product_ids), 1)
                    user = db.get(User, user_id)
                    quote = checkout.quote_cart(user, checkout.destination_for(user, **dest))
                    with unit_of_work():
                        checkout.place_order(user_id, dest,
                                             payment=checkout.PaymentChoice("stripe"),
                                             seen_digest=quote.digest,
                                             checkout_key=uuid.uuid4().hex)
                    mine += 1
                except Exception:
                    db.rollback()
                    bad += 1
                finally:
                    db.remove()
        with done.get_lock():
            done.value += mine
        with failed.get_lock():
            failed.value += bad

    procs = [ctx.Process(target=loop, args=(n,)) for n in range(clients)]
    for p in procs:
        p.start()
    start_at.value = time.time() + 0.5
    ready.wait()
    for p in procs:
        p.join()
    with psycopg.connect(url) as conn:
        orders = conn.execute("SELECT count(*) FROM shop_orders").fetchone()[0]
        taken = conn.execute("SELECT sum(100000000 - stock) FROM products").fetchone()[0]
        assert orders == taken == done.value, (orders, taken, done.value)
    return done.value, failed.value, orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs of each (the median is kept)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    base = ADMIN.rsplit("/", 1)[0]
    print(f"PostgreSQL {version}, {os.cpu_count()} CPUs, {args.seconds:.0f} s per run, "
          "one process and connection per client; each order = add to cart + quote + "
          "place (bank card, payment not measured)")
    for catalog in ("spread", "hot"):
        for clients in (int(c) for c in args.clients.split(",")):
            rates, loads = [], []
            for _ in range(args.runs):
                name = f"barid_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                loads.append(load())
                try:
                    done, failed, _ = run(f"{base}/{name}", clients, args.seconds, catalog)
                finally:
                    with psycopg.connect(ADMIN, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                rates.append(done / args.seconds)
                print(f"{catalog:6} catalog ({PRODUCTS[catalog]:3} products), {clients:2} "
                      f"clients: {done / args.seconds:7.1f} orders/s ({failed} failed; "
                      f"orders = stock taken: checked; load before {loads[-1]:.1f})")
            goal = 200.0 if catalog == "spread" else 60.0
            rows.append(row("P4", f"P4 checkout {catalog} (/s)", statistics.median(rates),
                            "goal >=", goal, conditions=f"{clients} processes, "
                            f"{PRODUCTS[catalog]} products, stock checked, bank card "
                            f"(no PIN), PostgreSQL {version}", load=statistics.median(loads),
                            runs=args.runs))
    emit([r for r in rows if str(max(int(c) for c in args.clients.split(","))) in
          r["conditions"].split(" ")[0]], json_line=args.json)


if __name__ == "__main__":
    main()
