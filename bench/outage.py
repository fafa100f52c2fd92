"""Outages, measured on a PostgreSQL cluster and a Redis server of the bench's own.

    .venv/bin/python bench/outage.py [jobs] [--only=postgres|redis|redis-load]

3. Redis killed for 60 s under load (gunicorn -w 2, 2 `barid worker`): requests that
   failed, orders placed by post card meanwhile, and seconds after Redis returns until
   every one of them shows paid.

1. PostgreSQL restart (`pg_ctl restart -m fast`) under gunicorn (2 sync workers), with a
   client requesting a page that reads the database every 20 ms: the seconds from the
   restart's end to the first 200, and every answer that was not 200.
2. Redis down: `jobs` outbox jobs are staged by commits while Redis is down, with 2
   `barid worker` processes already running (waiting for Redis); then Redis returns
   (empty, as after a crash): the seconds until the outbox is empty, and how many jobs
   ran twice (effects are counted: one row per job).

Never touches the shared PostgreSQL or Redis (see tests/throwaway.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, Table, func, select  # noqa: E402

from tests.throwaway import PostgresCluster, RedisServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent
GUNICORN_LOG = Path("/tmp/barid-outage-bench-gunicorn.log")
effects_metadata = MetaData()
bench_effects = Table("bench_outage_effects", effects_metadata,
                      Column("id", Integer, primary_key=True),
                      Column("n", Integer, nullable=False))


def record(n: int) -> None:
    """The bench's job: one row per run."""
    from app.database import db

    db.execute(bench_effects.insert().values(n=n))


def env_for(db_url: str, redis_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}",
           "DATABASE_URL": db_url, "BARID_ENV": "development"}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def postgres_restart(app, cluster: PostgresCluster, db_url: str) -> None:
    from app.database import unit_of_work
    from tests.tracking.helpers import domestic_draft
    from tracking.services.parcels import preadvise

    with app.app_context(), unit_of_work():
        number = preadvise(domestic_draft()).tracking_number
    port = free_port()
    gunicorn = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"],
        # The poller alone would pass the public lookup limit.
        cwd=ROOT, env={**env_for(db_url), "TRACKING_LOOKUPS_PER_MINUTE": "0"},
        stdout=subprocess.DEVNULL, stderr=GUNICORN_LOG.open("wb"),
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/track/{number}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        for _ in range(20):  # both workers hold pooled connections
            requests.get(url, timeout=5)
        answers: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    code = requests.get(url, timeout=10).status_code
                except requests.RequestException:
                    code = 0
                answers.append((began, code))
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(1)
        t0 = time.monotonic()
        cluster.restart("fast")
        t1 = time.monotonic()
        time.sleep(5)
        stop.set()
        poller.join(15)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(20)
    during = [code for t, code in answers if t0 <= t < t1]
    after = [(t, code) for t, code in answers if t >= t1]
    first_200 = next((t for t, code in after if code == 200), None)
    bad_after = [code for _t, code in after if code != 200]
    print("PostgreSQL restart (pg_ctl restart -m fast) under gunicorn -w 2, a request every "
          "20 ms (times are when each request began):")
    print(f"  restart took {t1 - t0:.2f} s; answers meanwhile: {len(during)} "
          f"({sum(1 for c in during if c != 200)} not 200: {sorted(set(during) - {200})})")
    print(f"  first 200 {first_200 - t1:.3f} s after the restart ended "
          f"({first_200 - t0:.2f} s after it began)" if first_200 else "  no 200 after it")
    print(f"  answers after the restart: {len(after)}, not 200: {len(bad_after)} "
          f"{sorted(set(bad_after))} (gunicorn's log: {GUNICORN_LOG})")


def redis_backlog(app, db_url: str, jobs: int, workdir: Path) -> None:
    import outage  # this file, importable by the workers as "outage"

    from app.database import db, get_engine
    from app.events import JobState, OutboxJob, enqueue_after_commit
    from app.redisconn import reset_breakers

    server = RedisServer()  # not started: Redis is down
    app.config["REDIS_URL"] = server.url()
    reset_breakers()
    env = env_for(db_url, server.url())
    workers = []
    for i in range(2):
        log = (workdir / f"worker{i}.log").open("wb")
        workers.append((subprocess.Popen([str(BIN / "barid"), "worker"], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True), log))
    try:
        t = time.monotonic()
        with app.app_context():
            for n in range(jobs):
                enqueue_after_commit(outage.record, n=n)
                db.commit()
        staged = time.monotonic() - t
        print(f"Redis down: {jobs} jobs staged by {jobs} commits in {staged:.2f} s "
              f"({staged / jobs * 1000:.2f} ms per commit; the hand-over is skipped by the "
              "breaker)")
        time.sleep(max(0.0, 8 - staged))  # workers are deep in their backoff by now

        def pending() -> int:
            with get_engine().connect() as conn:
                return conn.execute(select(func.count()).where(
                    OutboxJob.state == JobState.PENDING)).scalar_one()

        server.start()
        t0 = time.monotonic()
        first = None
        while pending() and time.monotonic() - t0 < 600:
            if first is None and pending() < jobs:
                first = time.monotonic() - t0
            time.sleep(0.2)
        drained = time.monotonic() - t0
    finally:
        for worker, _log in workers:
            worker.send_signal(signal.SIGTERM)
        for worker, log in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()
        server.kill()
    with get_engine().connect() as conn:
        total, distinct = conn.execute(
            select(func.count(), func.count(bench_effects.c.n.distinct()))).one()
    logs = [(workdir / f"worker{i}.log").read_text() for i in range(2)]
    runs = [m for text in logs for m in re.findall(r"outbox job (\d+) \(outbox-", text)]
    print(f"Redis back: first job done after {first or 0:.2f} s, {jobs} jobs drained by 2 "
          f"`barid worker` processes in {drained:.2f} s ({jobs / drained:.0f} jobs/s)")
    repeats = len(runs) - len(set(runs))
    print(f"  effects {total} for {distinct} distinct jobs "
          f"(each once: {total == distinct == jobs}); rq executions {len(runs)}, "
          f"of which repeats {repeats}")


def seed_shop(app):
    """A shopper with a funded post card, a shop with a product in stock, a parcel."""
    from app.database import db, unit_of_work
    from payments import cards, services
    from tests.payments.conftest import make_user
    from tests.shop.checkout_helpers import make_address, make_shopper
    from tests.shop.helpers import make_category, make_merchant, make_product
    from tests.tracking.helpers import domestic_draft
    from tracking.services.parcels import preadvise

    app.config.update(PIN_ARGON2_TIME_COST=1, PIN_ARGON2_MEMORY_KIB=1024,
                      PIN_ARGON2_PARALLELISM=1)
    with app.app_context():
        from app.auth.models import PostOffice

        office = PostOffice(code="BGD99", name_ar="مكتب بريد بغداد", name_en="Baghdad",
                            governorate="IQ-BG")
        db.add(office)
        db.commit()
        clerk = make_user("clerk-bench@barid.iq", "clerk", office_id=office.id)
        shopper = make_shopper()
        with unit_of_work():
            card = cards.issue_card(holder_name="زينب علي", national_id="199000000001",
                                    mobile="+9647701234567", pin="2468", user_id=None,
                                    clerk_id=clerk.id, office_id=office.id)
            services.receive_cash(office_id=office.id, clerk_id=clerk.id,
                                  amount=5_000_000, currency="IQD",
                                  reference_kind="post_card", reference_id=str(card.id),
                                  purpose="card_topup", idempotency_key="bench-topup")
        merchant = make_merchant()
        lamp = make_product(merchant, make_category(), price=1_000, weight_g=200,
                            stock=100_000)
        db.commit()
        address = make_address(shopper)
        with unit_of_work():
            number = preadvise(domestic_draft()).tracking_number
        return {"shopper_id": shopper.id, "email": shopper.email, "card": card.number,
                "product": lamp.id, "address": address.id, "parcel": number}


def redis_outage_under_load(app, db_url: str, workdir: Path, seconds: int) -> None:
    """Gunicorn (2 workers) and 2 `barid worker` processes; Redis is killed for `seconds`
    while 2 clients load the site and a third places post-card orders."""
    from app.auth.models import User
    from app.database import db, get_engine
    from app.redisconn import reset_breakers
    from shop.models import Order
    from shop.services.checkout import PaymentChoice
    from tests.shop.checkout_helpers import PASSWORD, place, put_in_cart

    seed = seed_shop(app)
    server = RedisServer().start()
    app.config["REDIS_URL"] = server.url()
    reset_breakers()
    port = free_port()
    env = {**env_for(db_url, server.url()), "TRACKING_LOOKUPS_PER_MINUTE": "1000000"}
    gunicorn = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=GUNICORN_LOG.open("wb"),
        start_new_session=True)
    workers = [subprocess.Popen([str(BIN / "barid"), "worker"], cwd=ROOT, env=env,
                                stdout=(workdir / f"load-worker{i}.log").open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
               for i in range(2)]
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[int]] = {"track": [], "login": [], "home": []}
    stop = threading.Event()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():
            for name, call in (
                ("track", lambda: session.get(f"{base}/track/{seed['parcel']}", timeout=10)),
                ("home", lambda: session.get(f"{base}/", timeout=10)),
                ("login", lambda: login(session)),
            ):
                try:
                    code = call().status_code
                except requests.RequestException:
                    code = 0
                results[name].append(code)

    def login(session: requests.Session) -> requests.Response:
        page = session.get(f"{base}/login", timeout=10)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text) \
            or re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        return session.post(f"{base}/login", timeout=10, allow_redirects=False, data={
            "identifier": seed["email"], "password": PASSWORD,
            "csrf_token": token.group(1) if token else ""})

    orders: list[int] = []
    order_failures = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)
        for name in results:
            results[name].clear()
        server.kill()
        t0 = time.monotonic()
        with app.app_context():
            shopper = db.get(User, seed["shopper_id"])
            n = 0
            while time.monotonic() - t0 < seconds:
                n += 1
                try:
                    put_in_cart(shopper, seed["product"])
                    order = place(shopper, {"method": "door", "address_id": seed["address"]},
                                  payment=PaymentChoice("post_card", card_number=seed["card"],
                                                        pin="2468"), key=f"bench-{n}")
                    orders.append(order.id)
                except Exception:
                    db.rollback()
                    order_failures += 1
                time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(15)
        server.start()
        t1 = time.monotonic()

        def unpaid() -> int:
            with get_engine().connect() as conn:
                return conn.execute(select(func.count()).where(
                    Order.id.in_(orders), Order.status != "paid")).scalar_one()

        while unpaid() and time.monotonic() - t1 < 600:
            time.sleep(0.5)
        settled = time.monotonic() - t1
        left = unpaid()
    finally:
        stop.set()
        for proc in [gunicorn, *workers]:
            proc.send_signal(signal.SIGTERM)
        for proc in [gunicorn, *workers]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        server.kill()
    print(f"Redis killed for {seconds} s under load (2 clients: tracking page, home page, "
          "login with CSRF; gunicorn -w 2; 2 `barid worker`):")
    for name, codes in results.items():
        failed = [c for c in codes if c == 0 or c >= 500]
        print(f"  {name}: {len(codes)} requests, {len(failed)} failed "
              f"{sorted(set(codes))}")
    print(f"  orders placed by post card during the outage (service layer, as the checkout "
          f"view calls it): {len(orders)}, failed {order_failures}")
    print(f"  every order paid {settled:.1f} s after Redis returned (unpaid left: {left})")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    jobs = int(args[0]) if args else 1000
    only = next((a[len("--only="):] for a in sys.argv[1:] if a.startswith("--only=")), None)
    import tempfile

    from app import create_app
    from app.database import Base, get_engine
    from app.models_registry import load_all

    cluster = PostgresCluster().start()
    workdir = Path(tempfile.mkdtemp(prefix="barid-outage-bench-"))
    try:
        db_url = cluster.create_database("barid_bench")
        app = create_app({"DATABASE_URL": db_url, "REDIS_URL": None, "MAIL_BACKEND": "memory"})
        load_all()
        Base.metadata.create_all(get_engine())
        effects_metadata.create_all(get_engine())
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
              f"PostgreSQL {cluster.port}, jobs {jobs}")
        if only in (None, "postgres"):
            postgres_restart(app, cluster, db_url)
        if only in (None, "redis"):
            redis_backlog(app, db_url, jobs, workdir)
        if only in (None, "redis-load"):
            redis_outage_under_load(app, db_url, workdir, 60)
    finally:
        from app.database import get_engine as engine

        engine().dispose()
        cluster.remove()


if __name__ == "__main__":
    main()
