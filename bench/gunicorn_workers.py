"""Which gunicorn worker class: fast requests beside slow ones, `sync` against `gthread`.

Runs gunicorn with deploy/gunicorn.conf.py (2 workers) against a scratch PostgreSQL
database with the demo data and a localstripe of its own, once per worker class. Slow
clients do real work that does not need the whole worker: a clerk draws a batch of 10
labels (GET /backoffice/parcels/labels.pdf), a shopper starts a bank-card top-up of the
post card (POST /payments/cards/<id>/topup, which creates a PaymentIntent at
localstripe). Fast clients meanwhile look up a parcel (GET /api/v1/tracking/<n>). The
figures that matter are the fast requests' rate and latency.

    .venv/bin/python bench/gunicorn_workers.py [--seconds 15] [--slow 4] [--fast 4]
        [--classes sync:1,gthread:4]

Needs the local PostgreSQL (BARID_BENCH_PG, default postgres@127.0.0.1:5432); creates a
scratch database and drops it afterwards. Sends requests only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = os.environ.get("BARID_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_PASSWORD = "barid-demo-2026"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KEY = re.compile(r'name="key"[^>]*value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> tuple[list[str], int]:
    """Schema and demo data; the demo parcels' numbers and the demo shopper's card id."""
    from sqlalchemy import select

    from app import create_app
    from app.auth.models import User
    from app.database import Base, db, get_engine, unit_of_work
    from app.models_registry import load_all
    from app.seed import seed_demo
    from payments.models import PostCard
    from tracking.models import Parcel

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory"})
    load_all()
    with app.app_context():
        Base.metadata.create_all(get_engine())
        with unit_of_work():
            seed_demo()
        numbers = list(db.scalars(select(Parcel.tracking_number)))
        shopper = db.scalar(select(User.id).where(User.email == "shopper@barid.iq"))
        card = db.scalar(select(PostCard.id).where(PostCard.user_id == shopper))
    get_engine().dispose()
    return numbers, card


def log_in(base: str, email: str) -> requests.Session:
    s = requests.Session()
    token = CSRF.search(s.get(f"{base}/login").text).group(1)
    res = s.post(f"{base}/login", data={"identifier": email, "password": DEMO_PASSWORD,
                                        "csrf_token": token}, allow_redirects=False)
    assert res.status_code == 302, (email, res.status_code)
    return s


def start_gunicorn(url: str, stripe: str, worker_class: str, threads: int,
                   port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "STRIPE_API_BASE": stripe,
           "BARID_ENV": "development", "MAIL_BACKEND": "memory",
           "TRACKING_LOOKUPS_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
         "--workers", "2", "--worker-class", worker_class, "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "app.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/livez", timeout=2).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def measure(base: str, numbers: list[str], card: int, slow: int, fast: int,
            seconds: float) -> dict[str, float]:
    stop = threading.Event()
    fast_latencies: list[float] = []
    slow_latencies: list[float] = []
    errors: list[str] = []
    batch = "&".join(f"n={numbers[i % len(numbers)]}" for i in range(10))

    def labels_client() -> None:
        s = log_in(base, "clerk@barid.iq")
        while not stop.is_set():
            t = time.perf_counter()
            res = s.get(f"{base}/backoffice/parcels/labels.pdf?{batch}", timeout=120)
            slow_latencies.append(time.perf_counter() - t)
            if res.status_code != 200 or not res.content.startswith(b"%PDF"):
                errors.append(f"labels {res.status_code}")

    def topup_client() -> None:
        s = log_in(base, "shopper@barid.iq")
        while not stop.is_set():
            t = time.perf_counter()
            page = s.get(f"{base}/payments/cards/{card}/topup", timeout=120).text
            res = s.post(f"{base}/payments/cards/{card}/topup", timeout=120,
                         allow_redirects=False,
                         data={"amount": "25000", "csrf_token": CSRF.search(page).group(1),
                               "key": KEY.search(page).group(1)})
            slow_latencies.append(time.perf_counter() - t)
            if res.status_code != 302 or "/payments/pay/" not in res.headers["Location"]:
                errors.append(f"topup {res.status_code}")

    def fast_client() -> None:
        s = requests.Session()
        n = numbers[0]
        while not stop.is_set():
            t = time.perf_counter()
            res = s.get(f"{base}/api/v1/tracking/{n}", timeout=120)
            if not stop.is_set():
                fast_latencies.append(time.perf_counter() - t)
            if res.status_code != 200:
                errors.append(f"fast {res.status_code}")

    workers = [threading.Thread(target=labels_client if i % 2 == 0 else topup_client)
               for i in range(slow)]
    workers += [threading.Thread(target=fast_client) for _ in range(fast)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(150)
    fast_latencies.sort()
    q = statistics.quantiles(fast_latencies, n=100) if len(fast_latencies) > 2 else [0] * 99
    return {"fast_rps": len(fast_latencies) / seconds,
            "fast_p50_ms": q[49] * 1000, "fast_p95_ms": q[94] * 1000,
            "fast_max_ms": (fast_latencies[-1] if fast_latencies else 0) * 1000,
            "slow_per_s": len(slow_latencies) / seconds,
            "slow_p50_ms": (statistics.median(slow_latencies) if slow_latencies else 0) * 1000,
            "errors": float(len(errors))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--slow", type=int, default=4)
    ap.add_argument("--fast", type=int, default=4)
    ap.add_argument("--classes", default="sync:1,gthread:4",
                    help="worker_class:threads, comma-separated")
    args = ap.parse_args()

    from payments.localstripe_server import start as start_localstripe

    name = f"barid_bench_gunicorn_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    stripe = start_localstripe()
    try:
        numbers, card = prepare(url)
        print(f"python {platform.python_version()}, {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}; 2 workers; {args.slow} slow clients (labels x10 "
              f"and card top-up starts at localstripe), {args.fast} fast clients "
              f"(tracking lookup), {args.seconds:.0f} s each")
        print(f"{'class':<12} {'fast/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
              f"{'slow/s':>7} {'slow p50':>9} {'errors':>6}")
        for spec in args.classes.split(","):
            worker_class, threads = spec.split(":")
            port = _free_port()
            proc = start_gunicorn(url, stripe.url, worker_class, int(threads), port)
            try:
                r = measure(f"http://127.0.0.1:{port}", numbers, card, args.slow, args.fast,
                            args.seconds)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            label = f"{worker_class}x{threads}"
            print(f"{label:<12} {r['fast_rps']:>7.1f} {r['fast_p50_ms']:>8.0f} "
                  f"{r['fast_p95_ms']:>8.0f} {r['fast_max_ms']:>8.0f} {r['slow_per_s']:>7.1f} "
                  f"{r['slow_p50_ms']:>9.0f} {r['errors']:>6.0f}", flush=True)
    finally:
        stripe.stop()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
