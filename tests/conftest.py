"""Shared fixtures: a PostgreSQL database of the suite's own, a Redis database, the app.

The suite creates `barid_test_<pid>_<random>` on the local PostgreSQL, builds the
schema from the models, empties every table after each test, and drops the database
at the end. Redis tests use one database index (BARID_TEST_REDIS_DB, default 15),
emptied before and after use; other indexes are left alone.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

PG_ADMIN_URL = os.environ.get("BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_DB = int(os.environ.get("BARID_TEST_REDIS_DB", "15"))


def _pg_server_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def make_database() -> Iterator:
    """A factory for empty PostgreSQL databases that are dropped at the end."""
    created: list[str] = []

    def make() -> str:
        name = f"barid_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _pg_server_url(name)

    yield make
    from app.database import get_engine

    with contextlib.suppress(RuntimeError):
        get_engine().dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(make_database) -> str:
    return make_database()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    yield url
    conn.flushdb()


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "WTF_CSRF_ENABLED": False,  # security tests switch it on to prove it is enforced
    "REDIS_URL": None,
    "MAIL_BACKEND": "memory",
    "SERVER_NAME": None,
}


@pytest.fixture(scope="session")
def app(pg_url):
    from app import create_app
    from app.database import Base, get_engine
    from app.models_registry import load_all

    flask_app = create_app({**TEST_CONFIG, "DATABASE_URL": pg_url})
    load_all()
    Base.metadata.create_all(get_engine())
    return flask_app


@pytest.fixture(autouse=True)
def _empty_tables(request) -> Iterator[None]:
    """After a test that used the database, empty every table (sequences restart)."""
    yield
    if "app" not in request.fixturenames:
        return
    from app import ratelimit
    from app.database import Base, db, get_engine

    ratelimit.reset()  # counts kept in memory (no Redis) start afresh, like the tables

    db.remove()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    if names:
        with get_engine().begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def app_ctx(app) -> Iterator:
    with app.app_context():
        yield app


@pytest.fixture()
def client(app):
    return app.test_client()


# --- Browser tests ----------------------------------------------------------------------

# Debian's chromium, with the flags reference/README.md gives for this closed network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
]


@pytest.fixture()
def browser() -> Iterator:
    """A headless chromium driven by Playwright, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def serve(monkeypatch) -> Iterator:
    """`serve(flask_app, jobs=False) -> base URL`: the app on a free 127.0.0.1 port,
    with CSRF enforced as in production, until the test ends. `jobs=True` also runs
    the inline executor, as `barid run` does."""
    import threading

    from werkzeug.serving import make_server

    running: list[tuple] = []

    def start(flask_app, *, jobs: bool = False) -> str:
        monkeypatch.setitem(flask_app.config, "WTF_CSRF_ENABLED", True)
        server = make_server("127.0.0.1", 0, flask_app, threaded=True)
        url = f"http://127.0.0.1:{server.port}"
        monkeypatch.setitem(flask_app.config, "PUBLIC_BASE_URL", url)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        if jobs:
            from app.jobs import start_inline_executor

            start_inline_executor(flask_app)
        running.append((server, thread, jobs))
        return url

    yield start
    for server, thread, jobs in running:
        if jobs:
            from app.jobs import stop_inline_executor

            stop_inline_executor()
        server.shutdown()
        thread.join(10)


@pytest.fixture()
def screenshots() -> Path:
    """Where browser tests leave screenshots for people to look at ($BARID_SCREENSHOTS)."""
    folder = Path(os.environ.get("BARID_SCREENSHOTS", "/tmp/barid-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
