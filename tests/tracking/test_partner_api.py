"""Partner posts report tracking events on the API platform, with keys of their own kind."""

from __future__ import annotations

import pytest

from app.api import keys
from app.database import unit_of_work
from app.errors import ValidationFailed
from tracking.models import TrackingPartner
from tracking.services import partners

EVENT = {"tracking_number": "LX123456785CN", "code": "EMC",
         "occurred_at": "2025-01-01T10:00:00+08:00", "event_id": "tp-1"}


def _bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_the_cli_issues_a_partner_key_that_posts_events(app, client):
    out = app.test_cli_runner().invoke(args=["tracking", "partner-key", "turkpost"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    assert secret.startswith("bk_")
    res = client.post("/api/v1/tracking-events", json={"events": [EVENT]},
                      headers=_bearer(secret))
    assert res.status_code == 202 and res.get_json()["state"] == "queued"
    listed = app.test_cli_runner().invoke(args=["tracking", "partner-keys", "turkpost"])
    assert "active" in listed.output and secret not in listed.output


def test_keys_of_one_kind_cannot_do_the_others_work(app_ctx, client):
    with unit_of_work():
        _p, _k, partner_secret = partners.issue_key("turkpost")
        _m, merchant_secret = keys.create_key(7, "ERP", ["parcels"])
    # (No merchant 7 exists, so the platform refuses it as inactive before its scope.)
    res = client.post("/api/v1/tracking-events", json={"events": [EVENT]},
                      headers=_bearer(merchant_secret))
    assert res.status_code == 403
    res = client.get("/api/v1/parcels/LX123456785CN", headers=_bearer(partner_secret))
    assert res.status_code == 403 and res.get_json()["error"] == "insufficient_scope"
    with pytest.raises(ValidationFailed):
        keys.create_key(7, "ERP", [partners.EVENTS_WRITE])
    with pytest.raises(ValidationFailed):
        keys.create_key(7, "x", ["parcels"], owner_kind=partners.PARTNER_KIND)


def test_a_partner_sees_only_its_own_batches_and_a_stopped_one_nothing(app_ctx, client):
    with unit_of_work():
        _p, _k, mine = partners.issue_key("turkpost")
        _q, _l, theirs = partners.issue_key("jordanpost")
    res = client.post("/api/v1/tracking-events", json={"events": [EVENT]},
                      headers=_bearer(mine))
    url = res.get_json()["status_url"]
    assert client.get(url, headers=_bearer(mine)).status_code == 200
    other = client.get(url, headers=_bearer(theirs))
    assert other.status_code == 404 and other.get_json()["error"] == "not_found"
    with unit_of_work():
        partners.partner_named("turkpost").active = False
    stopped = client.get(url, headers=_bearer(mine))
    assert stopped.status_code == 403 and stopped.get_json()["error"] == "account_inactive"
    assert TrackingPartner.__tablename__ == "tracking_partners"


def test_the_events_body_is_parsed_strictly_and_documented(app_ctx, client):
    with unit_of_work():
        _p, _k, secret = partners.issue_key("turkpost")
    res = client.post("/api/v1/tracking-events", json={"events": [{**EVENT, "colour": 1}]},
                      headers=_bearer(secret))
    assert res.status_code == 422 and res.get_json()["error"] == "validation_failed"
    doc = client.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/tracking-events"]["post"]
    assert post["x-barid-scope"] == "tracking:events:write"
    assert "/api/v1/tracking-events/batches/{batch_id}" in doc["paths"]


def test_a_partner_may_post_a_large_feed_in_one_request(app_ctx, client):
    with unit_of_work():
        _p, _k, secret = partners.issue_key("turkpost")
    events = [{**EVENT, "event_id": f"tp-{i}", "location": "ISTANBUL SORTING CENTRE"}
              for i in range(3000)]  # about 450 kB: over the API's usual 256 kB
    res = client.post("/api/v1/tracking-events", json={"events": events},
                      headers=_bearer(secret))
    assert res.status_code == 202, res.get_json()
