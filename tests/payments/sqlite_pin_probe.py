"""Wrong PINs on the embedded default (a SQLite file), run in a process of its own.

`python -m tests.payments.sqlite_pin_probe <file>` builds an app on a fresh SQLite
file, then (1) sends a wrong PIN at checkout through the test client while another
connection writes, and (2) gives a wrong PIN to a payment whose caller had already
written and then rolls back. With `code` as a second argument it (3) pays at checkout
with a card that is not the shopper's: PIN, then the one-time code. It prints what it
saw as JSON for tests/payments/test_pin_lock.py (and test_one_time_code.py) to judge.
A process of its own because create_app re-initialises the one global engine the
suite's PostgreSQL tests share.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import threading
import time
from typing import Any

from sqlalchemy import select

from app import create_app
from app.audit import AuditRecord, record_audit
from app.auth.models import PostOffice, Role
from app.auth.services import create_user
from app.database import Base, db, get_engine, unit_of_work
from app.models_registry import load_all
from payments import cards, services
from payments.models import PostCard
from shop.models import Address, Cart, CartLine, Order
from shop.pricing import price_in_iqd
from tests.shop.helpers import make_category, make_merchant, make_product

PASSWORD = "correct horse battery"


def _seed() -> dict[str, Any]:
    with unit_of_work():
        office = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد",
                            name_en="Baghdad Post Office", governorate="IQ-BG")
        db.add(office)
        db.flush()
        office_id = office.id
    clerk = create_user("Clerk", email="clerk@barid.iq", password=PASSWORD,
                        roles=(Role.CLERK,), post_office_code="BGD01")
    shopper = create_user("Zainab Ali", email="zainab@example.iq", password=PASSWORD,
                          roles=(Role.SHOPPER,))
    with unit_of_work():
        lamp = make_product(make_merchant(), make_category(), price=15_000, stock=3)
        price = price_in_iqd(lamp)
        db.add(Cart(user_id=shopper.id, lines=[CartLine(
            product_id=lamp.id, quantity=1, seen_price=price.original,
            seen_currency=price.currency, seen_price_iqd=price.iqd or 0)]))
        address = Address(user_id=shopper.id, recipient_name="زينب علي",
                          phone="+9647701234567", governorate="IQ-BG", district="الكرادة",
                          landmark="قرب جامع الرحمن", postal_code=None)
        db.add(address)
        # A card that is not the shopper's: at checkout the shopper is a stranger to it.
        card = cards.issue_card(holder_name="علي حسن", national_id="199000000001",
                                mobile="+9647701234567", pin="4826", user_id=None,
                                clerk_id=clerk.id, office_id=office_id)
        services.receive_cash(office_id=office_id, clerk_id=clerk.id, amount=100_000,
                              currency="IQD", reference_kind="post_card",
                              reference_id=str(card.id), purpose="card_topup",
                              idempotency_key="seed-topup")
    return {"shopper": shopper.email, "address_id": address.id, "card_id": card.id,
            "number": card.number}


def _attempts(path: str, card_id: int) -> int:
    """Read on a connection of its own: only what was committed."""
    with sqlite3.connect(path) as conn:
        return conn.execute("select failed_pin_attempts from post_cards where id = ?",
                            (card_id,)).fetchone()[0]


def _checkout_with_wrong_pin(app: Any, path: str, seeded: dict[str, Any]) -> dict[str, Any]:
    client = app.test_client()
    res = client.post("/login", data={"identifier": seeded["shopper"], "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code
    page = client.get(f"/shop/checkout?method=door&address_id={seeded['address_id']}",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    digest = re.search(r'name="digest"[^>]*value="([0-9a-f]+)"', page)
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page)
    assert digest and key, page[:2000]

    # Another writer, on its own connection, while the wrong PIN is checked.
    other: dict[str, float] = {}
    go = threading.Event()

    def write_meanwhile() -> None:
        go.wait()
        time.sleep(0.05)
        started = time.monotonic()
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute("create table if not exists probe_writes (n integer)")
            conn.execute("insert into probe_writes values (1)")
        other["seconds"] = time.monotonic() - started

    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    go.set()
    started = time.monotonic()
    res = client.post("/shop/checkout", headers={"Accept-Language": "en"}, data={
        "method": "door", "address_id": seeded["address_id"], "digest": digest.group(1),
        "key": key.group(1), "payment": "post_card", "card_number": seeded["number"],
        "pin": "9999"})
    seconds = time.monotonic() - started
    writer.join(60)
    flashed = re.findall(r'class="flash flash-error"[^>]*>([^<]*)<', res.get_data(as_text=True))
    return {"status": res.status_code, "seconds": seconds, "flashed": flashed,
            "other_write_seconds": other.get("seconds"),
            "attempts": _attempts(path, seeded["card_id"]),
            "orders": db.scalar(select(Order.id).limit(1)) is not None}


def _rolled_back_caller(path: str, seeded: dict[str, Any]) -> dict[str, Any]:
    """The caller writes first (so it holds SQLite's write lock), then a wrong PIN."""
    before = _attempts(path, seeded["card_id"])
    started = time.monotonic()
    error = None
    try:
        with unit_of_work():
            record_audit("probe.caller_wrote_first")
            db.flush()
            services.pay_with_post_card(
                card_number=seeded["number"], pin="0000", amount=1000, currency="IQD",
                reference_kind="parcel", reference_id="RR000000080IQ", purpose="postage",
                idempotency_key="probe-rolled-back", actor_id=None)
    except Exception as exc:  # noqa: BLE001 (reported to the test)
        error = type(exc).__name__
    seconds = time.monotonic() - started
    db.remove()
    failed = list(db.scalars(select(AuditRecord.details).where(
        AuditRecord.action == "post_card.pin_failed")))
    caller_kept = db.scalar(select(AuditRecord.id).where(
        AuditRecord.action == "probe.caller_wrote_first")) is not None
    card = db.get(PostCard, seeded["card_id"])
    return {"error": error, "seconds": seconds, "before": before,
            "after": _attempts(path, seeded["card_id"]), "failed_audits": failed,
            "caller_kept": caller_kept, "locked": card is not None and card.locked_at is not None}


def _checkout_with_code(app: Any, path: str, seeded: dict[str, Any]) -> dict[str, Any]:
    """Checkout with the right PIN of a card that is not the shopper's: the checkout's
    transaction holds SQLite's write lock when the code is stored, and rolls back; the
    code must still be there for the next try, which pays with it."""
    from app.notify import sent_messages
    from payments.models import OneTimeCode

    client = app.test_client()
    res = client.post("/login", data={"identifier": seeded["shopper"], "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code
    page = client.get(f"/shop/checkout?method=door&address_id={seeded['address_id']}",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    digest = re.search(r'name="digest"[^>]*value="([0-9a-f]+)"', page)
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page)
    assert digest and key, page[:2000]
    form = {"method": "door", "address_id": seeded["address_id"], "digest": digest.group(1),
            "key": key.group(1), "payment": "post_card", "card_number": seeded["number"]}
    sent_messages.clear()
    first = client.post("/shop/checkout", headers={"Accept-Language": "en"},
                        data={**form, "pin": "4826"})
    first_page = first.get_data(as_text=True)
    db.remove()
    codes_kept = len(db.scalars(select(OneTimeCode)).all())
    orders_after_first = db.scalar(select(Order.id).limit(1)) is not None
    code = re.search(r"\b(\d{6})\b", sent_messages[-1]["body"]).group(1) if sent_messages \
        else ""
    second = client.post("/shop/checkout", headers={"Accept-Language": "en"},
                         data={**form, "one_time_code": code})
    db.remove()
    return {"first_status": first.status_code,
            "asks_code": 'name="one_time_code"' in first_page and "المنتهي بـ 67" in first_page,
            "sms": len(sent_messages), "codes_kept": codes_kept,
            "orders_after_first": orders_after_first, "second_status": second.status_code,
            "orders": len(db.scalars(select(Order)).all()),
            "code_spent": db.scalar(select(OneTimeCode.used_at)) is not None}


def main(path: str, part: str = "pin") -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False,
                      "REDIS_URL": None, "MAIL_BACKEND": "memory", "SERVER_NAME": None,
                      "DATABASE_URL": f"sqlite:///{path}", "PIN_ARGON2_TIME_COST": 1,
                      "PIN_ARGON2_MEMORY_KIB": 1024, "PIN_ARGON2_PARALLELISM": 1})
    with app.app_context():
        load_all()
        Base.metadata.create_all(get_engine())
        seeded = _seed()
        if part == "code":
            print(json.dumps({"code": _checkout_with_code(app, path, seeded)}, default=str))
            return
        checkout = _checkout_with_wrong_pin(app, path, seeded)
        db.remove()
        rolled_back = _rolled_back_caller(path, seeded)
    print(json.dumps({"checkout": checkout, "rolled_back": rolled_back}, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:3])
