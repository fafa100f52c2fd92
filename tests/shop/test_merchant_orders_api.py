"""Orders and consignments through the merchant API: only one's own, acknowledge, hand
over (a real parcel with an S10 number and a label PDF), cancel with refund, and the
webhooks a merchant receives as the order and its parcel move."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.api import keys
from app.database import db, unit_of_work
from app.jobs import drain
from shop.models import (
    Consignment,
    ConsignmentStatus,
    Merchant,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)
from shop.services import orders
from tests.openapi_check import validate_answer
from tests.shop.helpers import make_category, make_merchant, make_product, make_user
from tracking import s10
from tracking.models import Parcel
from tracking.services.events import EventReport, ingest


def make_order(merchant, product, *, paid: bool = True, quantity: int = 2) -> Consignment:
    shopper = make_user()
    order = Order(number=f"BR{product.id:06d}{quantity}", user_id=shopper.id,
                  status=OrderStatus.PENDING_PAYMENT, delivery_method="door",
                  recipient_name="زينب علي", phone="+9647701234567", governorate="IQ-BA",
                  district="العشار", landmark="قرب الكورنيش", payment_method="post_card",
                  items_total=20_000, delivery_fee=5_000, total=25_000)
    db.add(order)
    db.flush()
    c = Consignment(order_id=order.id, merchant_id=merchant.id, zone="other_governorate",
                    status=ConsignmentStatus.AWAITING_PAYMENT, weight_g=600,
                    items_total=20_000, delivery_fee=5_000, total=25_000)
    db.add(c)
    db.flush()
    db.add(OrderLine(order_id=order.id, consignment_id=c.id, product_id=product.id,
                     title_ar="هاتف", title_en="Phone", quantity=quantity, unit_price=10_000,
                     currency="IQD", unit_price_iqd=10_000, line_total_iqd=20_000,
                     weight_g=300))
    db.commit()
    if paid:
        order = orders.lock_order(order.id)
        orders.apply_transition(order, OrderStatus.PAID, reason="test")
        orders.apply_consignment_transition(c, ConsignmentStatus.OPEN, reason="test")
        db.commit()
    return c


@pytest.fixture()
def shops(app_ctx):
    mine, theirs = make_merchant(), make_merchant()
    category = make_category()
    product = make_product(mine, category, stock=8, merchant_sku="PH-1")
    other_product = make_product(theirs, category)
    db.commit()
    with unit_of_work():  # the key services flush; this set-up commits them
        _k, secret = keys.create_key(mine.id, "ERP", ["orders", "parcels", "webhooks"])
        _k, their_secret = keys.create_key(theirs.id, "ERP", ["orders", "parcels"])
    return {"mine": mine.id, "theirs": theirs.id, "product": product.id,
            "other_product": other_product.id, "auth": {"Authorization": f"Bearer {secret}"},
            "their_auth": {"Authorization": f"Bearer {their_secret}"}}


def test_lists_only_own_consignments_with_filters(client, shops):
    mine = make_order(db.get(type(make_merchant()), shops["mine"]),
                      db.get(Product, shops["product"]))

    theirs = make_order(db.get(Merchant, shops["theirs"]), db.get(Product, shops["other_product"]))
    unpaid = make_order(db.get(Merchant, shops["mine"]), db.get(Product, shops["product"]),
                        paid=False, quantity=1)
    ids = mine.id, theirs.id, unpaid.id
    page = client.get("/api/v1/consignments", headers=shops["auth"]).json
    assert [c["id"] for c in page["data"]] == [ids[2], ids[0]]
    open_only = client.get("/api/v1/consignments?status=open", headers=shops["auth"]).json
    assert [c["id"] for c in open_only["data"]] == [ids[0]]
    one = open_only["data"][0]
    assert one["lines"][0]["merchant_sku"] == "PH-1" and one["delivery"]["governorate"] == "IQ-BA"
    assert client.get(f"/api/v1/consignments/{ids[1]}",
                      headers=shops["auth"]).status_code == 404
    orders = client.get("/api/v1/orders?status=paid", headers=shops["auth"]).json
    assert [o["consignments"][0]["id"] for o in orders["data"]] == [ids[0]]
    assert client.get(f"/api/v1/orders/{theirs.order_id}",
                      headers=shops["auth"]).status_code == 404


@pytest.mark.commits  # idempotency keys are stored on a connection of their own
def test_acknowledge_then_ready_makes_one_parcel_with_a_label(client, shops, count_commits):
    c = make_order(db.get(Merchant, shops["mine"]), db.get(Product, shops["product"]))
    cid, order_id = c.id, c.order_id
    r = client.post(f"/api/v1/consignments/{cid}/acknowledge", headers=shops["auth"])
    assert r.status_code == 200 and r.json["acknowledged_at"]
    db.remove()
    assert db.get(Order, order_id).status == OrderStatus.PROCESSING
    with count_commits() as commits:
        r = client.post(f"/api/v1/consignments/{cid}/ready", json={"weight_g": 700},
                        headers={**shops["auth"], "Idempotency-Key": "ready-1"})
    assert r.status_code == 200, r.json
    assert len(commits) == 1, "the consignment and tracking's parcel commit together"
    number = r.json["tracking_number"]
    assert s10.validate(number) and number.endswith("IQ") and r.json["status"] == "ready"
    again = client.post(f"/api/v1/consignments/{cid}/ready", json={},
                        headers=shops["auth"])
    assert again.json["tracking_number"] == number

    db.remove()
    [parcel] = db.scalars(select(Parcel)).all()
    assert parcel.order_ref == f"consignment:{cid}" and parcel.weight_grams == 700
    label = client.get(r.json["label_url"].split("localhost", 1)[-1], headers=shops["auth"])
    assert label.status_code == 200 and label.data.startswith(b"%PDF")
    got = client.get(f"/api/v1/parcels/{number}", headers=shops["auth"])
    assert got.status_code == 200 and got.json["tracking_number"] == number
    assert client.get(f"/api/v1/parcels/{number}",
                      headers=shops["their_auth"]).status_code == 404
    assert client.get(f"/api/v1/parcels/{number}/label.pdf",
                      headers=shops["their_auth"]).status_code == 404


def test_ready_before_payment_is_409_and_makes_no_parcel(client, shops):
    c = make_order(db.get(Merchant, shops["mine"]), db.get(Product, shops["product"]),
                   paid=False)
    r = client.post(f"/api/v1/consignments/{c.id}/ready", json={}, headers=shops["auth"])
    assert r.status_code == 409
    db.remove()
    assert db.scalars(select(Parcel)).all() == []


def test_cancel_gives_stock_back(client, shops):
    c = make_order(db.get(Merchant, shops["mine"]), db.get(Product, shops["product"]))
    cid, order_id = c.id, c.order_id
    r = client.post(f"/api/v1/consignments/{cid}/cancel", json={"reason": "out of stock"},
                    headers=shops["auth"])
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    db.remove()
    assert db.get(Product, shops["product"]).stock == 10
    assert db.get(Order, order_id).status == OrderStatus.CANCELLED
    again = client.post(f"/api/v1/consignments/{cid}/ready", json={}, headers=shops["auth"])
    assert again.status_code == 409


class Inbox:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                inbox.requests.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def types(self, secret: str) -> list[str]:
        return [Webhook(secret).verify(b, h)["type"] for b, h in self.requests]


def test_merchant_is_told_of_its_order_and_parcel_by_webhook(app, client, shops):
    inbox = Inbox()
    try:
        made = client.post("/api/v1/webhook-endpoints", json={"url": inbox.url},
                           headers=shops["auth"])
        whsec = made.json["secret"]
        theirs = make_order(db.get(Merchant, shops["theirs"]),
                            db.get(Product, shops["other_product"]))
        c = make_order(db.get(Merchant, shops["mine"]), db.get(Product, shops["product"]))
        cid, their_order = c.id, theirs.order_id
        drain(app)
        assert inbox.types(whsec) == ["order.paid"]
        r = client.post(f"/api/v1/consignments/{cid}/ready", json={}, headers=shops["auth"])
        number = r.json["tracking_number"]
        drain(app)
        ingest(number, EventReport(code="EMA", source="counter",
                                   occurred_at=datetime.now(UTC)))
        db.commit()
        drain(app)
        types = inbox.types(whsec)
        assert types[:2] == ["order.paid", "consignment.ready"]
        assert "parcel.status_changed" in types and "consignment.shipped" in types
        payloads = [Webhook(whsec).verify(b, h) for b, h in inbox.requests]
        changed = next(p for p in payloads if p["type"] == "parcel.status_changed")
        assert changed["data"]["tracking_number"] == number
        assert changed["data"]["consignment_ids"] == [cid]
        assert all(p["data"].get("order_id") != their_order for p in payloads)
        # Each message is what /api/v1/openapi.json says that event type looks like.
        doc = client.get("/api/v1/openapi.json").json
        for p in payloads:
            item = doc["webhooks"][p["type"]]["post"]
            validate_answer(doc, item["requestBody"]["content"]["application/json"]["schema"],
                            p)
    finally:
        inbox.server.shutdown()
        inbox.server.server_close()
