"""Operations: health probes, Prometheus metrics, request ids and the access log.

`/livez` answers as long as the process serves requests; `/readyz` also asks the
database (and Redis, when configured) whether they answer; `/metrics` is the Prometheus
text exposition of app.metrics' instruments, summed over every web and worker process
when PROMETHEUS_MULTIPROC_DIR is set, plus the job backlog read at scrape time. Only
the addresses in METRICS_ALLOW may read it; `barid metrics-serve` serves the same on a
port of its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import click
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.cli import with_appcontext
from flask.sessions import SecureCookieSession, SessionInterface
from flask_babel import gettext as _
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from rq import Queue
from sqlalchemy import Engine, func, select, text

from app import database, metrics, replication
from app.database import utcnow
from app.events import JobState, OutboxJob
from app.extensions import csrf
from app.logs import clean_request_id, new_request_id, reset_request_id, set_request_id
from app.redisconn import get_redis

log = logging.getLogger("barid.ops")
access_log = logging.getLogger("barid.access")

bp = Blueprint("ops", __name__)

# Probes and scrapes hit these every few seconds: they get no session, no cookie.
OPS_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
UNMATCHED = "<unmatched>"


# ---------------------------------------------------------------- health probes


@bp.get("/livez")
def livez() -> Response:
    """The process is up and serving; nothing else is asked."""
    return jsonify(status="alive")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve: the database answers SELECT 1 and, when configured, Redis PINGs.

    503 with the names of the failed dependencies otherwise, so a load balancer stops
    sending traffic and a person reading the body knows what to look at.
    """
    # Looked up on the module at call time, so a test can swap the engine.
    engine = database.get_engine()
    checks = {"database": check_database(engine)}
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        checks["redis"] = check_redis(redis_url)
    failed = sorted(name for name, result in checks.items() if result != "ok")
    body: dict[str, Any] = {"status": "unavailable" if failed else "ready", "checks": checks}
    if checks["database"] == "ok":
        # Which site this process writes to, for whoever is watching a failover.
        with contextlib.suppress(Exception):
            body["database_role"] = replication.read_state(engine).role
    if failed:
        body["failed"] = failed
    return jsonify(body), 503 if failed else 200


def check_database(engine: Engine) -> str:
    """"ok" if `engine` answers SELECT 1, else a short reason (the details go to the log)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def check_redis(url: str) -> str:
    """"ok" if the Redis at `url` answers PING, else a short reason."""
    try:
        conn = get_redis(url)
        if conn is None or not conn.ping():
            return "unreachable"
    except Exception as exc:
        log.warning("readiness: redis unreachable: %s", exc)
        return f"unreachable ({type(exc).__name__})"
    return "ok"


# ---------------------------------------------------------------- metrics


class _ThisProcess:
    """This process's instruments (app.metrics), when it is the only one counting."""

    def collect(self) -> Iterable[Metric]:
        return metrics.REGISTRY.collect()


def _age_seconds(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive values; all are stored in UTC
        oldest = oldest.replace(tzinfo=UTC)
    return max((now - oldest).total_seconds(), 0.0)


class BacklogCollector:
    """The job backlog, read when scraped: outbox rows pending and failed, the age of
    the oldest pending row, and each rq queue's length (under rq).

    Each source is asked on its own, so a scrape during a Redis outage still shows the
    outbox growing; `barid_backlog_up{source}` says which source answered.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("barid_backlog_up", "1 when the scrape could read the "
                               "backlog from this source, 0 when it could not.",
                               labels=["source"])
        try:
            yield from self._outbox()
            yield from self._replication()
            up.add_metric(["database"], 1)
        except Exception as exc:
            log.warning("metrics: outbox backlog unavailable: %s", exc)
            up.add_metric(["database"], 0)
        redis_url = self.app.config.get("REDIS_URL")
        if redis_url:
            try:
                yield self._queues(redis_url)
                up.add_metric(["redis"], 1)
            except Exception as exc:
                log.warning("metrics: rq queue depths unavailable: %s", exc)
                up.add_metric(["redis"], 0)
        yield up

    def _outbox(self) -> list[Metric]:
        # Its own connection: a scrape reads committed state and joins no unit of work.
        with database.get_engine().connect() as conn:
            counts = dict(conn.execute(
                select(OutboxJob.state, func.count())
                .where(OutboxJob.state.in_([JobState.PENDING, JobState.FAILED]))
                .group_by(OutboxJob.state)).all())
            oldest = conn.execute(select(func.min(OutboxJob.created_at))
                                  .where(OutboxJob.state == JobState.PENDING)).scalar()
        return [
            GaugeMetricFamily("barid_outbox_pending", "Outbox jobs waiting to run "
                              "(including those waiting for a retry).",
                              value=int(counts.get(JobState.PENDING, 0))),
            GaugeMetricFamily("barid_outbox_failed", "Outbox jobs that failed for good.",
                              value=int(counts.get(JobState.FAILED, 0))),
            GaugeMetricFamily("barid_outbox_oldest_pending_age_seconds",
                              "Age of the oldest pending outbox job (0 when none waits).",
                              value=_age_seconds(oldest, utcnow())),
        ]

    def _replication(self) -> list[Metric]:
        state = replication.read_state(database.get_engine())
        if state.role == "embedded":
            return []
        found: list[Metric] = [
            GaugeMetricFamily("barid_database_primary", "1 when this process reaches the "
                              "primary (writable) database, 0 when a standby.",
                              value=int(state.role == "primary")),
        ]
        if state.role == "primary":
            found += [
                GaugeMetricFamily("barid_replication_synchronous", "1 when a standby "
                                  "confirms every commit; 0 means an acknowledged payment "
                                  "exists on one site only.", value=int(state.synchronous)),
                GaugeMetricFamily("barid_replication_standbys", "Standbys streaming from "
                                  "the primary.", value=state.standbys),
            ]
            if state.lag_bytes is not None:
                found.append(GaugeMetricFamily(
                    "barid_replication_lag_bytes", "WAL bytes the furthest standby has "
                    "yet to replay.", value=state.lag_bytes))
            if state.lag_seconds is not None:
                found.append(GaugeMetricFamily(
                    "barid_replication_lag_seconds", "Seconds since the furthest "
                    "standby replayed what the primary wrote.", value=state.lag_seconds))
        return found

    def _queues(self, redis_url: str) -> Metric:
        conn = get_redis(redis_url)
        assert conn is not None
        depth = GaugeMetricFamily("barid_queue_depth", "Jobs waiting in each rq queue.",
                                  labels=["queue"])
        for name in self.app.config["RQ_QUEUES"]:
            depth.add_metric([name], Queue(name, connection=conn).count)
        return depth


def scrape_registry(app: Flask) -> CollectorRegistry:
    """What a scrape reads: every process's instruments summed from the shared directory
    in multi-process mode (else this process's, and its CPU and memory), and the
    backlog read now."""
    registry = CollectorRegistry(auto_describe=False)
    folder = app.config.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
        ProcessCollector(registry=registry)
    registry.register(BacklogCollector(app))  # type: ignore[arg-type]
    return registry


def _client_address() -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(request.remote_addr or "")
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def metrics_allowed() -> bool:
    """Whether the client (its real address, once ProxyFix trusts the proxy) is in
    METRICS_ALLOW."""
    address = _client_address()
    if address is None:
        return False
    networks = [ip_network(n, strict=False) for n in current_app.config["METRICS_ALLOW"]]
    return any(address.version == n.version and address in n for n in networks)


@bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus text exposition (format 0.0.4) of every process's counters, for the
    addresses in METRICS_ALLOW; 403 for anyone else."""
    if not metrics_allowed():
        log.warning("metrics: refused a scrape from %s", request.remote_addr)
        return Response(_("Forbidden.") + "\n", status=403,
                        content_type="text/plain; charset=utf-8")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return Response(generate_latest(scrape_registry(app)),
                    content_type=CONTENT_TYPE_PLAIN_0_0_4)


@click.command("metrics-serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep it private: there is no allow list here).")
@click.option("--port", default=9464, show_default=True, type=int)
@with_appcontext
def metrics_serve_command(host: str, port: int) -> None:
    """Serve /metrics on a port of its own, apart from the site (and from nginx).

    Reads the same registry as /metrics: every process's counts when
    PROMETHEUS_MULTIPROC_DIR is set, else only this process's (which counts nothing).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    server, thread = start_http_server(port, addr=host, registry=scrape_registry(app))
    click.echo(f"barid metrics on http://{host}:{port}/metrics")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


# ---------------------------------------------------------------- request ids, access log


def _begin_request() -> None:
    rid = clean_request_id(request.headers.get("X-Request-ID")) or new_request_id()
    request.request_id = rid  # type: ignore[attr-defined]
    g._barid_rid_token = set_request_id(rid)
    g._barid_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    rid = getattr(request, "request_id", None)
    if rid is None:  # a handler before ours failed the request
        _begin_request()
        rid = request.request_id  # type: ignore[attr-defined]
    response.headers["X-Request-ID"] = rid
    seconds = time.perf_counter() - g.get("_barid_started", time.perf_counter())
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    metrics.observe_request(request.method, rule, response.status_code, seconds)
    access_log.info(
        "%s %s %s", request.method, request.path, response.status_code,
        extra={
            "barid_request_id": rid,
            "barid_method": request.method,
            "barid_path": request.path,
            "barid_status": response.status_code,
            "barid_duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


def _end_request(_exc: BaseException | None) -> None:
    token = g.pop("_barid_rid_token", None)
    if token is not None:
        try:
            reset_request_id(token)
        except ValueError:  # set in another context (streamed response): just clear it
            set_request_id(None)


# ---------------------------------------------------------------- no sessions for probes


class _DiscardedSession(SecureCookieSession):
    """An empty session that is never saved: what probes and scrapes get."""


class ProbeSessionInterface(SessionInterface):
    """Wraps the app's session interface so the ops paths neither read nor set a cookie."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_session(self, app: Flask, request: Any) -> Any:
        if request.path in OPS_PATHS:
            return _DiscardedSession()
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if isinstance(session, _DiscardedSession):
            return
        self.inner.save_session(app, session, response)

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, _DiscardedSession) or self.inner.is_null_session(obj)

    def make_null_session(self, app: Flask) -> Any:
        return self.inner.make_null_session(app)


def init_app(app: Flask) -> None:
    metrics.init_app(app)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    # First of all before-request functions, so even a request that CSRF or the rate
    # limiter refuses has its id in their log lines.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    if not isinstance(app.session_interface, ProbeSessionInterface):
        app.session_interface = ProbeSessionInterface(app.session_interface)
    app.cli.add_command(metrics_serve_command)
