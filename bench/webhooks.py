"""Webhook deliveries per second to a local receiver: two rq workers against a plain loop.

    .venv/bin/python bench/webhooks.py [--messages 1000] [--redis-db 8] [--no-fork]

Makes a throwaway PostgreSQL database, one endpoint on a local HTTP receiver
(127.0.0.1, answers 200 at once) and N messages, then:

1. the platform: two `barid worker --queues webhooks --burst` processes deliver them (each
   attempt an outbox job: claim, sign, POST, record the attempt, commit);
2. the baseline: one plain loop that signs and POSTs the same bodies, nothing recorded.

Prints deliveries per second for both and their ratio. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import emit, load, row  # noqa: E402

PG_ADMIN = os.environ.get("BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class Receiver:
    def __init__(self) -> None:
        self.count = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with me.lock:
                    now = time.monotonic()
                    me.first = me.first or now
                    me.last = now
                    me.count += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.request_queue_size = 256
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def reset(self) -> None:
        self.count, self.first, self.last = 0, 0.0, 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--redis-db", type=int, default=int(os.environ.get("BARID_TEST_REDIS_DB", 15)))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-fork", action="store_true", help="workers run jobs in-process")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    before = load()

    import psycopg
    import redis

    name = f"barid_bench_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = f"{base}/{name}"
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    receiver = Receiver()
    try:
        from app import create_app
        from app.database import Base, db, get_engine
        from app.models_registry import load_all
        from app.webhooks import services, signing
        from app.webhooks.jobs import body_of
        from app.webhooks.models import DeliveryState, WebhookDelivery, WebhookMessage
        from app.webhooks.transport import post

        app = create_app({"DATABASE_URL": db_url, "REDIS_URL": redis_url,
                          "MAIL_BACKEND": "memory", "WEBHOOKS_ALLOW_LOOPBACK": True})
        load_all()
        Base.metadata.create_all(get_engine())
        n = args.messages
        with app.app_context():
            endpoint = services.create_endpoint(1, receiver.url)
            secret = endpoint.secret
            t0 = time.perf_counter()
            for i in range(n):
                services.stage_message(1, "order.paid", {"order_id": i, "status": "paid"})
                if i % 200 == 199:
                    db.commit()  # hands the staged attempts to rq
            db.commit()
            staged = time.perf_counter() - t0
            bodies = [(m.id, body_of(m.payload)) for m in db.query(WebhookMessage)]

        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
               "PYTHONPATH": str(ROOT), "WEBHOOKS_ALLOW_LOOPBACK": "1",
               "MAIL_BACKEND": "memory"}
        cmd = [str(Path(sys.executable).parent / "barid"), "worker", "--queues", "webhooks",
               "--burst"] + (["--no-fork"] if args.no_fork else [])
        started = time.monotonic()
        workers = [subprocess.Popen(cmd + ["--name", f"bench-{i}-{uuid.uuid4().hex[:4]}"],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for i in range(args.workers)]
        for w in workers:
            w.wait(600)
        wall = time.monotonic() - started
        with app.app_context():
            from sqlalchemy import func

            from app.webhooks.models import WebhookAttempt

            ok = db.query(WebhookDelivery).filter_by(state=DeliveryState.SUCCEEDED).count()
            mean_latency = db.query(func.avg(WebhookAttempt.latency_ms)).scalar() or 0
        span = receiver.last - receiver.first
        platform_rate = receiver.count / span if span > 0 else float("nan")

        receiver.reset()
        t0 = time.perf_counter()
        with app.app_context():
            for msg_id, body in bodies:
                headers = signing.headers([secret], msg_id, int(time.time()), body)
                post(receiver.url, body, headers, 10)
        loop = time.perf_counter() - t0
        loop_rate = len(bodies) / loop

        mode = "no-fork" if args.no_fork else "fork per job"
        print(f"messages: {n}; staging them (outbox rows + rq enqueue): {staged:.2f} s")
        print(f"platform, {args.workers} rq workers ({mode}): {ok} delivered and recorded, "
              f"{platform_rate:.0f} deliveries/s between first and last arrival "
              f"({wall:.1f} s wall including worker start-up; mean POST latency "
              f"{float(mean_latency):.1f} ms)")
        print(f"baseline, one plain loop signing and POSTing: {loop_rate:.0f} deliveries/s")
        print(f"ratio platform / baseline: {platform_rate / loop_rate:.2f}")
        emit([row("P6", "P6 webhooks (deliveries/s)", platform_rate, "signing loop",
                  loop_rate, conditions=f"{args.workers} barid worker ({mode}), {n} "
                  f"messages, {ok} recorded, local receiver", load=before, runs=1)],
             json_line=args.json)
    finally:
        receiver.server.shutdown()
        from app.database import get_engine as _engine

        with contextlib.suppress(RuntimeError):
            _engine().dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()
