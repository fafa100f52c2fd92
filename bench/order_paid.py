"""P9: from "place order" to "paid" as the shopper sees it, post card, through HTTP.

Starts gunicorn (deploy/gunicorn.conf.py, 2 workers) and N real `barid worker` processes
(the default: a forked work-horse per job) on a scratch PostgreSQL database and the Redis
database --redis-db, then C shopper clients, each in a loop for --seconds:

    add a product to the cart (POST /shop/cart/add), open the checkout page, place the
    order paying with the shopper's own post card and PIN (POST /shop/checkout), then
    read the order page every 250 ms until it says paid.

The latency is from sending the checkout form to the first page that shows "paid".
Also counts the outbox jobs each order needed and the mean time a job took in the
worker (from its row's created_at to finished_at). Ends with `BENCH <json>` (--json).

    .venv/bin/python bench/order_paid.py [--clients 8] [--workers 2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import emit, free_port, load, row  # noqa: E402

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench horse battery staple"
PIN = "4826"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DIGEST = re.compile(r'name="digest"[^>]*value="([0-9a-f]+)"')
KEY = re.compile(r'name="key"[^>]*value="([^"]+)"')


def prepare(url: str, clients: int, products: int) -> list[dict]:
    """Schema, a shop with `products` products, and per client a shopper with an
    address and a post card of their own with money on it."""
    from app import create_app
    from app.auth.models import PostOffice, User, UserRole
    from app.auth.services import create_user
    from app.database import Base, db, get_engine, unit_of_work
    from app.models_registry import load_all
    from payments import cards, services
    from shop.models import Address, Category, Merchant, Product

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory"})
    load_all()
    people = []
    with app.app_context():
        Base.metadata.create_all(get_engine())
        with unit_of_work():
            office = PostOffice(code="BGD1", name_ar="مكتب بريد بغداد",
                                name_en="Baghdad Post Office", governorate="IQ-BG")
            db.add(office)
            db.flush()
            clerk = User(email="clerk@bench.iq", full_name="Clerk", password_hash="x",
                         post_office_id=office.id)
            clerk.role_rows = [UserRole(role="clerk")]
            owner = User(email="owner@bench.iq", full_name="Owner", password_hash="x")
            db.add_all([clerk, owner])
            db.flush()
            shop = Merchant(slug="bench", name_ar="متجر", name_en="Shop", owner_id=owner.id,
                            status="active", governorate="IQ-BG")
            cat = Category(slug="bench", name_ar="قسم", name_en="Shelf")
            db.add_all([shop, cat])
            db.flush()
            db.add_all([Product(merchant_id=shop.id, category_id=cat.id,
                                title_ar=f"منتج {i}", title_en=f"Product {i}",
                                price=10_000 + i, stock=10**6, weight_g=500,
                                hs_code="851712", origin_country="IQ")
                        for i in range(products)])
            db.flush()
            product_ids = list(db.scalars(db.query(Product.id).statement))
        for n in range(clients):
            with unit_of_work():
                user = create_user(f"Shopper {n}", email=f"shopper{n}@bench.iq",
                                   password=PASSWORD, roles=("shopper",))
                a = Address(user_id=user.id, recipient_name="زينب علي",
                            phone="+9647701234567", governorate="IQ-BG",
                            district="الكرادة", landmark="قرب جامع الرحمن")
                db.add(a)
                card = cards.issue_card(holder_name="زينب علي",
                                        national_id=f"1990{n:08d}", mobile="+9647701234567",
                                        pin=PIN, user_id=user.id, clerk_id=clerk.id,
                                        office_id=office.id)
                services.receive_cash(office_id=office.id, clerk_id=clerk.id,
                                      amount=5_000_000, currency="IQD",
                                      reference_kind="post_card", reference_id=str(card.id),
                                      purpose="card_topup",
                                      idempotency_key=f"bench-topup-{card.id}")
                db.flush()
                people.append({"email": user.email, "address": a.id, "card": card.id,
                               "products": product_ids})
        db.remove()
    get_engine().dispose()
    return people


def start(cmd: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def shopper_loop(base: str, person: dict, n: int, until: float, out: list, errors: list,
                 give_up: float, placing: list) -> None:
    s = requests.Session()
    token = CSRF.search(s.get(f"{base}/login").text).group(1)
    res = s.post(f"{base}/login", data={"identifier": person["email"],
                                        "password": PASSWORD, "csrf_token": token},
                 allow_redirects=False)
    if res.status_code != 302:
        errors.append(f"login {res.status_code}")
        return
    products = person["products"]
    k = n
    while time.monotonic() < until:
        k += 7
        page = s.get(f"{base}/shop/products/{products[k % len(products)]}").text
        m = CSRF.search(page)
        res = s.post(f"{base}/shop/cart/add", allow_redirects=False, data={
            "product_id": products[k % len(products)], "quantity": 1,
            "csrf_token": m.group(1) if m else token})
        html = s.get(f"{base}/shop/checkout",
                     params={"method": "door", "address_id": person["address"]}).text
        d, key, c = DIGEST.search(html), KEY.search(html), CSRF.search(html)
        if not (d and key and c):
            errors.append("checkout page without its form")
            time.sleep(0.5)
            continue
        t0 = time.monotonic()
        res = s.post(f"{base}/shop/checkout", allow_redirects=False, data={
            "method": "door", "address_id": person["address"], "digest": d.group(1),
            "key": key.group(1), "csrf_token": c.group(1), "payment": "post_card",
            "card_id": person["card"], "pin": PIN})
        placing.append(time.monotonic() - t0)
        where = res.headers.get("Location", "")
        m = re.search(r"/orders/(\d+)$", where)
        if res.status_code != 302 or not m:
            errors.append(f"checkout {res.status_code}")
            continue
        order_url = f"{base}/shop/orders/{m.group(1)}"
        while True:
            if 'data-status="paid"' in s.get(order_url).text:
                out.append(time.monotonic() - t0)
                break
            if time.monotonic() - t0 > give_up:
                errors.append("not paid in time")
                out.append(time.monotonic() - t0)
                break
            time.sleep(0.25)  # a page that checks again; tighter polling would starve the workers


def one_run(args: argparse.Namespace) -> dict:
    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    procs: list[subprocess.Popen] = []
    log = tempfile.NamedTemporaryFile(prefix="barid-bench-p9-", suffix=".log",  # noqa: SIM115
                                      delete=False)
    try:
        people = prepare(url, args.clients, args.products)
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url,
               "BARID_ENV": "development", "MAIL_BACKEND": "memory",
               "SMS_BACKEND": "memory", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
               "LOGIN_RATE_LIMIT": "1000"}
        port = free_port()
        bin_dir = Path(sys.executable).parent
        procs.append(start([sys.executable, "-m", "gunicorn", "-c",
                            str(ROOT / "deploy/gunicorn.conf.py"), "--workers", "2",
                            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                            "app.wsgi:app"], env, log))
        for i in range(args.workers):
            procs.append(start([str(bin_dir / "barid"), "worker", "--name",
                                f"bench-p9-{i}-{uuid.uuid4().hex[:6]}"], env, log))
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{base}/livez", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not start: see {log.name}")
        # The setup's own jobs (top-up notices) run before the shoppers start.
        for _ in range(600):
            with psycopg.connect(url) as conn:
                if not conn.execute("SELECT count(*) FROM outbox_jobs WHERE state = "
                                    "'pending'").fetchone()[0]:
                    break
            time.sleep(0.2)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM outbox_jobs")
        before = load()
        latencies: list[float] = []
        errors: list[str] = []
        placing: list[float] = []
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=shopper_loop, args=(
            base, people[i], i, until, latencies, errors, args.give_up, placing))
            for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        with psycopg.connect(url) as conn:
            orders, paid = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'paid') "
                "FROM shop_orders").fetchone()
            jobs, job_ms = conn.execute(
                "SELECT count(*), avg(extract(epoch FROM finished_at - created_at) * 1000) "
                "FILTER (WHERE state = 'done') FROM outbox_jobs").fetchone()
            per_task = conn.execute(
                "SELECT task, count(*), avg(extract(epoch FROM finished_at - created_at)) "
                "* 1000 FROM outbox_jobs GROUP BY task ORDER BY 2 DESC").fetchall()
        for task, count, ms in per_task:
            print(f"    {count:5} x {task:60} {float(ms or 0):7.0f} ms row -> done")
        latencies.sort()
        q = (statistics.quantiles(latencies, n=100) if len(latencies) > 2
             else [latencies[-1] if latencies else float("nan")] * 99)
        return {"place_p50": statistics.median(placing) * 1000 if placing else 0.0,
                "orders": orders, "paid": paid, "p50": q[49] * 1000, "p95": q[94] * 1000,
                "p99": q[98] * 1000, "orders_per_s": len(latencies) / wall,
                "jobs_per_order": jobs / max(orders, 1), "job_ms": float(job_ms or 0),
                "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
                "load": before}
    finally:
        stop(procs)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--products", type=int, default=200)
    ap.add_argument("--give-up", type=float, default=60.0)
    ap.add_argument("--redis-db", type=int,
                    default=int(os.environ.get("BARID_TEST_REDIS_DB", "14")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for k in range(args.runs):
        r = one_run(args)
        results.append(r)
        print(f"  P9 run {k + 1}: {r['orders']} orders ({r['paid']} paid), "
              f"place->paid p50 {r['p50']:.0f} ms p95 {r['p95']:.0f} ms (the checkout POST "
              f"itself p50 {r['place_p50']:.0f} ms), "
              f"{r['jobs_per_order']:.1f} jobs/order, {r['job_ms']:.0f} ms from a job's "
              f"row to its end, {r['errors']} errors {r['error_kinds']}, load {r['load']:.1f}",
              flush=True)
    med = {k: statistics.median(r[k] for r in results)
           for k in ("p50", "p95", "p99", "place_p50", "orders_per_s", "jobs_per_order",
                     "job_ms", "load")}
    conds = (f"gunicorn -w 2 gthread, {args.workers} barid worker (fork), "
             f"{args.clients} clients, {args.seconds:.0f} s, "
             f"{med['jobs_per_order']:.1f} jobs/order, job row->done {med['job_ms']:.0f} ms, "
             f"checkout POST p50 {med['place_p50']:.0f} ms, {med['orders_per_s']:.1f} "
             f"orders/s")
    emit([row("P9", "P9 order -> paid p95 (ms)", med["p95"], "goal <=", 5000.0,
              p50=med["p50"], p99=med["p99"], ok=med["p95"] <= 5000,
              conditions=conds, load=med["load"], runs=args.runs)],
         json_line=args.json)


if __name__ == "__main__":
    main()
