"""The merchant REST API as a merchant's system sees it: keys, scopes, strict JSON,
idempotent POSTs, rate limits, cursor pages, and the OpenAPI document."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from sqlalchemy import func, select

from app.api import keys
from app.api.models import ApiKey
from app.database import db, unit_of_work
from app.errors import NotFound
from app.webhooks.services import EVENT_TYPES, TEST_EVENT
from shop.models import Product
from shop.services.merchants import suspend_merchant
from shop.webhook_events import CONSIGNMENT_EVENTS, ORDER_EVENTS, PARCEL_EVENTS
from tests.shop.helpers import make_category, make_merchant, make_product


@pytest.fixture()
def shop(app_ctx):
    merchant = make_merchant()
    category = make_category()
    db.commit()
    return merchant, category


def new_key(merchant_id: int, scopes=("catalog", "orders", "parcels", "webhooks")) -> str:
    with unit_of_work():  # create_key flushes; the caller's unit of work commits
        _key, secret = keys.create_key(merchant_id, "ERP", scopes)
    return secret


def auth(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


def product_body(category_id: int, **over) -> dict:
    body = {"category_id": category_id, "title_ar": "هاتف", "title_en": "Phone",
            "price": 250_000, "stock": 5, "weight_g": 300, "hs_code": "851712",
            "origin_country": "IQ", "merchant_sku": "PH-1"}
    body.update(over)
    return body


def count_products() -> int:
    db.remove()
    return db.scalar(select(func.count()).select_from(Product))


# -- keys and scopes --------------------------------------------------------------------

def test_key_is_shown_once_and_stored_hashed(shop):
    merchant, _ = shop
    key, secret = keys.create_key(merchant.id, "Shop ERP", ["catalog"])
    assert secret.startswith("bk_test_") and len(secret) >= 40
    assert key.prefix == secret[:12] and secret not in key.key_hash
    stored = db.scalars(select(ApiKey.key_hash)).all()
    assert all(secret not in h for h in stored)


def test_requests_without_a_working_key_get_401(client, shop):
    merchant, _ = shop
    assert client.get("/api/v1/products").status_code == 401
    r = client.get("/api/v1/products", headers=auth("bk_test_not-a-real-key"))
    assert r.status_code == 401 and r.json["error"] == "invalid_api_key"
    assert set(r.json) >= {"error", "message", "fields"}
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    with unit_of_work():
        key, secret = keys.create_key(merchant.id, "old", ["catalog"])
    assert client.get("/api/v1/products", headers=auth(secret)).status_code == 200
    with unit_of_work():
        keys.revoke_key(merchant.id, key.id)
    r = client.get("/api/v1/products", headers=auth(secret))
    assert r.status_code == 401 and r.json["error"] == "invalid_api_key"


def test_wrong_scope_is_403_and_changes_nothing(client, shop):
    merchant, category = shop
    secret = new_key(merchant.id, scopes=("webhooks",))
    r = client.post("/api/v1/products", json=product_body(category.id), headers=auth(secret))
    assert r.status_code == 403 and r.json["error"] == "insufficient_scope"
    assert count_products() == 0


def test_suspended_merchants_keys_stop_working(client, shop):
    merchant, _ = shop
    secret = new_key(merchant.id)
    assert client.get("/api/v1/products", headers=auth(secret)).status_code == 200
    with unit_of_work():
        suspend_merchant(merchant.id, reason="unpaid fees")
    r = client.get("/api/v1/products", headers=auth(secret))
    assert r.status_code == 403 and r.json["error"] == "account_inactive"


@pytest.mark.commits  # key use is recorded on a connection of its own
def test_rotation_keeps_the_old_key_for_the_grace_period_only(client, shop):
    merchant, _ = shop
    with unit_of_work():
        old, old_secret = keys.create_key(merchant.id, "ERP", ["catalog"])
        new, new_secret = keys.rotate_key(merchant.id, old.id)
    assert new.scopes == ["catalog"] and new.prefix != old.prefix
    assert client.get("/api/v1/products", headers=auth(old_secret)).status_code == 200
    assert client.get("/api/v1/products", headers=auth(new_secret)).status_code == 200
    with unit_of_work():
        newer, newer_secret = keys.rotate_key(merchant.id, new.id, grace=timedelta(0))
    assert client.get("/api/v1/products", headers=auth(new_secret)).status_code == 401
    assert client.get("/api/v1/products", headers=auth(newer_secret)).status_code == 200
    db.remove()
    assert db.get(ApiKey, newer.id).last_used_at is not None


def test_another_merchants_key_cannot_be_revoked(shop):
    merchant, _ = shop
    other = make_merchant()
    db.commit()
    with unit_of_work():
        key, _secret = keys.create_key(other.id, "theirs", ["catalog"])
    with pytest.raises(NotFound):
        keys.revoke_key(merchant.id, key.id)
    db.remove()
    assert db.get(ApiKey, key.id).revoked_at is None


# -- products, idempotency and bad input ----------------------------------------------------

@pytest.mark.commits  # idempotency keys are stored on a connection of their own
def test_same_idempotency_key_twice_makes_one_product(client, shop):
    merchant, category = shop
    secret = new_key(merchant.id)
    headers = auth(secret, **{"Idempotency-Key": "create-ph-1"})
    first = client.post("/api/v1/products", json=product_body(category.id), headers=headers)
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/products", json=product_body(category.id), headers=headers)
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_products() == 1
    other_body = product_body(category.id, price=1)
    r = client.post("/api/v1/products", json=other_body, headers=headers)
    assert r.status_code == 422 and r.json["error"] == "idempotency_key_reused"
    assert count_products() == 1
    db.remove()
    assert db.scalar(select(Product.price)) == 250_000


@pytest.mark.commits  # idempotency keys are stored on a connection of their own
def test_idempotent_error_answers_are_replayed_too(client, shop):
    merchant, category = shop
    secret = new_key(merchant.id)
    client.post("/api/v1/products", json=product_body(category.id), headers=auth(secret))
    headers = auth(secret, **{"Idempotency-Key": "dup"})
    first = client.post("/api/v1/products", json=product_body(category.id), headers=headers)
    assert first.status_code == 409 and first.json["fields"] == {"merchant_sku": ["taken"]}
    again = client.post("/api/v1/products", json=product_body(category.id), headers=headers)
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("data, content_type, status, code", [
    (b'{"title_en": "x",', "application/json", 400, "malformed_json"),
    (b'[1, 2]', "application/json", 400, "malformed_json"),
    (b'{"a": 1, "a": 2}', "application/json", 400, "malformed_json"),
    (b'{"price": NaN}', "application/json", 400, "malformed_json"),
    (b"title_en=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"title_en": "x"}', "text/plain", 415, "unsupported_media_type"),
    (b"", "application/json", 400, "body_required"),
])
def test_bad_bodies_get_the_documented_error(client, shop, data, content_type, status, code):
    merchant, _ = shop
    secret = new_key(merchant.id)
    r = client.post("/api/v1/products", data=data, content_type=content_type,
                    headers=auth(secret))
    assert r.status_code == status, r.json
    assert r.json["error"] == code and isinstance(r.json["fields"], dict)
    assert count_products() == 0


def test_unknown_fields_and_negative_stock_are_422(client, shop):
    merchant, category = shop
    secret = new_key(merchant.id)
    r = client.post("/api/v1/products", json=product_body(category.id, colour="red"),
                    headers=auth(secret))
    assert r.status_code == 422 and r.json["fields"] == {"colour": ["Unknown field."]}
    r = client.post("/api/v1/products", json=product_body(category.id, stock=-1),
                    headers=auth(secret))
    assert r.status_code == 422 and "stock" in r.json["fields"]
    assert count_products() == 0


def test_oversized_body_is_413(app, client, shop):
    merchant, category = shop
    secret = new_key(merchant.id)
    big = product_body(category.id, description_en="x" * (300 * 1024))
    r = client.post("/api/v1/products", data=json.dumps(big),
                    content_type="application/json", headers=auth(secret))
    assert r.status_code == 413 and r.json["error"] == "too_large"
    assert count_products() == 0


def test_another_merchants_product_is_404_and_unchanged(client, shop):
    merchant, category = shop
    other = make_merchant()
    theirs = make_product(other, category, stock=7).id
    db.commit()
    secret = new_key(merchant.id)
    for r in (
        client.get(f"/api/v1/products/{theirs}", headers=auth(secret)),
        client.patch(f"/api/v1/products/{theirs}", json={"price": 1}, headers=auth(secret)),
        client.post("/api/v1/products/stock", headers=auth(secret),
                    json={"items": [{"product_id": theirs, "stock": 0}]}),
    ):
        assert r.status_code == 404 and r.json["error"] == "not_found"
    missing = client.get("/api/v1/products/999999", headers=auth(secret))
    assert missing.status_code == 404 and missing.json["message"] == r.json["message"]
    db.remove()
    again = db.get(Product, theirs)
    assert again.stock == 7 and again.price == 10_000


def test_bulk_stock_is_all_or_nothing(client, shop):
    merchant, category = shop
    a = make_product(merchant, category, stock=1, merchant_sku="A")
    b = make_product(merchant, category, stock=2, merchant_sku="B")
    db.commit()
    a, b = type("Ids", (), {"id": a.id})(), type("Ids", (), {"id": b.id})()
    secret = new_key(merchant.id)
    r = client.post("/api/v1/products/stock", headers=auth(secret), json={"items": [
        {"product_id": a.id, "stock": 10}, {"merchant_sku": "B", "stock": -3}]})
    assert r.status_code == 422 and "items" in r.json["fields"]
    db.remove()
    assert [db.get(Product, a.id).stock, db.get(Product, b.id).stock] == [1, 2]
    r = client.post("/api/v1/products/stock", headers=auth(secret), json={"items": [
        {"product_id": a.id, "stock": 10}, {"merchant_sku": "B", "stock": 0}]})
    assert r.status_code == 200, r.json
    assert {(i["id"], i["stock"]) for i in r.json["data"]} == {(a.id, 10), (b.id, 0)}


def test_update_and_cursor_pages(client, shop):
    merchant, category = shop
    made = [make_product(merchant, category, merchant_sku=f"S{i}").id for i in range(5)]
    make_product(make_merchant(), category)  # someone else's, never listed
    db.commit()
    secret = new_key(merchant.id)
    r = client.patch(f"/api/v1/products/{made[0]}", json={"price": 123, "active": False},
                     headers=auth(secret))
    assert r.status_code == 200 and r.json["price"] == 123 and r.json["active"] is False
    seen, cursor = [], None
    for _ in range(5):
        url = "/api/v1/products?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth(secret)).json
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(made, reverse=True)
    r = client.get("/api/v1/products?cursor=%%%", headers=auth(secret))
    assert r.status_code == 422
    r = client.get("/api/v1/products?colour=red", headers=auth(secret))
    assert r.status_code == 422 and "colour" in r.json["fields"]
    inactive = client.get("/api/v1/products?active=false", headers=auth(secret)).json
    assert [p["id"] for p in inactive["data"]] == [made[0]]


# -- rate limits ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["database", "redis"])
def test_rate_limit_answers_429_with_headers(app, client, shop, redis_url, backend):
    merchant, _ = shop
    secret = new_key(merchant.id)
    saved = {k: app.config.get(k) for k in ("API_RATE_LIMIT", "REDIS_URL")}
    app.config["API_RATE_LIMIT"] = 3
    if backend == "redis":
        app.config["REDIS_URL"] = redis_url
    try:
        answers = [client.get("/api/v1/products", headers=auth(secret)) for _ in range(4)]
    finally:
        app.config.update(saved)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    last = answers[-1]
    assert last.json["error"] == "rate_limited"
    assert 1 <= int(last.headers["Retry-After"]) <= 60
    assert int(last.headers["RateLimit-Reset"]) == int(last.headers["Retry-After"])


# -- the document ---------------------------------------------------------------------------

def test_openapi_document_is_complete(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    ops = [(p, m, op) for p, methods in doc["paths"].items() for m, op in methods.items()]
    assert len(ops) >= 15
    text = json.dumps(doc)
    for path, method, op in ops:
        assert op["responses"], (path, method)
        assert any(code.startswith("2") for code in op["responses"])
        if method in ("post", "patch"):
            assert "422" in op["responses"] and "415" in op["responses"]
    # Every reference points at something the document defines.

    for ref in set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in doc["components"][ref[0]], ref
    product_in = doc["components"]["schemas"]["ProductCreateInput"]
    assert product_in["additionalProperties"] is False
    assert product_in["properties"]["stock"]["minimum"] == 0
    assert "title_ar" in product_in["required"]
    assert "required" not in doc["components"]["schemas"]["ProductUpdateInput"]


def test_openapi_document_validates_against_the_spec_schema(client):
    doc = client.get("/api/v1/openapi.json").json
    validate(doc, cls=OpenAPIV31SpecValidator)


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


def test_every_json_route_under_api_v1_is_documented(app, client):
    doc = client.get("/api/v1/openapi.json").json
    served = {(_openapi_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/")
              # the documentation itself: the document, its page and their files
              and not rule.endpoint.startswith("api_docs.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, methods in doc["paths"].items()
                  for method in methods}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    for path in ("/api/v1/tracking/{number}", "/api/v1/tracking-events",
                 "/api/v1/tracking-events/batches/{batch_id}", "/api/v1/orders"):
        assert path in doc["paths"]


def test_every_operation_documents_its_client_errors_with_the_error_shape(client):
    doc = client.get("/api/v1/openapi.json").json
    responses = doc["components"]["responses"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            errors = {code: r for code, r in op["responses"].items() if code.startswith("4")}
            assert errors, (path, method)
            for code, r in errors.items():
                r = responses[r["$ref"].rsplit("/", 1)[1]] if "$ref" in r else r
                assert r["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}, (path, method, code)
            if op["security"]:  # a key is needed: a missing one is refused
                assert {"401", "403", "429"} <= set(errors), (path, method)
            if "{" in path:
                assert "404" in errors, (path, method)
            if method in ("post", "patch"):
                assert {"400", "413", "422"} <= set(errors), (path, method)


def test_webhooks_describe_every_event_type_barid_sends(client):
    doc = client.get("/api/v1/openapi.json").json
    sent = ({TEST_EVENT, "refund.succeeded"} | set(ORDER_EVENTS.values())
            | set(CONSIGNMENT_EVENTS.values()) | set(PARCEL_EVENTS.values()))
    assert set(doc["webhooks"]) == sent == set(EVENT_TYPES)
    schemas = doc["components"]["schemas"]
    for event_type, item in doc["webhooks"].items():
        envelope = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert envelope["properties"]["type"] == {"const": event_type}
        data = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        assert schemas[data]["properties"], event_type
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} == {
            p["name"] for p in item["post"]["parameters"]}


@pytest.mark.parametrize("lang, words", [("ar", "مفتاح"), ("en", "Idempotency-Key")])
def test_docs_page_lists_every_operation(client, lang, words):
    r = client.get(f"/api/v1/docs?lang={lang}")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert words in page
    for path in ("/api/v1/products/stock", "/api/v1/webhook-endpoints/{endpoint_id}/test"):
        assert path in page


