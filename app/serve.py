"""The embedded platform behind `barid run`: one process that migrates, seeds demo data,
drains jobs on a thread and serves http://127.0.0.1:5000.

Production does not use this: gunicorn serves `app.wsgi:app` and `barid worker` runs
the jobs (see README.md).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
from flask import Flask
from sqlalchemy import make_url
from werkzeug.serving import make_server

from app.config import MIGRATIONS_DIR
from app.database import Base, db, get_engine, unit_of_work
from app.jobs import start_inline_executor, stop_inline_executor
from app.migrate import upgrade_database
from app.models_registry import load_all
from app.seed import seed_demo

log = logging.getLogger("barid.run")


class PortInUse(RuntimeError):
    pass


def claim_port(host: str, port: int) -> socket.socket:
    """Bind and listen on host:port now, before anything else happens.

    The socket is handed to the web server later, so no other program can take the
    port between this check and serving. Raises PortInUse when it is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As every server does: a port left in TIME_WAIT by our previous run is not "in use".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already in use on {host}") from exc
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def has_migrations() -> bool:
    versions = MIGRATIONS_DIR / "versions"
    return versions.is_dir() and any(versions.glob("*.py"))


def prepare_database(app: Flask) -> str:
    """Bring the database to the current schema; returns what was done, for people."""
    load_all()
    if has_migrations():
        upgrade_database()
        return "database upgraded to the newest migration"
    Base.metadata.create_all(get_engine())
    return ("note: migrations/versions has no migrations yet, so the tables were created "
            "from the models (create_all)")


def run_hooks(app: Flask) -> list[Callable[[], Any]]:
    """Call the domains' start-up hooks (`app.extensions["barid.run_hooks"]`).

    A hook takes the app; if it returns a callable, that is called when the server
    stops (e.g. to stop localstripe).
    """
    stops: list[Callable[[], Any]] = []
    for hook in app.extensions.get("barid.run_hooks", []):
        stop = hook(app)
        if callable(stop):
            stops.append(stop)
    return stops


def _run_hooks_in_context(app: Flask) -> list[Callable[[], Any]]:
    with app.app_context():
        return run_hooks(app)


def run_embedded(app: Flask, sock: socket.socket, host: str, port: int) -> None:
    """Migrate, seed once, start hooks and the inline executor, then serve until stopped."""
    stops: list[Callable[[], Any]] = []
    # The hooks start on a thread while this one migrates and seeds: localstripe is a
    # second process that takes seconds to import and answer, and needs no database.
    hooks_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="barid-run-hooks")
    hooks = hooks_thread.submit(_run_hooks_in_context, app)
    try:
        with app.app_context():
            click.echo(prepare_database(app))
            with unit_of_work():
                seeded = seed_demo()
            click.echo("demo data loaded" if seeded else "demo data already present")
            db.remove()
        stops = hooks.result()
        if not app.config.get("REDIS_URL"):
            start_inline_executor(app)
            click.echo("jobs run inline, in this process")
        elif app.config.get("REDIS_URL"):
            click.echo("jobs go to Redis: start `barid worker` to run them")

        # Our access log already records each request as JSON.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = make_server(host, port, app, threaded=True, fd=sock.fileno())
        sock.close()  # the server holds its own duplicate of the listening socket
        shown_host = f"[{host}]" if ":" in host else host
        url = make_url(app.config["DATABASE_URL"]).render_as_string(hide_password=True)
        click.echo(f"database: {url}")
        click.echo(f"Barid is running on http://{shown_host}:{port}/  (Ctrl+C stops it)")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        hooks_thread.shutdown(wait=True)
        if not stops and hooks.done() and hooks.exception() is None:
            stops = hooks.result()  # the database failed, the hooks started: stop them too
        with contextlib.suppress(Exception):
            stop_inline_executor()
        for stop_hook in reversed(stops):
            try:
                stop_hook()
            except Exception:
                log.exception("a run hook failed to stop")
        click.echo("Barid stopped")
