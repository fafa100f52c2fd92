"""Behind a reverse proxy: who the client is and which scheme it used.

With TRUSTED_PROXY_HOPS=0 (the default) nothing a client sends changes its address: an
X-Forwarded-For is ignored. With 1 (behind the shipped nginx) the address nginx appends
is the client's, for the rate limits and the audit log, and X-Forwarded-Proto makes
external URLs https.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from app import behind_proxies
from app.audit import AuditRecord
from app.config import ROOT
from app.database import db
from tests.app.test_auth_support import PASSWORD, make_user

# A well-formed S10 number no parcel has: the public lookup counts it, then answers 404.
UNKNOWN_PARCEL = "EE123456785IQ"


@contextmanager
def config(app, **values):
    old = {k: app.config.get(k) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(old)


@pytest.fixture()
def one_proxy(app, monkeypatch):
    """The session's app as create_app builds it with TRUSTED_PROXY_HOPS=1."""
    monkeypatch.setattr(app, "wsgi_app", behind_proxies(app.wsgi_app, 1))
    return app


def _via(address: str, proto: str = "http") -> dict[str, str]:
    # What nginx sends: the client's address appended to whatever the client sent.
    return {"X-Forwarded-For": address, "X-Forwarded-Proto": proto}


def _failed_login_addresses(app) -> list[str | None]:
    with app.app_context():
        return list(db.scalars(select(AuditRecord.ip_address)
                               .where(AuditRecord.action == "auth.login_failed")
                               .order_by(AuditRecord.id)))


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(app, client):
    with config(app, LOGIN_RATE_LIMIT=10, LOGIN_RATE_LIMIT_PER_ADDRESS=3):
        codes = [client.post("/login", data={"identifier": f"g{i}@example.iq",
                                             "password": "x"},
                             headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                 for i in range(4)]
    # Each request claims another address; all are counted against the socket's one.
    assert codes == [401, 401, 401, 429]
    assert _failed_login_addresses(app) == ["127.0.0.1"] * 3


def test_without_a_trusted_proxy_tracking_is_counted_by_the_socket_address(app, client):
    with config(app, TRACKING_LOOKUPS_PER_MINUTE=2):
        codes = [client.get(f"/api/v1/tracking/{UNKNOWN_PARCEL}",
                            headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                 for i in range(3)]
    assert codes == [404, 404, 429]


def test_behind_one_proxy_two_clients_are_rate_limited_apart_on_login(one_proxy, client):
    app = one_proxy
    with config(app, LOGIN_RATE_LIMIT=10, LOGIN_RATE_LIMIT_PER_ADDRESS=2):
        first = [client.post("/login", data={"identifier": f"a{i}@example.iq", "password": "x"},
                             headers=_via("203.0.113.7")).status_code for i in range(3)]
        second = [client.post("/login", data={"identifier": f"b{i}@example.iq",
                                              "password": "x"},
                              headers=_via("198.51.100.9")).status_code for i in range(2)]
    assert first == [401, 401, 429]
    assert second == [401, 401]  # the first client's lockout is not the second's
    assert _failed_login_addresses(app) == ["203.0.113.7", "203.0.113.7",
                                            "198.51.100.9", "198.51.100.9"]


def test_behind_one_proxy_the_audit_log_records_the_client(one_proxy, client):
    app = one_proxy
    make_user(app, email="behind@example.iq")
    res = client.post("/login", data={"identifier": "behind@example.iq", "password": PASSWORD},
                      headers=_via("192.0.2.44"))
    assert res.status_code == 302
    with app.app_context():
        rec = db.scalars(select(AuditRecord).where(AuditRecord.action == "auth.login")).one()
    assert rec.ip_address == "192.0.2.44"


def test_behind_one_proxy_a_client_cannot_forge_an_earlier_hop(one_proxy, client):
    """Only the address the trusted proxy appended counts: a client that sends its own
    X-Forwarded-For gets it prefixed, and is still counted as itself."""
    app = one_proxy
    with config(app, TRACKING_LOOKUPS_PER_MINUTE=2):
        codes = [client.get(f"/api/v1/tracking/{UNKNOWN_PARCEL}",
                            headers=_via(f"10.9.9.{i}, 203.0.113.7")).status_code
                 for i in range(3)]
    assert codes == [404, 404, 429]


def test_behind_one_proxy_tracking_lookups_are_counted_per_client(one_proxy, client):
    app = one_proxy
    with config(app, TRACKING_LOOKUPS_PER_MINUTE=2):
        first = [client.get(f"/api/v1/tracking/{UNKNOWN_PARCEL}",
                            headers=_via("203.0.113.7")).status_code for _ in range(3)]
        second = client.get(f"/api/v1/tracking/{UNKNOWN_PARCEL}",
                            headers=_via("198.51.100.9")).status_code
    assert first == [404, 404, 429]
    assert second == 404


def test_behind_one_proxy_external_urls_follow_the_clients_scheme(one_proxy, client):
    doc = client.get("/api/v1/openapi.json", headers=_via("203.0.113.7", "https")).get_json()
    assert doc["servers"][0]["url"].startswith("https://")
    plain = client.get("/api/v1/openapi.json", headers=_via("203.0.113.7", "http")).get_json()
    assert plain["servers"][0]["url"].startswith("http://")


def test_without_a_trusted_proxy_a_forwarded_proto_is_ignored(client):
    doc = client.get("/api/v1/openapi.json", headers={"X-Forwarded-Proto": "https"}).get_json()
    assert doc["servers"][0]["url"].startswith("http://")


def test_create_app_trusts_the_number_of_hops_it_is_given(tmp_path):
    """create_app wraps the app in ProxyFix from TRUSTED_PROXY_HOPS (in a process of its
    own: a second create_app here would replace the suite's database engine)."""
    probe = (
        "from app import create_app\n"
        f"app = create_app({{'DATABASE_URL': 'sqlite:///{tmp_path}/p.sqlite3', 'TESTING': True}})\n"
        "w = app.wsgi_app\n"
        "print(type(w).__name__, getattr(w, 'x_for', None), getattr(w, 'x_proto', None))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARID")}
    outs = []
    for hops in ("0", "1", "2"):
        env["TRUSTED_PROXY_HOPS"] = hops
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout.split())
    assert outs[0][0] != "ProxyFix"
    assert outs[1] == ["ProxyFix", "1", "1"]
    assert outs[2] == ["ProxyFix", "2", "2"]
