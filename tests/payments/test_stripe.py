"""Bank cards through Stripe, against localstripe on 127.0.0.1, and its signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from app.database import db, unit_of_work
from app.jobs import drain
from payments import gateway, services
from payments.errors import CardPaymentsUnavailable
from payments.localstripe_server import free_port
from payments.models import Account, Dispute, JournalEntry, Payment, Refund, StripeEvent
from tests.payments.conftest import SECRET
from tests.payments.helpers import ledger_problems

OK_CARD, DECLINED_CARD, THREE_DS_CARD = "4242424242424242", "4000000000000341", "4000002760003184"


@pytest.fixture()
def live_url(stripe_app, localstripe):
    """The app served on a loopback port, registered as localstripe's webhook target."""
    port = free_port()
    server = make_server("127.0.0.1", port, stripe_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    localstripe.register_webhook(f"{url}/payments/stripe/webhook", SECRET,
                                 name=f"t{uuid.uuid4().hex[:8]}")
    yield url
    server.shutdown()


def signed(body: dict, *, secret: str = SECRET, at: int | None = None) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    ts = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), b"%d.%s" % (ts, raw), hashlib.sha256).hexdigest()
    return raw, f"t={ts},v1={sig}"


def post_event(client, body, **kw):
    raw, header = signed(body, **kw)
    return client.post("/payments/stripe/webhook", data=raw,
                       headers={"Stripe-Signature": header, "Content-Type": "application/json"})


def event(type_: str, obj: dict, *, created: int | None = None) -> dict:
    return {"id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": type_,
            "created": created or int(time.time()), "data": {"object": obj}}


def new_pm(number: str) -> str:
    return gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034,
                                 "cvc": "123"}}).id


def start_duty(amount=25_000, key="duty-1"):
    start = services.start_card_payment(amount=amount, currency="IQD", reference_kind="parcel",
                                        reference_id="CP123456785IQ", purpose="customs_duty",
                                        idempotency_key=key)
    db.commit()
    return start


def wait_for_event(type_: str, pid: int, timeout: float = 10.0) -> StripeEvent:
    """Wait for localstripe's webhook about payment `pid` (other tests' may arrive too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.rollback()
        pi = db.get(Payment, pid).stripe_payment_intent
        for found in db.scalars(select(StripeEvent).where(StripeEvent.type == type_)):
            if found.payload["data"]["object"]["id"] == pi:
                return found
        time.sleep(0.2)
    raise AssertionError(f"no {type_} webhook arrived")


def test_card_payment_succeeds_from_the_verified_webhook(stripe_app, usd_rate, live_url):
    start = start_duty()
    p = start.payment
    pid = p.id
    # 25,000 IQD at 1,310 IQD per USD: 19.08 USD, both amounts and the rate kept.
    assert (start.charged_amount, start.charged_currency) == (1908, "USD")
    assert p.exchange_rate == Decimal("1310") and p.exchange_rate_id == usd_rate.id
    assert start.client_secret.startswith(p.stripe_payment_intent) and start.test_mode
    assert services.start_card_payment(  # the same request again: same intent
        amount=25_000, currency="IQD", reference_kind="parcel", reference_id="CP123456785IQ",
        purpose="customs_duty", idempotency_key="duty-1").payment.id == p.id

    result = services.confirm_card_payment(p.id, payment_method=new_pm(OK_CARD),
                                           payer_user_id=None)
    assert result["status"] == "succeeded"
    # The browser's word is not enough: still pending until the webhook is processed.
    assert db.get(Payment, pid).status == "pending"
    wait_for_event("payment_intent.succeeded", pid)
    drain(stripe_app)
    db.rollback()
    paid = db.get(Payment, pid)
    assert paid.status == "succeeded"
    codes = {a.code: a.balance for a in db.scalars(select(Account))}
    assert codes["stripe:USD"] == 1908 and codes["duty:IQD"] == 25_000
    assert codes["fx:USD"] == -1908 and codes["fx:IQD"] == 25_000
    mine = [e for e in db.scalars(select(StripeEvent))
            if e.payload["data"]["object"].get("id") == paid.stripe_payment_intent]
    assert [e.type for e in mine] == ["payment_intent.succeeded"] and mine[0].processed_at
    assert ledger_problems() == []


def test_declined_card_fails_cleanly_and_moves_nothing(stripe_app, usd_rate):
    pid = start_duty(key="duty-declined").payment.id
    result = services.confirm_card_payment(pid, payment_method=new_pm(DECLINED_CARD),
                                           payer_user_id=None)
    assert result["status"] == "failed" and "declined" in result["message"].lower()
    failed = db.get(Payment, pid)
    assert failed.status == "failed" and failed.entry_id is None
    assert db.query(JournalEntry).count() == 0
    from app.events import DomainEvent

    assert db.query(DomainEvent).filter_by(name="payment.failed").count() == 1
    # Trying again with a good card starts a new attempt on the same payment.
    again = services.confirm_card_payment(pid, payment_method=new_pm(OK_CARD),
                                          payer_user_id=None)
    assert again["status"] == "succeeded" and db.get(Payment, pid).attempt == 2


def test_three_d_secure_card_needs_authentication_first(stripe_app, usd_rate, localstripe,
                                                        live_url):
    start = start_duty(key="duty-3ds")
    pid = start.payment.id
    result = services.confirm_card_payment(start.payment.id,
                                           payment_method=new_pm(THREE_DS_CARD),
                                           payer_user_id=None)
    assert result["status"] == "requires_action" and result["client_secret"]
    assert db.get(Payment, start.payment.id).status == "pending"
    # What Stripe.js does in the browser when the holder completes the challenge.
    pi = start.payment.stripe_payment_intent
    req = urllib.request.Request(
        f"{localstripe.url}/v1/payment_intents/{pi}/_authenticate?success=true",
        data=json.dumps({"key": "pk_test_barid", "client_secret": start.client_secret}).encode(),
        method="POST")
    assert json.loads(urllib.request.urlopen(req).read())["status"] == "succeeded"
    wait_for_event("payment_intent.succeeded", pid)
    drain(stripe_app)
    db.rollback()
    assert db.get(Payment, pid).status == "succeeded"


def _paid_by_card(stripe_app, key="duty-paid"):
    p = start_duty(key=key).payment
    services.confirm_card_payment(p.id, payment_method=new_pm(OK_CARD), payer_user_id=None)
    pi = gateway.client().v1.payment_intents.retrieve(p.stripe_payment_intent)
    return p.id, pi


def test_same_webhook_five_times_or_out_of_order_changes_state_once(stripe_app, usd_rate):
    client = stripe_app.test_client()
    pid, pi = _paid_by_card(stripe_app)
    succeeded = event("payment_intent.succeeded", pi.to_dict())
    for _ in range(5):
        res = post_event(client, succeeded)
        assert res.status_code == 200
    # An older "failed" event for the same intent, delivered late.
    stale_failure = event("payment_intent.payment_failed", {**pi.to_dict(),
                          "status": "requires_payment_method"}, created=int(time.time()) - 60)
    assert post_event(client, stale_failure).status_code == 200
    assert post_event(client, succeeded).json["duplicate"] is True
    drain(stripe_app)
    drain(stripe_app)
    db.rollback()
    assert db.query(StripeEvent).count() == 2
    assert db.get(Payment, pid).status == "succeeded"
    assert db.query(JournalEntry).filter_by(payment_id=pid).count() == 1
    from app.events import DomainEvent

    assert db.query(DomainEvent).filter_by(name="payment.succeeded").count() == 1
    assert db.query(DomainEvent).filter_by(name="payment.failed").count() == 0
    assert ledger_problems() == []


def test_bad_or_stale_signature_is_refused_and_nothing_stored(stripe_app):
    client = stripe_app.test_client()
    body = event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    assert post_event(client, body, secret="whsec_wrong").status_code == 400
    assert post_event(client, body, at=int(time.time()) - 3600).status_code == 400
    raw, header = signed(body)
    tampered = raw.replace(b"pi_x", b"pi_y")
    assert client.post("/payments/stripe/webhook", data=tampered,
                       headers={"Stripe-Signature": header}).status_code == 400
    assert client.post("/payments/stripe/webhook", data=raw).status_code == 400
    db.rollback()
    assert db.query(StripeEvent).count() == 0


def test_refunds_from_barid_and_from_the_stripe_dashboard_are_booked_once(stripe_app,
                                                                          usd_rate, clerk):
    client = stripe_app.test_client()
    pid, pi = _paid_by_card(stripe_app, key="duty-refunds")
    post_event(client, event("payment_intent.succeeded", pi.to_dict()))
    drain(stripe_app)
    # Barid refunds 10,000 IQD: Stripe refunds the same share of the USD charge.
    r = services.refund(pid, 10_000, "duty recalculated", clerk.id, "refund-1")
    db.commit()
    assert r.charged_amount == round(1908 * 10_000 / 25_000) and r.stripe_refund_id
    # Someone refunds 5.00 USD in the Stripe dashboard.
    dash = gateway.client().v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    charge = gateway.client().v1.charges.retrieve(pi.latest_charge.id
                                                  if hasattr(pi.latest_charge, "id")
                                                  else pi.latest_charge)
    for _ in range(2):
        post_event(client, event("charge.refunded", charge.to_dict()))
    drain(stripe_app)
    db.rollback()
    refunds = db.scalars(select(Refund).where(Refund.payment_id == pid)
                         .order_by(Refund.id)).all()
    assert [(x.origin, x.charged_amount) for x in refunds] == [("barid", 763), ("stripe", 500)]
    assert refunds[1].stripe_refund_id == dash.id
    assert refunds[1].amount == round(500 * 25_000 / 1908)
    paid = db.get(Payment, pid)
    assert paid.status == "partially_refunded"
    assert paid.refunded_amount == 10_000 + refunds[1].amount
    assert ledger_problems() == []
    codes = {a.code: a.balance for a in db.scalars(select(Account))}
    assert codes["stripe:USD"] == 1908 - 763 - 500


def _charge_of(pi) -> str:
    return pi.latest_charge.id if hasattr(pi.latest_charge, "id") else pi.latest_charge


def _succeeded(stripe_app, client, key):
    pid, pi = _paid_by_card(stripe_app, key=key)
    post_event(client, event("payment_intent.succeeded", pi.to_dict()))
    drain(stripe_app)
    return pid, pi


def test_dispute_marks_payment_and_tells_the_supervisor(stripe_app, usd_rate, localstripe):
    from app.audit import AuditRecord
    from app.notify import sent_messages
    from tests.payments.conftest import make_user

    make_user("boss@barid.iq", "supervisor")
    client = stripe_app.test_client()
    pid, pi = _succeeded(stripe_app, client, "duty-dispute")
    sent_messages.clear()
    opened = localstripe.open_dispute(_charge_of(pi), reason="fraudulent")
    # Validly signed, but the payload's figures are not Stripe's: Stripe's are kept.
    forged = {**opened, "amount": 999_999, "currency": "eur", "reason": "general",
              "status": "won", "payment_intent": "pi_someone_else"}
    for _ in range(3):
        post_event(client, event("charge.dispute.created", forged))
    drain(stripe_app)
    db.rollback()
    assert db.get(Payment, pid).status == "disputed"
    [d] = db.scalars(select(Dispute)).all()
    assert (d.payment_id, d.stripe_dispute_id, d.amount, d.currency, d.reason, d.status) == (
        pid, opened["id"], 1908, "USD", "fraudulent", "needs_response")
    assert [m["email"] for m in sent_messages] == ["boss@barid.iq"]

    # Later news of the dispute: again Stripe's word, not the payload's.
    localstripe.change_dispute(opened["id"], status="under_review")
    post_event(client, event("charge.dispute.updated", {**forged, "status": "lost"}))
    drain(stripe_app)
    db.rollback()
    d = db.scalar(select(Dispute))
    assert (d.amount, d.status) == (1908, "under_review")
    assert db.query(AuditRecord).filter_by(action="payment.dispute_updated").count() == 1
    assert ledger_problems() == []


def test_a_dispute_stripe_does_not_know_changes_nothing(stripe_app, usd_rate):
    client = stripe_app.test_client()
    pid, pi = _succeeded(stripe_app, client, "duty-forged-dispute")
    forged = {"id": "dp_forged123", "object": "dispute", "amount": 1908, "currency": "usd",
              "charge": _charge_of(pi), "payment_intent": pi.id, "reason": "fraudulent",
              "status": "needs_response"}
    post_event(client, event("charge.dispute.created", forged))
    drain(stripe_app)
    db.rollback()
    assert db.get(Payment, pid).status == "succeeded"
    assert db.query(Dispute).count() == 0
    [stored] = db.scalars(select(StripeEvent).where(
        StripeEvent.type == "charge.dispute.created")).all()
    assert stored.processed_at is not None and stored.outcome == "not found at Stripe"


def test_when_stripe_cannot_be_asked_nothing_changes_and_the_job_is_retried(
        stripe_app, usd_rate, localstripe, monkeypatch):
    from app.events import OutboxJob

    client = stripe_app.test_client()
    pid, pi = _succeeded(stripe_app, client, "duty-unreachable")
    opened = localstripe.open_dispute(_charge_of(pi))
    dash = gateway.client().v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    post_event(client, event("charge.dispute.created", opened))
    post_event(client, event("charge.refunded", gateway.client().v1.charges.retrieve(
        _charge_of(pi)).to_dict()))
    # Stripe is out of reach: the fetch fails, so the jobs fail and change nothing.
    monkeypatch.setitem(stripe_app.config, "STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    drain(stripe_app)
    db.rollback()
    assert db.get(Payment, pid).status == "succeeded"
    assert db.query(Dispute).count() == 0 and db.query(Refund).count() == 0
    waiting = db.scalars(select(OutboxJob).where(
        OutboxJob.task == "payments.webhooks:process_stripe_event",
        OutboxJob.last_error.is_not(None))).all()
    assert len(waiting) == 2 and all(j.state == "pending" for j in waiting)
    assert all(e.processed_at is None for e in db.scalars(select(StripeEvent).where(
        StripeEvent.type.in_(["charge.dispute.created", "charge.refunded"]))))
    # Stripe is back and the retry comes due: now the events apply, from Stripe's word.
    monkeypatch.setitem(stripe_app.config, "STRIPE_API_BASE", localstripe.url)
    for j in waiting:
        j.run_after = j.created_at
    db.commit()
    drain(stripe_app)
    db.rollback()
    assert db.get(Payment, pid).status == "disputed"
    assert db.scalar(select(Dispute)).amount == 1908
    [r] = db.scalars(select(Refund)).all()
    assert (r.stripe_refund_id, r.charged_amount) == (dash.id, 500)
    assert ledger_problems() == []


def test_a_refund_event_books_what_stripe_says_not_the_payload(stripe_app, usd_rate):
    client = stripe_app.test_client()
    pid, pi = _succeeded(stripe_app, client, "duty-forged-refund")
    other_pid, other_pi = _succeeded(stripe_app, client, "duty-forged-refund-2")
    dash = gateway.client().v1.refunds.create(params={"payment_intent": pi.id, "amount": 300})
    charge = gateway.client().v1.charges.retrieve(_charge_of(pi)).to_dict()
    # The payload claims the whole charge was refunded, and names the other payment.
    forged = {**charge, "amount_refunded": 1908, "refunded": True,
              "payment_intent": other_pi.id,
              "refunds": {"object": "list", "data": [{**dash.to_dict(), "amount": 1908}]}}
    post_event(client, event("charge.refunded", forged))
    # A refund event about a refund Stripe never made changes nothing.
    post_event(client, event("refund.created", {**dash.to_dict(), "id": "re_forged123"}))
    drain(stripe_app)
    db.rollback()
    [r] = db.scalars(select(Refund)).all()
    assert (r.payment_id, r.stripe_refund_id, r.charged_amount) == (pid, dash.id, 300)
    assert r.amount == round(300 * 25_000 / 1908)
    assert db.get(Payment, pid).status == "partially_refunded"
    assert db.get(Payment, other_pid).refunded_amount == 0
    assert ledger_problems() == []


def test_without_a_secret_key_card_payments_are_clearly_unavailable(app_ctx, usd_rate):
    old = app_ctx.config["STRIPE_SECRET_KEY"]
    app_ctx.config["STRIPE_SECRET_KEY"] = None
    try:
        with pytest.raises(CardPaymentsUnavailable):
            start_duty(key="nokey")
    finally:
        app_ctx.config["STRIPE_SECRET_KEY"] = old
    db.rollback()
    assert db.query(Payment).count() == 0


def test_reconciliation_reports_a_refund_only_stripe_knows_until_its_webhook(
        stripe_app, usd_rate, localstripe):
    from payments.models import ReconciliationRun
    from payments.reconcile import run_reconciliation

    urllib.request.urlopen(urllib.request.Request(f"{localstripe.url}/_config/data",
                                                  method="DELETE"))
    client = stripe_app.test_client()
    pid, pi = _paid_by_card(stripe_app, key="duty-recon")
    post_event(client, event("payment_intent.succeeded", pi.to_dict()))
    drain(stripe_app)
    with unit_of_work():  # run_reconciliation flushes; its caller owns the transaction
        clean = run_reconciliation()
    assert (clean.checked, clean.differences) == (1, [])
    gateway.client().v1.refunds.create(params={"payment_intent": pi.id, "amount": 300})
    with unit_of_work():
        found = run_reconciliation()
    assert [(d["problem"], d["stripe"], d["barid"]) for d in found.differences] == [
        ("refunds differ", 300, 0)]
    charge = gateway.client().v1.charges.retrieve(pi.latest_charge.id)
    post_event(client, event("charge.refunded", charge.to_dict()))
    drain(stripe_app)
    with unit_of_work():
        last = run_reconciliation()
    assert last.differences == []
    db.rollback()
    assert db.query(ReconciliationRun).count() == 3


def test_webhook_job_runs_on_rq_with_real_redis(stripe_app, usd_rate, redis_url, monkeypatch):
    """The production executor: the job goes through Redis and an rq worker."""
    import redis
    from rq import Queue, SimpleWorker

    redis.Redis.from_url(redis_url).flushdb()
    pid, pi = _paid_by_card(stripe_app, key="duty-rq")
    monkeypatch.setitem(stripe_app.config, "REDIS_URL", redis_url)
    client = stripe_app.test_client()
    for _ in range(3):
        assert post_event(client, event("payment_intent.succeeded", pi.to_dict()),
                          ).status_code == 200
    from app.redisconn import get_redis

    conn = get_redis(redis_url)
    queues = [Queue(name, connection=conn) for name in ("default", "webhooks", "low")]
    SimpleWorker(queues, connection=conn).work(burst=True)
    db.rollback()
    assert db.get(Payment, pid).status == "succeeded"
    assert db.query(JournalEntry).filter_by(payment_id=pid).count() == 1
    conn.flushdb()
