"""Where a job runs: inside a Flask app context, with its own database session.

A job may run in the web process (inline executor, drain), in an rq worker, or in the
work-horse rq forks for each job. A forked child must not talk over the database
connections it inherited from its parent (two processes on one socket corrupt both),
so the pool is dropped, without closing the parent's sockets, the first time a job runs
in a new process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator

from flask import Flask, current_app, has_app_context

from app.database import db, get_engine

# The application factory, by dotted path like a job: app.jobs is part of the app that
# `create_app` builds, so it names the factory rather than importing it.
APP_FACTORY = "app:create_app"

_process_app: Flask | None = None
_pool_pid = os.getpid()


def set_process_app(app: Flask) -> None:
    """Remember the app jobs use when they start outside any app context."""
    global _process_app
    _process_app = app


def process_app() -> Flask | None:
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    return _process_app


def forget_inherited_connections() -> None:
    """Drop the connection pool inherited across a fork (no-op in the owning process)."""
    global _pool_pid
    pid = os.getpid()
    if pid != _pool_pid:
        get_engine().dispose(close=False)
        _pool_pid = pid


@contextlib.contextmanager
def job_context() -> Iterator[None]:
    """Run the body in an app context with a fresh session, removed afterwards."""
    forget_inherited_connections()
    if has_app_context():
        ctx = None
    else:
        app = _process_app
        if app is None:
            module, _, name = APP_FACTORY.partition(":")
            app = getattr(importlib.import_module(module), name)()
            set_process_app(app)
        ctx = app.app_context()
        ctx.push()
    db.remove()
    try:
        yield
    finally:
        db.remove()
        if ctx is not None:
            ctx.pop()
