"""The merchant portal: keys made, shown once, revoked and replaced; webhook endpoints
with a test event, the delivery log and replay; only the merchant's own."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.api import keys
from app.api.models import ApiKey
from app.auth.models import Role
from app.database import db, unit_of_work
from app.jobs import drain
from app.webhooks import services
from app.webhooks.models import WebhookEndpoint
from shop.models import Merchant, MerchantStatus
from tests.shop.checkout_helpers import login, make_shopper
from tests.shop.helpers import make_office


def make_shop_owner(slug: str):
    owner = make_shopper("Ali Trader", Role.MERCHANT)
    merchant = Merchant(slug=slug, name_ar="متجر الرافدين", name_en="Rafidain Store",
                        owner_id=owner.id, status=MerchantStatus.ACTIVE,
                        post_office_id=make_office().id, governorate="IQ-BG")
    db.add(merchant)
    db.commit()
    return owner, merchant.id


@pytest.fixture()
def merchant_client(app, client):
    with app.app_context():
        owner, merchant_id = make_shop_owner("rafidain")
        login(client, owner)
    return client, merchant_id


def test_key_is_shown_once_and_works(merchant_client):
    client, merchant_id = merchant_client
    page = client.post("/merchant/keys", data={"name": "Warehouse", "scopes": ["catalog"]})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r"bk_test_[A-Za-z0-9_-]{20,}", page.get_data(as_text=True)).group(0)
    api = client.get("/api/v1/products", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    listing = client.get("/merchant/keys").get_data(as_text=True)
    assert secret[:12] in listing and secret not in listing
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.owner_id == merchant_id))
    client.post(f"/merchant/keys/{key_id}/revoke")
    api = client.get("/api/v1/products", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401


def test_key_without_permissions_is_refused(merchant_client):
    client, merchant_id = merchant_client
    page = client.post("/merchant/keys", data={"name": "Nothing"})
    assert page.status_code == 200 and "bk_test_" not in page.get_data(as_text=True)
    assert db.scalar(select(ApiKey.id).where(ApiKey.owner_id == merchant_id)) is None


def test_another_merchants_key_and_endpoint_are_not_found(app, merchant_client):
    client, _ = merchant_client
    with app.app_context():
        _owner, other_id = make_shop_owner("other-shop")
        with unit_of_work():  # the services flush; this set-up commits them
            key, _ = keys.create_key(other_id, "theirs", ["catalog"])
            endpoint = services.create_endpoint(other_id, "http://127.0.0.1:9/hook")
        key_id, endpoint_id = key.id, endpoint.id
    assert client.post(f"/merchant/keys/{key_id}/revoke").status_code == 404
    assert client.get(f"/merchant/webhooks/{endpoint_id}").status_code == 404
    assert client.post(f"/merchant/webhooks/{endpoint_id}/delete").status_code == 404
    db.remove()
    assert db.get(ApiKey, key_id).revoked_at is None
    assert db.get(WebhookEndpoint, endpoint_id).deleted_at is None


def test_people_without_a_shop_cannot_open_the_portal(app, client):
    with app.app_context():
        shopper = make_shopper()
        login(client, shopper)
    assert client.get("/merchant/keys").status_code == 403


def test_webhook_test_event_log_and_replay(app, merchant_client):
    client, merchant_id = merchant_client
    received: list[tuple[bytes, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append((self.rfile.read(int(self.headers["Content-Length"])),
                             dict(self.headers.items())))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        r = client.post("/merchant/webhooks", data={"url": url, "event_types": ["order.paid"]})
        assert r.status_code == 302
        endpoint = db.scalar(select(WebhookEndpoint).where(
            WebhookEndpoint.owner_id == merchant_id))
        assert endpoint.event_types == ["order.paid"]
        client.post(f"/merchant/webhooks/{endpoint.id}/test")
        drain(app)
        [(body, headers)] = received
        assert Webhook(endpoint.secret).verify(body, headers)["type"] == "webhook.test"
        page = client.get(f"/merchant/webhooks/{endpoint.id}").get_data(as_text=True)
        assert "webhook.test" in page and ">200<" in page
        msg_id = headers["webhook-id"]
        client.post(f"/merchant/webhooks/{endpoint.id}/replay/{msg_id}")
        drain(app)
        assert len(received) == 2 and received[1][1]["webhook-id"] == msg_id
    finally:
        server.shutdown()
        server.server_close()


def test_production_portal_refuses_a_loopback_url(app, merchant_client):
    client, merchant_id = merchant_client
    app.config["BARID_ENV"] = "production"
    try:
        page = client.post("/merchant/webhooks", data={"url": "https://127.0.0.1/hook"})
    finally:
        app.config["BARID_ENV"] = "development"
    assert page.status_code == 200
    assert db.scalar(select(WebhookEndpoint.id).where(
        WebhookEndpoint.owner_id == merchant_id)) is None
