"""Redis and PostgreSQL outages, on servers the tests start and kill themselves.

- Redis killed: people can still log in, track parcels and pay at checkout; jobs wait in
  the outbox; /readyz says Redis, /livez stays up; when Redis returns a `barid worker`
  drains the backlog and every paid order shows paid, each job run once.
- A `barid worker` started without Redis waits for it instead of exiting.
- PostgreSQL restarted under a running app: the next request is served (pre-ping), and
  jobs run again.

Never the shared Redis or PostgreSQL: see tests/throwaway.py.
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from app.database import Base, db, get_engine, init_engine, unit_of_work
from app.events import JobState, OutboxJob, enqueue_after_commit
from shop.models import Order
from shop.services import checkout
from tests.payments.conftest import _fast_pins, clerk, make_card, office  # noqa: F401
from tests.payments.helpers import CARD_PIN, ledger_problems
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    PASSWORD,
    baghdad_shop,
    make_address,
    product,
    put_in_cart,
    shelf,
    shopper,
)
from tests.throwaway import RedisServer, free_port
from tests.tracking.helpers import domestic_draft
from tracking.services.parcels import preadvise

# Workers in other processes read what the tests commit.
pytestmark = pytest.mark.commits

ROOT = Path(__file__).resolve().parents[2]
BARID = str(Path(sys.executable).parent / "barid")

effects_metadata = MetaData()
outage_effects = Table(
    "outage_effects", effects_metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", String(64), nullable=False),
)


def note_delivery(ref: str) -> None:
    """A job whose effect is one row: "exactly once" is a row count."""
    db.execute(outage_effects.insert().values(ref=ref))


def effects(ref: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(select(func.count()).where(outage_effects.c.ref == ref)
                            ).scalar_one()


@pytest.fixture()
def effects_table(app):
    effects_metadata.create_all(get_engine())
    yield
    effects_metadata.drop_all(get_engine())


@pytest.fixture()
def on_redis(app, throwaway_redis):
    """The shared app with REDIS_URL on a Redis of the test's own; breakers closed."""
    from app.redisconn import reset_breakers

    saved = dict(app.config)
    reset_breakers()
    app.config["REDIS_URL"] = throwaway_redis.url()
    with app.app_context():
        yield throwaway_redis
    app.config.clear()
    app.config.update(saved)
    reset_breakers()


def start_worker(env_extra: dict, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BARID_ENV": "development", **env_extra}
    with log_path.open("wb") as log:
        return subprocess.Popen([BARID, "worker"], cwd=ROOT, env=env, start_new_session=True,
                                stdout=log, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen, timeout: float = 15) -> int | None:
    """SIGTERM, as systemd or docker stop sends; the whole group after `timeout`."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            return worker.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)
            return None
    return worker.returncode


def wait_until(check, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())


def pending_rows() -> list[tuple]:
    with get_engine().connect() as conn:
        return conn.execute(select(OutboxJob.id, OutboxJob.task, OutboxJob.attempts)
                            .where(OutboxJob.state == JobState.PENDING)).all()


def order_status(order_id: int) -> str:
    with get_engine().connect() as conn:
        return conn.execute(select(Order.status).where(Order.id == order_id)).scalar_one()


def test_with_redis_down_people_log_in_track_and_pay_and_the_backlog_drains_after(
        app, on_redis, client, shopper, baghdad_shop, shelf, make_card, pg_url, tmp_path):
    redis_server = on_redis
    lamp = product(baghdad_shop, shelf, price=20_000, weight_g=500, stock=5).id
    card = make_card(balance=200_000, user_id=shopper.id)  # the shopper's own card
    with unit_of_work():
        parcel_number = preadvise(domestic_draft()).tracking_number
    address = make_address(shopper)
    dest = {"method": "door", "address_id": address.id}

    db.remove()
    before = db.scalar(select(func.max(OutboxJob.id))) or 0
    redis_server.kill()  # what was queued there is lost with it
    t0 = time.monotonic()
    res = client.post("/login", data={"identifier": shopper.email, "password": PASSWORD})
    assert res.status_code in (302, 303), "login counts its attempts without Redis"
    assert client.get(f"/track/{parcel_number}").status_code == 200
    assert client.get(f"/api/v1/tracking/{parcel_number}").status_code == 200

    orders = []
    for n in range(2):
        put_in_cart(shopper, lamp)
        quote = checkout.quote_cart(shopper, checkout.destination_for(shopper, **dest))
        res = client.post("/shop/checkout", data={
            **dest, "digest": quote.digest, "key": f"outage-{n}", "payment": "post_card",
            "card_number": card.number, "pin": CARD_PIN})
        assert res.status_code in (302, 303), res.status_code
        orders.append(int(re.search(r"/orders/(\d+)", res.headers["Location"]).group(1)))
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"requests waited on the dead Redis ({elapsed:.1f}s)"

    live, ready = client.get("/livez"), client.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 503 and ready.get_json()["failed"] == ["redis"]

    db.remove()
    pending = db.scalars(select(OutboxJob).where(OutboxJob.state == JobState.PENDING,
                                                 OutboxJob.id > before)).all()
    assert pending and all(j.enqueued_at is None for j in pending), "jobs wait in the outbox"
    assert [order_status(o) for o in orders] == ["pending_payment"] * 2

    # Redis comes back (empty, as after a crash); a worker starts and the sweeper in its
    # beat sends the backlog, and the jobs queued before the crash once rq is found to
    # have lost them (after OUTBOX_STALE_AFTER).
    redis_server.start()
    worker = start_worker({"DATABASE_URL": pg_url, "REDIS_URL": redis_server.url(),
                           "OUTBOX_STALE_AFTER": "3"}, tmp_path / "worker.log")
    try:
        assert wait_until(lambda: all(order_status(o) == "paid" for o in orders), 60), \
            (tmp_path / "worker.log").read_text()[-3000:]
        assert wait_until(lambda: not pending_rows(), 30), pending_rows()
    finally:
        code = stop_worker(worker)
    assert code == 0, "SIGTERM stops the worker cleanly"
    log = (tmp_path / "worker.log").read_text()
    runs = re.findall(r"outbox job (\d+) \(outbox-\d+\)", log)
    assert runs and len(runs) == len(set(runs)), "no job was sent twice"
    db.remove()
    from shop.models import OrderEvent

    paid_events = db.scalar(select(func.count()).select_from(OrderEvent)
                            .where(OrderEvent.to_status == "paid"))
    assert paid_events == 2
    assert ledger_problems() == []


def test_worker_started_without_redis_waits_and_then_works(app, effects_table, pg_url,
                                                           tmp_path):
    from app.redisconn import reset_breakers

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    worker = start_worker({"DATABASE_URL": pg_url, "REDIS_URL": url}, tmp_path / "w.log")
    server = RedisServer(port=port)
    saved = app.config.get("REDIS_URL")
    try:
        log_path = tmp_path / "w.log"
        assert wait_until(lambda: "Redis unreachable" in log_path.read_text(), 40), \
            log_path.read_text()[-2000:]
        time.sleep(3)  # a few rounds of backoff
        assert worker.poll() is None, log_path.read_text()[-2000:]
        server.start()
        reset_breakers()
        app.config["REDIS_URL"] = url
        with app.app_context():
            enqueue_after_commit(note_delivery, ref="after-outage")
            db.commit()
            assert wait_until(lambda: effects("after-outage") == 1, 45), \
                (tmp_path / "w.log").read_text()[-3000:]
        t = time.monotonic()
        assert stop_worker(worker) == 0
        assert time.monotonic() - t < 15
    finally:
        app.config["REDIS_URL"] = saved
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        server.kill()
    log = (tmp_path / "w.log").read_text()
    # Logged once by the worker and once by its beat, however long the wait.
    assert log.count("barid worker: Redis unreachable") == 1
    assert log.count("beat: Redis unreachable") == 1
    assert "barid worker: Redis reachable again" in log
    assert effects("after-outage") == 1


def test_postgresql_restart_under_a_running_app_costs_no_500(app, throwaway_pg,
                                                               effects_table, client):
    from app.jobs import drain

    original = app.config["DATABASE_URL"]
    url = throwaway_pg.create_database("barid_outage")
    engine = init_engine(url)
    try:
        Base.metadata.create_all(engine)
        effects_metadata.create_all(engine)
        with app.app_context(), unit_of_work():
            number = preadvise(domestic_draft()).tracking_number
        # Each request has its own app context, whose end hands the connection back to
        # the pool (as under gunicorn), so the next request checks one out again.
        assert client.get(f"/track/{number}").status_code == 200
        assert client.get("/readyz").status_code == 200

        throwaway_pg.restart("fast")  # every pooled connection is now dead
        assert client.get(f"/track/{number}").status_code == 200, "pre-ping reconnects"
        assert client.get("/readyz").status_code == 200

        # While it is down, a page says so with 503 and Retry-After, not a 500.
        throwaway_pg.stop("fast")
        down = client.get(f"/track/{number}")
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").get_json()["failed"] == ["database"]
        throwaway_pg.start()
        assert client.get(f"/track/{number}").status_code == 200

        # A job after the restart runs on a fresh connection too.
        with app.app_context():
            enqueue_after_commit(note_delivery, ref="after-restart")
            db.commit()
        throwaway_pg.restart("fast")
        assert drain(app) >= 1
        assert effects("after-restart") == 1
    finally:
        db.remove()
        init_engine(original)
