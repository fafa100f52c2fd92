"""A payment succeeds once, however many hands reach for it at the same moment: the payer
reloading the bank-card result page, the Stripe webhook's job (delivered twice) and the
reconciliation job, each in its own thread, session and transaction, against localstripe
on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from app.auth.services import create_user
from app.database import db, unit_of_work
from app.events import DomainEvent
from payments import gateway, services
from payments.models import JournalEntry, Payment, PaymentTransition, StripeEvent
from payments.reconcile import run_reconciliation
from payments.webhooks import process_stripe_event
from tests.payments.test_stripe import OK_CARD, event, new_pm, post_event

PASSWORD = "correct horse 42"
RESULT_PAGES = 4


def login(client, email: str) -> None:
    res = client.post("/login", data={"identifier": email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def all_at_once(app, jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in its own thread and app context, released together; returns what
    each returned or raised, in order."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[object] = [None] * len(jobs)

    def run(i: int, job: Callable[[], object]) -> None:
        with app.app_context():
            try:
                barrier.wait()
                outcomes[i] = job()
            except Exception as exc:  # noqa: BLE001  (returned, the test asserts on it)
                outcomes[i] = exc
            finally:
                db.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racer is still waiting"
    return outcomes


@pytest.mark.commits  # threads race on their own sessions and connections
def test_result_page_webhook_job_and_reconciliation_book_a_card_payment_once(
        stripe_app, usd_rate, localstripe):
    payer = create_user("Zainab Payer", email=f"payer-{uuid.uuid4().hex[:8]}@example.iq",
                        password=PASSWORD, roles=("shopper",))
    payer_id, email = payer.id, payer.email
    with unit_of_work():
        start = services.start_card_payment(
            amount=25_000, currency="IQD", reference_kind="parcel",
            reference_id="CP123456785IQ", purpose="customs_duty",
            idempotency_key=f"race-{uuid.uuid4().hex[:8]}", payer_user_id=payer_id)
    pid, pi_id = start.payment.id, start.payment.stripe_payment_intent
    with unit_of_work():
        confirmed = services.confirm_card_payment(pid, payment_method=new_pm(OK_CARD),
                                                  payer_user_id=payer_id)
    assert confirmed["status"] == "succeeded"
    db.remove()
    assert db.get(Payment, pid).status == "pending"  # Stripe took it; Barid not yet

    # Stripe's webhook arrives and is stored; its job has not run yet.
    pi = gateway.client().v1.payment_intents.retrieve(pi_id)
    hook = event("payment_intent.succeeded", pi.to_dict())
    assert post_event(stripe_app.test_client(), hook).status_code == 200
    # One login, its cookie in four tabs (a new login would end the others' session).
    clients = [stripe_app.test_client() for _ in range(RESULT_PAGES)]
    login(clients[0], email)
    cookie = clients[0].get_cookie("session")
    assert cookie is not None
    for tab in clients[1:]:
        tab.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
    db.remove()

    def result_page(client) -> Callable[[], object]:
        return lambda: client.get(f"/payments/pay/{pid}/result").status_code

    def webhook_job() -> object:
        process_stripe_event(hook["id"])
        return "processed"

    def reconciliation() -> object:
        with unit_of_work():
            return run_reconciliation().differences

    outcomes = all_at_once(stripe_app, [*(result_page(c) for c in clients),
                                        webhook_job, webhook_job, reconciliation])

    pages, jobs, [differences] = (outcomes[:RESULT_PAGES],
                                  outcomes[RESULT_PAGES:RESULT_PAGES + 2], outcomes[-1:])
    # Every racer got an answer, none an error.
    assert pages == [200] * RESULT_PAGES, pages
    assert jobs == ["processed", "processed"], jobs
    assert isinstance(differences, list), differences
    db.remove()
    assert db.get(Payment, pid).status == "succeeded"
    moves = db.execute(select(PaymentTransition.from_status, PaymentTransition.to_status)
                       .where(PaymentTransition.payment_id == pid)
                       .order_by(PaymentTransition.id)).all()
    assert [tuple(m) for m in moves] == [("created", "pending"), ("pending", "succeeded")]
    announced = [e.payload["payment_id"] for e in db.scalars(
        select(DomainEvent).where(DomainEvent.name == "payment.succeeded"))]
    assert announced == [pid]
    assert db.scalar(select(func.count(JournalEntry.id))
                     .where(JournalEntry.payment_id == pid)) == 1
    assert db.scalar(select(StripeEvent.processed_at)
                     .where(StripeEvent.id == hook["id"])) is not None
    # The books as the operator checks them.
    checked = stripe_app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert checked.exit_code == 0, checked.output
    assert "ledger ok" in checked.output
    # Loading the page again afterwards changes nothing more.
    assert clients[0].get(f"/payments/pay/{pid}/result").status_code == 200
    db.remove()
    assert db.scalar(select(func.count(PaymentTransition.id))
                     .where(PaymentTransition.payment_id == pid)) == 2
