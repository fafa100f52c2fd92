"""Operations: health probes, Prometheus metrics, request ids and the access log.

`/livez` answers as long as the process serves requests; `/readyz` also asks the
database (and Redis, when configured) whether they answer; `/metrics` is the Prometheus
text exposition, written by hand so the platform needs no metrics library.

Every process keeps its own counters: under gunicorn each worker process exposes the
requests it served itself (scrape each worker, or sum them in Prometheus). Nothing here
is shared between processes, so nothing here needs a lock across them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.sessions import SecureCookieSession, SessionInterface
from sqlalchemy import Engine, text

from app import database, jobs
from app.extensions import csrf
from app.logs import clean_request_id, new_request_id, reset_request_id, set_request_id
from app.redisconn import get_redis

log = logging.getLogger("barid.ops")
access_log = logging.getLogger("barid.access")

bp = Blueprint("ops", __name__)

# Probes and scrapes hit these every few seconds: they get no session, no cookie.
OPS_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
UNMATCHED = "<unmatched>"
METRICS_KEY = "barid.metrics"

# Seconds; from a fast page to a slow PDF or a slow upstream.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
    checks = {"database": check_database(database.get_engine())}
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        checks["redis"] = check_redis(redis_url)
    failed = sorted(name for name, result in checks.items() if result != "ok")
    body: dict[str, Any] = {"status": "unavailable" if failed else "ready", "checks": checks}
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


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class RequestMetrics:
    """Request counts and latencies of this process, by method, route rule and status."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        # key -> [count per bucket (cumulative at render time)..., sum, count]
        self._series: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, method: str, rule: str, status: int, seconds: float) -> None:
        key = (method, rule, str(status))
        with self._lock:
            row = self._series.get(key)
            if row is None:
                row = self._series[key] = [0.0] * (len(self.buckets) + 2)
            for i, upper in enumerate(self.buckets):
                if seconds <= upper:
                    row[i] += 1
                    break
            row[-2] += seconds
            row[-1] += 1

    def render(self) -> list[str]:
        with self._lock:
            series = {k: list(v) for k, v in sorted(self._series.items())}
        out = [
            "# HELP barid_http_requests_total HTTP requests answered by this process.",
            "# TYPE barid_http_requests_total counter",
        ]
        names = ("method", "url_rule", "status")
        for key, row in series.items():
            out.append(f"barid_http_requests_total{_labels(zip(names, key, strict=True))} "
                       f"{_number(row[-1])}")
        out += [
            "# HELP barid_http_request_duration_seconds Time to answer an HTTP request.",
            "# TYPE barid_http_request_duration_seconds histogram",
        ]
        for key, row in series.items():
            base = list(zip(names, key, strict=True))
            running = 0.0
            for upper, count in zip(self.buckets, row, strict=False):
                running += count
                labels = _labels([*base, ("le", _number(upper))])
                out.append(f"barid_http_request_duration_seconds_bucket{labels} "
                           f"{_number(running)}")
            labels = _labels([*base, ("le", "+Inf")])
            out.append(f"barid_http_request_duration_seconds_bucket{labels} {_number(row[-1])}")
            out.append(f"barid_http_request_duration_seconds_sum{_labels(base)} {row[-2]!r}")
            out.append(f"barid_http_request_duration_seconds_count{_labels(base)} "
                       f"{_number(row[-1])}")
        return out


_PROCESS_START = time.time()


def _process_lines() -> list[str]:
    out = [
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {_PROCESS_START!r}",
    ]
    try:
        with open("/proc/self/statm") as fh:
            rss_pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return out
    out += [
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {rss_pages * os.sysconf('SC_PAGE_SIZE')}",
    ]
    return out


def _metric_name(key: str) -> str:
    return "barid_" + "".join(c if c.isalnum() else "_" for c in key.lower())


def _queue_lines() -> list[str]:
    """Job backlog gauges from app.jobs.queue_depths(), when the jobs package has it.

    It answers {"outbox_pending": n, "outbox_failed": n, "queues": {name: length}}:
    numbers become gauges of their own name, "queues" becomes barid_queue_depth{queue}.
    """
    try:
        depths_of = getattr(jobs, "queue_depths", None)
        if depths_of is None:
            return []
        depths: dict[str, Any] = dict(depths_of())
        out: list[str] = []
        for key, value in sorted(depths.items()):
            if isinstance(value, dict):
                name = "barid_queue_depth" if key == "queues" else _metric_name(key)
                label = "queue" if key == "queues" else "name"
                out += [f"# HELP {name} Jobs waiting, per {label}.", f"# TYPE {name} gauge"]
                for sub, number in sorted(value.items()):
                    out.append(f"{name}{_labels([(label, str(sub))])} {int(number)}")
            else:
                name = _metric_name(key)
                out += [f"# HELP {name} Job backlog: {key.replace('_', ' ')}.",
                        f"# TYPE {name} gauge", f"{name} {int(value)}"]
        return out
    except Exception as exc:
        # A scrape must still show the request metrics when the queue backend is down.
        log.warning("metrics: queue depths unavailable: %s", exc)
        return []


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (format 0.0.4) of this process's counters."""
    registry: RequestMetrics = current_app.extensions[METRICS_KEY]
    lines = registry.render() + _queue_lines() + _process_lines()
    return Response("\n".join(lines) + "\n",
                    content_type="text/plain; version=0.0.4; charset=utf-8")


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
    current_app.extensions[METRICS_KEY].observe(
        request.method, rule, response.status_code, seconds
    )
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
    app.extensions[METRICS_KEY] = RequestMetrics()
    csrf.exempt(bp)
    app.register_blueprint(bp)
    # First of all before-request functions, so even a request that CSRF or the rate
    # limiter refuses has its id in their log lines.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    if not isinstance(app.session_interface, ProbeSessionInterface):
        app.session_interface = ProbeSessionInterface(app.session_interface)
