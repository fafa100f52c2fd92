"""Shared fixtures: a PostgreSQL database of the suite's own, a Redis database, the app.

The suite creates `barid_test_<pid>_<random>` on the local PostgreSQL, builds the
schema from the models and drops the database at the end. Redis tests use one database
index (BARID_TEST_REDIS_DB, default 15), emptied before and after use; other indexes
are left alone.

Each test that uses the app runs inside one database transaction that is rolled back
at its end: the session joins it with a savepoint, so the code's own units of work
commit to a savepoint and the test sees what a later request would see. A test that
needs real commits (other threads or processes, other connections, after-commit
dispatch, a live server or browser) says so with `@pytest.mark.commits`; tests that use
the live-server, browser or Redis fixtures are marked so automatically. Their tables
are emptied afterwards.
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
    # A test that waits on a row its own rolled-back transaction holds (through another
    # connection) fails after a while instead of hanging the suite.
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET lock_timeout = '20s'")
    get_engine().dispose()
    return flask_app


# Fixtures that mean the test runs code in other threads, processes or connections, so
# it needs real commits.
COMMITTING_FIXTURES = frozenset({"serve", "browser", "redis_url", "rq_app", "live_url",
                                 "throwaway_redis", "throwaway_pg"})


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "commits: the test needs real commits (other threads, processes or "
        "connections see its data); its tables are emptied afterwards")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if COMMITTING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.commits)


@pytest.fixture(autouse=True)
def _database_isolation(request) -> Iterator[None]:
    """Run the test in a transaction rolled back at its end, or, for a test marked
    `commits`, let it commit and empty every table afterwards (sequences restart)."""
    if "app" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("app")
    from app import ratelimit
    from app.database import Base, db, get_engine

    ratelimit.reset()  # counts kept in memory (no Redis) start afresh for each test

    engine = get_engine()
    if request.node.get_closest_marker("commits"):
        yield
        db.remove()
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        if names:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    db.remove()
    conn = engine.connect()
    outer = conn.begin()
    db.configure(bind=conn, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        db.remove()
        outer.rollback()
        conn.close()
        db.configure(bind=engine)
        db.session_factory.kw.pop("join_transaction_mode", None)


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


@pytest.fixture()
def count_commits(app) -> Iterator:
    """`with count_commits() as commits:` counts the transactions the code under test
    commits through the shared session (one unit of work is one commit)."""
    from sqlalchemy import event

    from app.database import db

    @contextlib.contextmanager
    def counting() -> Iterator[list[int]]:
        commits: list[int] = []

        def seen(session) -> None:
            if session.get_nested_transaction() is None:
                commits.append(1)

        event.listen(db, "after_commit", seen)
        try:
            yield commits
        finally:
            event.remove(db, "after_commit", seen)

    return counting


# --- Services of a test's own, to kill and restart (tests/throwaway.py) -----------------


@pytest.fixture()
def throwaway_redis() -> Iterator:
    """A running `redis-server` on a spare port (RedisServer: .url(), .kill(), .start()),
    stopped at the end. Never the shared Redis."""
    from tests.throwaway import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def throwaway_pg() -> Iterator:
    """A running PostgreSQL cluster on a spare port (PostgresCluster: .url(db),
    .create_database(name), .restart(), .stop()), removed at the end of the module."""
    from tests.throwaway import PostgresCluster

    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.remove()
