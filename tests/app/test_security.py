"""CSRF, security headers and login rate limiting (on real Redis and in process memory)."""

from __future__ import annotations

import time
import types
from contextlib import contextmanager

import limits.storage.memory
import pytest
import redis
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import select

from app import ratelimit
from app.auth.models import PendingRegistration, User
from app.auth.services import LOGIN_NAMESPACE
from tests.app.test_auth_support import PASSWORD, count, log_in, make_user


@contextmanager
def config(app, **values):
    old = {k: app.config.get(k) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(old)


# -- CSRF ------------------------------------------------------------------------------

def test_form_without_csrf_token_is_refused_and_changes_nothing(app, client):
    with config(app, WTF_CSRF_ENABLED=True):
        resp = client.post("/register", data={
            "full_name": "Forged", "identifier": "forged@example.iq",
            "password": PASSWORD, "password_confirm": PASSWORD,
        })
    assert resp.status_code == 400
    assert "انتهت صلاحية النموذج أو أُرسل من مكان آخر. الرجاء المحاولة مرة أخرى." in (
        resp.get_data(as_text=True))
    assert count(app, User) == 0


def test_form_with_the_csrf_token_from_the_page_goes_through(app, client):
    import re

    with config(app, WTF_CSRF_ENABLED=True):
        page = client.get("/register").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        resp = client.post("/register", data={
            "csrf_token": token, "full_name": "Real", "identifier": "real@example.iq",
            "password": PASSWORD, "password_confirm": PASSWORD,
        })
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/register/confirm"
    assert count(app, PendingRegistration) == 1


def test_logout_without_csrf_token_keeps_the_session(app, client):
    make_user(app, email="stay@example.iq")
    log_in(client, "stay@example.iq")
    with config(app, WTF_CSRF_ENABLED=True):
        assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200


def test_csrf_failure_under_api_is_json(app):
    from flask_wtf.csrf import CSRFError

    from app.security import csrf_failed

    with app.test_request_context("/api/v1/orders", method="POST"):
        resp, status = csrf_failed(CSRFError("The CSRF token is missing."))
    assert status == 400
    body = resp.get_json()
    assert body["error"] == "csrf_failed" and body["fields"] == {}
    assert body["message"].startswith("انتهت صلاحية النموذج")


# -- headers ---------------------------------------------------------------------------

def test_security_headers_on_every_page(app, client):
    for path in ("/login", "/register", "/does-not-exist"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        for directive in ("default-src 'self'", "img-src 'self' data:", "style-src 'self'",
                          "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'",
                          "base-uri 'self'"):
            assert directive in csp, (path, directive)
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert h["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in h


def test_csp_takes_origins_other_domains_register(app, client):
    with config(app, CSP_SCRIPT_SRC=["https://js.stripe.com"],
                CSP_FRAME_SRC=["https://js.stripe.com", "https://hooks.stripe.com"],
                CSP_CONNECT_SRC=["https://api.stripe.com"]):
        csp = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "frame-src 'self' https://js.stripe.com https://hooks.stripe.com;" in csp
    assert "connect-src 'self' https://api.stripe.com;" in csp


def test_hsts_only_in_production(app, client):
    with config(app, BARID_ENV="production"):
        h = client.get("/login").headers
    assert h["Strict-Transport-Security"].startswith("max-age=")


def test_session_cookie_is_httponly_and_lax(app, client):
    make_user(app, email="cookie@example.iq")
    resp = log_in(client, "cookie@example.iq", remember="y")
    cookies = resp.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    remember = next(c for c in cookies if c.startswith("remember_token="))
    for c in (session, remember):
        assert "HttpOnly" in c and "SameSite=Lax" in c


# -- login rate limiting ---------------------------------------------------------------

def _fail(client, who, n):
    for _ in range(n):
        assert log_in(client, who, "wrong password").status_code == 401


def _assert_limited(resp):
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert "محاولات فاشلة كثيرة" in resp.get_data(as_text=True)


def _failures(app, key):
    """Failed logins counted for `key` ("id:<name>") in the configured storage."""
    with app.app_context():
        return ratelimit.count(ratelimit.Rule(LOGIN_NAMESPACE, 1, 1), key)


def test_rate_limit_in_memory_refuses_even_the_right_password(app, client):
    make_user(app, email="target@example.iq")
    with config(app, LOGIN_RATE_LIMIT=3, LOGIN_RATE_WINDOW=120):
        _fail(client, "target@example.iq", 3)
        _assert_limited(log_in(client, "target@example.iq"))
        # Another name from the same address still gets its own tries.
        make_user(app, email="other@example.iq")
        assert log_in(app.test_client(), "other@example.iq").status_code == 302
    assert _failures(app, "id:target@example.iq") == 3


def test_rate_limit_is_shared_by_every_process_through_redis(app, client, redis_url,
                                                             redis_conn):
    """Another web process has its own limiter and Redis connection: its counts count."""
    make_user(app, email="shared@example.iq")
    other_process = FixedWindowRateLimiter(storage_from_string(
        redis_url, key_prefix=ratelimit.KEY_PREFIX))
    for _ in range(3):
        other_process.hit(ratelimit.Rule(LOGIN_NAMESPACE, 3, 120).item(),
                          "id:shared@example.iq")
    with config(app, REDIS_URL=redis_url, LOGIN_RATE_LIMIT=3, LOGIN_RATE_WINDOW=120):
        _assert_limited(log_in(client, "shared@example.iq"))


def test_rate_limit_window_ends(app, client, monkeypatch):
    make_user(app, email="later@example.iq")
    with config(app, LOGIN_RATE_LIMIT=2, LOGIN_RATE_WINDOW=60):
        _fail(client, "later@example.iq", 2)
        _assert_limited(log_in(client, "later@example.iq"))
        # Move the memory storage's clock past the window (as if a minute had gone by).
        later = time.time() + 61
        monkeypatch.setattr(limits.storage.memory, "time",
                            types.SimpleNamespace(time=lambda: later))
        assert log_in(client, "later@example.iq").status_code == 302


def test_rate_limit_per_address_covers_many_names(app, client):
    with config(app, LOGIN_RATE_LIMIT=10, LOGIN_RATE_LIMIT_PER_ADDRESS=4):
        for i in range(4):
            assert log_in(client, f"guess{i}@example.iq", "x").status_code == 401
        _assert_limited(log_in(client, "guess99@example.iq", "x"))


@pytest.fixture()
def redis_conn(redis_url):
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


def test_rate_limit_on_redis(app, client, redis_url, redis_conn):
    make_user(app, email="redis@example.iq")
    with config(app, REDIS_URL=redis_url, LOGIN_RATE_LIMIT=3, LOGIN_RATE_WINDOW=90):
        _fail(client, "redis@example.iq", 3)
        _assert_limited(log_in(client, "redis@example.iq"))
        key = "barid:login-fail:id:redis@example.iq"
        assert int(redis_conn.get(key)) == 3
        assert 0 < redis_conn.ttl(key) <= 90
        with config(app, REDIS_URL=None):
            assert _failures(app, "id:redis@example.iq") == 0  # in Redis, not in memory
        # Once the window is over, the right password works again.
        redis_conn.delete(key)
        assert log_in(client, "redis@example.iq").status_code == 302


def test_rate_limit_on_redis_is_shared_by_every_process(app, client, redis_url, redis_conn):
    make_user(app, email="fleet@example.iq")
    # Three failures counted by other web processes (their own Redis connections).
    for _ in range(3):
        redis.Redis.from_url(redis_url).pipeline().set(
            "barid:login-fail:id:fleet@example.iq", 0, ex=60, nx=True).incr(
            "barid:login-fail:id:fleet@example.iq").execute()
    with config(app, REDIS_URL=redis_url, LOGIN_RATE_LIMIT=3, LOGIN_RATE_WINDOW=60):
        _assert_limited(log_in(client, "fleet@example.iq"))


def test_successful_login_clears_the_count_for_that_name(app, client, redis_url, redis_conn):
    make_user(app, email="clear@example.iq")
    with config(app, REDIS_URL=redis_url, LOGIN_RATE_LIMIT=3):
        _fail(client, "clear@example.iq", 2)
        assert log_in(client, "clear@example.iq").status_code == 302
        assert redis_conn.get("barid:login-fail:id:clear@example.iq") is None
    with app.app_context():
        from app.database import db

        assert db.scalar(select(User.last_login_at)) is not None


def test_writing_the_number_differently_gives_no_extra_tries(app, client):
    make_user(app, phone="0770 555 6677")
    with config(app, LOGIN_RATE_LIMIT=3):
        for spelling in ("0770 555 6677", "+964 770 555 6677", "9647705556677"):
            assert log_in(client, spelling, "wrong password").status_code == 401
        _assert_limited(log_in(client, "07705556677"))


def test_a_translated_message_carrying_what_someone_typed_is_escaped(app):
    """Flask-Babel's lazy strings call themselves safe HTML; Barid escapes them, so a
    message that repeats typed text cannot carry markup onto the page."""
    from flask import render_template_string
    from flask_babel import lazy_gettext

    typed = '<script>alert("x")</script>'
    with app.test_request_context("/"):
        html = render_template_string("{{ message }}",
                                      message=lazy_gettext("No parcel %(n)s", n=typed))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
