"""Outbound webhooks against real receivers on 127.0.0.1: every delivery verified with the
`standardwebhooks` library, retries on the schedule, 410, Retry-After, replay, rotation,
the delivery log, SSRF refusals, and one endpoint down not delaying another."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from app.api import keys
from app.database import db, unit_of_work, utcnow
from app.events import JobState, OutboxJob
from app.jobs import drain
from app.notify import sent_messages
from app.webhooks import services
from app.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Outbox jobs are handed over after a real commit, to rq workers and the inline thread,
# which read them through connections of their own.
pytestmark = pytest.mark.commits

ROOT = Path(__file__).resolve().parents[2]
OWNER = 7  # an owner id; the platform does not need a merchant row


class Receiver:
    """A merchant's HTTP server: answers from `plan` (then 200), records each request."""

    def __init__(self, plan=None, delay: float = 0.0) -> None:
        self.plan = list(plan or [])
        self.delay = delay
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers.items()),
                                          "body": body, "at": time.monotonic()})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers = (receiver.plan.pop(0) if receiver.plan else (200, {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                reply = b'{"ok": true}' if status < 300 else b"not now"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/barid/hook?shop=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verified(self, secret: str) -> list[dict]:
        """Every request's body, verified with the standardwebhooks library (raises)."""
        return [Webhook(secret).verify(r["body"], r["headers"]) for r in self.requests]


@pytest.fixture()
def receiver():
    made: list[Receiver] = []

    def make(plan=None, delay: float = 0.0) -> Receiver:
        made.append(Receiver(plan, delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture()
def fast_retries(app):
    """The schedule's shape with no waiting, so drain() runs every attempt."""
    saved = {k: app.config[k] for k in ("WEBHOOK_RETRY_SCHEDULE", "WEBHOOK_JITTER")}
    app.config.update(WEBHOOK_RETRY_SCHEDULE=[0] * 10, WEBHOOK_JITTER=0)
    yield
    app.config.update(saved)


@pytest.fixture()
def production(app):
    saved = app.config["BARID_ENV"]
    app.config["BARID_ENV"] = "production"
    yield
    app.config["BARID_ENV"] = saved


def endpoint_row(endpoint_id: int) -> WebhookEndpoint:
    db.remove()
    return db.get(WebhookEndpoint, endpoint_id)


def attempts_of(endpoint_id: int) -> list[WebhookAttempt]:
    db.remove()
    return list(db.scalars(select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
                           .order_by(WebhookAttempt.id)))


def send(event_type: str = "order.paid", data: dict | None = None) -> str:
    message = services.stage_message(OWNER, event_type, data or {"order_id": 42})
    assert message is not None
    db.commit()
    return message.id


def move_time_forward() -> None:
    """Make every scheduled attempt due now (as if its wait had passed)."""
    db.remove()
    db.execute(update(OutboxJob).where(OutboxJob.state == JobState.PENDING)
               .values(run_after=utcnow()))
    db.commit()


def test_delivery_is_signed_and_verifies_with_standardwebhooks(app_ctx, receiver):
    r = receiver()
    endpoint = services.create_endpoint(OWNER, r.url, event_types=["order.paid"])
    assert endpoint.secret.startswith("whsec_")
    msg_id = send("order.paid", {"order_id": 42, "status": "paid"})
    # Not wanted by this endpoint: no message at all.
    assert services.stage_message(OWNER, "parcel.delivered", {}) is None
    drain(app_ctx)
    [payload] = r.verified(endpoint.secret)
    assert payload["type"] == "order.paid" and payload["id"] == msg_id
    assert payload["api_version"] == "2026-11-01" and payload["data"]["order_id"] == 42
    assert r.requests[0]["headers"]["webhook-id"] == msg_id
    assert abs(int(r.requests[0]["headers"]["webhook-timestamp"]) - time.time()) < 60
    [attempt] = attempts_of(endpoint.id)
    assert attempt.succeeded and attempt.status_code == 200 and attempt.latency_ms >= 0
    assert attempt.response_excerpt == '{"ok": true}'
    with pytest.raises(Exception):  # noqa: B017  another secret does not verify
        Webhook(services.rotate_secret(OWNER, endpoint.id, overlap_seconds=0).secret).verify(
            r.requests[0]["body"], r.requests[0]["headers"])


def test_fails_twice_then_succeeds_exactly_once(app_ctx, receiver, fast_retries):
    r = receiver(plan=[(500, {}), (503, {})])
    endpoint = services.create_endpoint(OWNER, r.url)
    msg_id = send()
    drain(app_ctx)
    assert len(r.requests) == 3
    assert {req["headers"]["webhook-id"] for req in r.requests} == {msg_id}
    assert len(r.verified(endpoint.secret)) == 3
    log = attempts_of(endpoint.id)
    assert [(a.attempt_number, a.status_code, a.succeeded) for a in log] == [
        (1, 500, False), (2, 503, False), (3, 200, True)]
    db.remove()
    delivery = db.scalar(select(WebhookDelivery))
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 3
    assert endpoint_row(endpoint.id).failing_since is None
    drain(app_ctx)
    assert len(r.requests) == 3, "nothing is sent again after the success"


def test_retries_follow_the_schedule_with_jitter(app_ctx, receiver):
    r = receiver(plan=[(500, {}), (500, {})])
    endpoint = services.create_endpoint(OWNER, r.url)
    send()
    drain(app_ctx)
    assert len(r.requests) == 1, "the second attempt waits about 5 seconds"
    [first] = attempts_of(endpoint.id)
    wait = (first.next_attempt_at - first.attempted_at).total_seconds()
    assert 4.5 - 0.01 <= wait <= 5.5 + 0.01
    move_time_forward()
    drain(app_ctx)
    assert len(r.requests) == 2
    second = attempts_of(endpoint.id)[1]
    wait = (second.next_attempt_at - second.attempted_at).total_seconds()
    assert 270 <= wait <= 330, "the third attempt comes about 5 minutes later"
    move_time_forward()
    drain(app_ctx)
    assert len(r.requests) == 3 and attempts_of(endpoint.id)[2].succeeded


def test_retry_after_is_honoured_and_3xx_is_a_failure(app_ctx, receiver):
    r = receiver(plan=[(429, {"Retry-After": "600"}), (302, {"Location": "/elsewhere"})])
    endpoint = services.create_endpoint(OWNER, r.url)
    send()
    drain(app_ctx)
    [first] = attempts_of(endpoint.id)
    assert first.status_code == 429
    assert (first.next_attempt_at - first.attempted_at).total_seconds() >= 600
    move_time_forward()
    drain(app_ctx)
    second = attempts_of(endpoint.id)[1]
    assert second.status_code == 302 and not second.succeeded
    assert second.next_attempt_at is not None


def test_410_disables_the_endpoint_and_tells_the_merchant(app_ctx, receiver, fast_retries):
    from app.api.owners import register_owner_contact

    register_owner_contact(lambda owner: ("shop@example.iq", None) if owner == OWNER
                           else (None, None))
    sent_messages.clear()
    r = receiver(plan=[(410, {})])
    endpoint = services.create_endpoint(OWNER, r.url)
    send()
    drain(app_ctx)
    assert len(r.requests) == 1
    row = endpoint_row(endpoint.id)
    assert not row.enabled and row.disabled_reason == "gone"
    assert db.scalar(select(WebhookDelivery.state)) == DeliveryState.FAILED
    assert any(m["email"] == "shop@example.iq" and "410" in m["body"] for m in sent_messages)
    assert services.stage_message(OWNER, "order.paid", {}) is None, "nothing more is sent"
    # Shop registers its own contact lookup again at the next app start; keep tests apart.
    from shop.services.merchant_api import merchant_contact

    register_owner_contact(merchant_contact)


def test_endpoint_failing_for_days_is_disabled(app_ctx, receiver):
    r = receiver(plan=[(500, {})])
    endpoint = services.create_endpoint(OWNER, r.url)
    db.execute(update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=6)))
    db.commit()
    send()
    drain(app_ctx)
    row = endpoint_row(endpoint.id)
    assert not row.enabled and row.disabled_reason == "failing"


def test_replay_resends_with_the_same_webhook_id(app_ctx, receiver, fast_retries):
    r = receiver(plan=[(500, {})] * 10)  # every attempt of the schedule fails
    endpoint = services.create_endpoint(OWNER, r.url)
    before = utcnow()
    msg_id = send()
    drain(app_ctx, max_rounds=20)
    assert len(r.requests) == 10
    db.remove()
    assert db.scalar(select(WebhookDelivery.state)) == DeliveryState.FAILED
    # The merchant fixed the server; replay everything that failed since `before`.
    r.plan.clear()
    assert services.replay_failed_since(OWNER, endpoint.id, before) == 1
    drain(app_ctx)
    assert len(r.requests) == 11
    assert r.requests[-1]["headers"]["webhook-id"] == msg_id
    assert r.requests[-1]["body"] == r.requests[0]["body"]
    db.remove()
    assert db.scalar(select(WebhookDelivery.state)) == DeliveryState.SUCCEEDED
    # And one message on request, after it had succeeded.
    services.replay_message(OWNER, msg_id)
    drain(app_ctx)
    assert len(r.requests) == 12 and r.requests[-1]["headers"]["webhook-id"] == msg_id
    assert len(r.verified(endpoint_row(endpoint.id).secret)) == 12


def test_rotation_signs_with_both_secrets_during_the_overlap(app_ctx, receiver):
    r = receiver()
    endpoint = services.create_endpoint(OWNER, r.url)
    old_secret = endpoint.secret
    new_secret = services.rotate_secret(OWNER, endpoint.id).secret
    send()
    drain(app_ctx)
    [req] = r.requests
    assert len(req["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(req["body"], req["headers"])
    Webhook(new_secret).verify(req["body"], req["headers"])


def active_merchant_ids(app, n: int = 1) -> list[int]:
    """Ids of active merchants (the shop's owner check lets only them use the API)."""
    from tests.shop.helpers import make_merchant

    with app.app_context():
        ids = [make_merchant().id for _ in range(n)]
        db.commit()
    return ids


def test_send_test_event_and_log_through_the_api(app, client, receiver):
    owner, other_owner = active_merchant_ids(app, 2)
    with app.app_context(), unit_of_work():
        _key, secret = keys.create_key(owner, "ops", ["webhooks"])
    auth = {"Authorization": f"Bearer {secret}"}
    r = receiver()
    made = client.post("/api/v1/webhook-endpoints", json={"url": r.url}, headers=auth)
    assert made.status_code == 201, made.json
    endpoint_id, whsec = made.json["id"], made.json["secret"]
    assert client.get(f"/api/v1/webhook-endpoints/{endpoint_id}", headers=auth).json[
        "enabled"] is True
    sent = client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test", headers=auth)
    assert sent.status_code == 202 and sent.json["event_type"] == "webhook.test"
    drain(app)
    [payload] = r.verified(whsec)
    assert payload["type"] == "webhook.test"
    log = client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/attempts", headers=auth).json
    assert [(a["message_id"], a["status_code"]) for a in log["data"]] == [
        (sent.json["id"], 200)]
    replayed = client.post(f"/api/v1/webhook-messages/{sent.json['id']}/replay", json={},
                           headers=auth)
    assert replayed.status_code == 202 and replayed.json == {"replayed": 1}
    drain(app)
    assert len(r.requests) == 2
    # Another owner sees none of it.
    with app.app_context(), unit_of_work():
        _k, other = keys.create_key(other_owner, "other", ["webhooks"])
    other_auth = {"Authorization": f"Bearer {other}"}
    assert client.get(f"/api/v1/webhook-endpoints/{endpoint_id}",
                      headers=other_auth).status_code == 404
    assert client.post(f"/api/v1/webhook-messages/{sent.json['id']}/replay", json={},
                       headers=other_auth).status_code == 404


@pytest.mark.parametrize("url, code", [
    ("http://shop.example/hook", "https_required"),
    ("https://127.0.0.1/hook", "address_not_allowed"),
    ("https://localhost:8443/hook", "address_not_allowed"),
    ("https://10.1.2.3/hook", "address_not_allowed"),
    ("https://169.254.169.254/latest/meta-data", "address_not_allowed"),
    ("https://[::1]/hook", "address_not_allowed"),
    ("https://[::ffff:192.168.1.1]/hook", "address_not_allowed"),
    ("not a url", "invalid_url"),
    ("ftp://shop.example/hook", "invalid_url"),
])
def test_production_refuses_unsafe_urls_at_registration(app, client, production, url, code):
    [owner] = active_merchant_ids(app)
    with app.app_context(), unit_of_work():
        _key, secret = keys.create_key(owner, "ops", ["webhooks"])
    r = client.post("/api/v1/webhook-endpoints", json={"url": url},
                    headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 422 and r.json["fields"] == {"url": [code]}, r.json
    with app.app_context():
        assert services.list_endpoints(owner) == []


def test_production_refuses_unsafe_addresses_at_delivery(app_ctx, receiver, fast_retries):
    r = receiver()
    endpoint = services.create_endpoint(OWNER, r.url)  # development: loopback allowed
    send()
    app_ctx.config["BARID_ENV"] = "production"
    try:
        drain(app_ctx)
    finally:
        app_ctx.config["BARID_ENV"] = "development"
    assert r.requests == []
    log = attempts_of(endpoint.id)
    assert log and all(a.error == "refused: https_required" for a in log)


def test_timeout_is_recorded(app_ctx, receiver, fast_retries):
    app_ctx.config["WEBHOOK_TIMEOUT"] = 0.5
    try:
        r = receiver(delay=2)
        app_ctx.config["WEBHOOK_RETRY_SCHEDULE"] = [0]
        endpoint = services.create_endpoint(OWNER, r.url)
        send()
        started = time.monotonic()
        drain(app_ctx)
        assert time.monotonic() - started < 1.8
    finally:
        app_ctx.config["WEBHOOK_TIMEOUT"] = 10.0
    [attempt] = attempts_of(endpoint.id)
    assert attempt.status_code is None and attempt.error.startswith("timed out")
    assert 400 <= attempt.latency_ms < 1500


@contextlib.contextmanager
def black_hole():
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


def test_one_endpoint_down_does_not_delay_another(app, pg_url, redis_url, receiver):
    """Two rq workers: the attempt to a silent endpoint occupies one of them until its
    timeout, while the healthy endpoint's delivery goes out at once on the other."""
    import redis as redis_lib
    from rq import Worker

    conn = redis_lib.Redis.from_url(redis_url)
    conn.flushdb()
    good = receiver()
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
           "PYTHONPATH": str(ROOT), "BARID_ENV": "development", "WEBHOOK_TIMEOUT": "4",
           "WEBHOOKS_ALLOW_LOOPBACK": "1", "MAIL_BACKEND": "memory"}
    barid = str(Path(sys.executable).parent / "barid")
    workers = [subprocess.Popen([barid, "worker", "--queues", "webhooks", "--name", f"wh{i}"],
                                cwd=ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for i in range(2)]
    saved = app.config["REDIS_URL"]
    try:
        deadline = time.monotonic() + 30
        while len(Worker.all(connection=conn)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(Worker.all(connection=conn)) == 2, "workers did not start"
        with black_hole() as silent_url, app.app_context():
            app.config["REDIS_URL"] = redis_url
            silent = services.create_endpoint(OWNER, silent_url, event_types=["order.paid"])
            services.create_endpoint(OWNER, good.url, event_types=["order.paid"])
            started = time.monotonic()
            # The silent endpoint's attempt is staged (and queued) first.
            send("order.paid")
            deadline = time.monotonic() + 10
            while not good.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            assert good.requests, "the healthy endpoint got nothing"
            took = good.requests[0]["at"] - started
            assert took < 2.0, f"the healthy delivery waited {took:.2f} s"
            deadline = time.monotonic() + 15
            while not attempts_of(silent.id) and time.monotonic() < deadline:
                time.sleep(0.1)
            [attempt] = attempts_of(silent.id)
            assert attempt.error.startswith("timed out") and attempt.latency_ms >= 3900
    finally:
        app.config["REDIS_URL"] = saved
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, 9)
            w.wait(10)
        conn.flushdb()


def test_payload_is_compact_json_of_the_stored_envelope(app_ctx, receiver):
    r = receiver()
    services.create_endpoint(OWNER, r.url)
    send("order.paid", {"order_id": 1, "note": "شكرا"})
    drain(app_ctx)
    body = r.requests[0]["body"]
    assert json.loads(body)["data"]["note"] == "شكرا"
    assert b": " not in body and "شكرا".encode() in body


# -- draining under rq: many attempts in one work-horse (app.webhooks.jobs.deliver_due) ----

def attempt_jobs(endpoint_id: int) -> list[int]:
    """The endpoint's pending attempt jobs, oldest first."""
    db.remove()
    out = []
    for job in db.scalars(select(OutboxJob).where(OutboxJob.state == JobState.PENDING,
                                                  OutboxJob.task == services.ATTEMPT_DELIVERY)
                          .order_by(OutboxJob.id)):
        if db.get(WebhookDelivery, job.args["delivery_id"]).endpoint_id == endpoint_id:
            out.append(job.id)
    return out


def test_drain_a_slow_endpoint_does_not_delay_another(app_ctx, receiver):
    """The job is the silent endpoint's; the healthy endpoint's three messages go out
    beside it at once, and the silent one costs one timeout, not one per message."""
    from app.webhooks import jobs

    app_ctx.config["WEBHOOK_TIMEOUT"] = 2
    good = receiver()
    try:
        with black_hole() as silent_url:
            silent = services.create_endpoint(OWNER, silent_url)
            services.create_endpoint(OWNER, good.url)
            sent = [send("order.paid", {"order_id": i}) for i in range(3)]
            [first, *rest] = attempt_jobs(silent.id)
            started = time.monotonic()
            jobs.deliver_due(first)
            took = time.monotonic() - started
    finally:
        app_ctx.config["WEBHOOK_TIMEOUT"] = 10.0
    assert [r["headers"]["webhook-id"] for r in good.requests] == sent
    assert good.requests[-1]["at"] - started < 1.5, "the healthy endpoint waited"
    [attempt] = attempts_of(silent.id)
    assert attempt.error.startswith("timed out") and attempt.next_attempt_at is not None
    assert took < 4, "the drain stopped at the silent endpoint's first failure"
    assert attempt_jobs(silent.id)[:2] == rest, "its later messages wait for their jobs"


def test_interrupted_drain_resends_only_the_unrecorded_attempt(app_ctx, receiver,
                                                                monkeypatch):
    """The work-horse dies right after the third POST, before recording it: the first
    two are not sent again, the third is (it was never recorded), each attempt is
    counted once, and the rest go out once."""
    from app.webhooks import jobs, transport

    r = receiver()
    endpoint = services.create_endpoint(OWNER, r.url)
    sent = [send("order.paid", {"order_id": i}) for i in range(5)]
    real_post = transport.post
    calls = []

    def dying_post(*args, **kwargs):
        outcome = real_post(*args, **kwargs)
        calls.append(outcome)
        if len(calls) == 3:
            raise SystemExit("work-horse killed")
        return outcome

    monkeypatch.setattr(transport, "post", dying_post)
    with pytest.raises(SystemExit):
        jobs.deliver_due(attempt_jobs(endpoint.id)[0])
    assert [req["headers"]["webhook-id"] for req in r.requests] == sent[:3]
    assert len(attempts_of(endpoint.id)) == 2
    monkeypatch.setattr(transport, "post", real_post)
    drain(app_ctx)
    assert [req["headers"]["webhook-id"] for req in r.requests] == sent[:3] + sent[2:]
    log = attempts_of(endpoint.id)
    assert [a.message_id for a in log] == sent and all(a.succeeded for a in log)
    assert {a.attempt_number for a in log} == {1}


def test_two_drainers_of_one_endpoint_send_each_attempt_once_in_order(app, app_ctx,
                                                                       receiver):
    from app.webhooks import jobs

    r = receiver(delay=0.01)
    endpoint = services.create_endpoint(OWNER, r.url)
    sent = [send("order.paid", {"order_id": i}) for i in range(12)]
    ids = attempt_jobs(endpoint.id)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(job_id: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                jobs.deliver_due(job_id)
        except BaseException as exc:  # noqa: BLE001  reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(job_id,)) for job_id in (ids[0], ids[5])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [req["headers"]["webhook-id"] for req in r.requests] == sent
    log = attempts_of(endpoint.id)
    assert [a.message_id for a in log] == sent and all(a.succeeded for a in log)
    assert attempt_jobs(endpoint.id) == []
