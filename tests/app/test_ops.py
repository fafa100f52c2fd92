"""Health probes, metrics, request ids and the access log."""

from __future__ import annotations

import json
import logging
import re
import socket

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from app.ops import check_database, check_redis


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_livez_answers_without_asking_anything(client):
    r = client.get("/livez")
    assert r.status_code == 200
    assert r.get_json() == {"status": "alive"}


def test_readyz_is_200_when_the_database_answers(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.get_json()["checks"] == {"database": "ok"}


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(app, client, monkeypatch):
    broken = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/none")
    assert check_database(broken).startswith("unreachable")
    # The probe itself, with the app's engine swapped for the broken one.
    monkeypatch.setattr("app.database.get_engine", lambda: broken)
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["failed"] == ["database"] and body["status"] == "unavailable"
    broken.dispose()


def test_readyz_checks_redis_when_it_is_configured(app, client, redis_url, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_naming_redis_when_redis_is_unreachable(app, client, monkeypatch):
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    assert check_redis(dead).startswith("unreachable")
    monkeypatch.setitem(app.config, "REDIS_URL", dead)
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"


def test_probes_get_no_session_cookie(app, client):
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    for path in ("/livez", "/readyz", "/metrics"):
        r = client.get(path)
        assert "Set-Cookie" not in r.headers, path
        assert "Cookie" not in r.headers.get("Vary", ""), path


def _samples(text: str, metric: str) -> dict[frozenset, float]:
    """metric's samples in a scrape, by their set of (label, value) pairs."""
    return {frozenset(s.labels.items()): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == metric}


def _key(**labels: str) -> frozenset:
    return frozenset(labels.items())


def test_metrics_label_requests_by_route_rule_not_raw_path(app, client):
    before = _samples(client.get("/metrics").get_data(as_text=True), "barid_http_requests_total")
    client.get("/lang/en?next=/a")
    client.get("/lang/ar?next=/b")
    client.get("/no/such/page/123")
    client.get("/no/such/page/456")
    text = client.get("/metrics").get_data(as_text=True)
    after = _samples(text, "barid_http_requests_total")
    lang = _key(method="GET", url_rule="/lang/<code>", status="302")
    unmatched = _key(method="GET", url_rule="<unmatched>", status="404")
    assert after[lang] - before.get(lang, 0) == 2
    assert after[unmatched] - before.get(unmatched, 0) == 2
    assert not any("/lang/en" in v or "123" in v for k in after for _, v in k)
    # The histogram counts the same requests, in cumulative buckets ending at +Inf.
    buckets = _samples(text, "barid_http_request_duration_seconds_bucket")
    assert buckets[lang | {("le", "+Inf")}] == after[lang]
    assert r"# TYPE barid_http_request_duration_seconds histogram" in text


def test_metrics_is_prometheus_text(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [0-9.eE+-]+$|^[a-z_]+ \+Inf$')
    for line in r.get_data(as_text=True).splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_request_id_is_echoed_when_sent_and_generated_otherwise(client):
    r = client.get("/livez", headers={"X-Request-ID": "edge-42.a_b"})
    assert r.headers["X-Request-ID"] == "edge-42.a_b"
    generated = client.get("/livez").headers["X-Request-ID"]
    other = client.get("/livez").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and generated != other


def test_request_id_from_a_client_is_cleaned_and_cut_to_64(client):
    r = client.get("/livez", headers={"X-Request-ID": 'a"b <c>;d' + "x" * 100})
    assert r.headers["X-Request-ID"] == "abcd" + "x" * 60
    junk = client.get("/livez", headers={"X-Request-ID": "<>;\"'"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", junk)


def test_one_json_access_line_per_request_with_the_request_id(client, caplog):
    from app.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="barid.access"):
        client.get("/lang/en?next=/", headers={"X-Request-ID": "trace-1"})
    lines = [r for r in caplog.records if r.name == "barid.access"]
    assert len(lines) == 1
    entry = json.loads(JsonFormatter().format(lines[0]))
    assert entry["request_id"] == "trace-1"
    assert entry["method"] == "GET" and entry["path"] == "/lang/en"
    assert entry["status"] == 302 and entry["duration_ms"] >= 0


def test_request_id_is_visible_to_code_running_in_the_request(app):
    from flask import request

    from app.logs import current_request_id

    with app.test_request_context("/", headers={"X-Request-ID": "inside-1"}):
        app.preprocess_request()
        assert request.request_id == "inside-1"
        assert current_request_id() == "inside-1"
    assert current_request_id() is None
