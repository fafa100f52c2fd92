"""The platform's Prometheus instruments: requests and jobs, counted across processes.

The instruments are prometheus_client's. `barid run` is one process and its scrape
reads them in memory. Under gunicorn and `barid worker` many processes count at once;
then `PROMETHEUS_MULTIPROC_DIR` names a directory they share. prometheus_client decides
how to keep values when it is first imported, from the environment, so the variable
must be in the environment of every web and worker process from their start (the
setting of the same name says where /metrics reads them, and a process whose setting
and library disagree refuses to start). Each process then writes its samples to files
in that directory and a scrape sums them (app.ops builds the scrape registry with
`MultiProcessCollector`): counters never go down when another worker answers the
scrape, and a dead worker's counts stay in the sums.

When gunicorn starts (`gunicorn_on_starting`) the directory loses the files of every
process that is no longer running, and a dead gunicorn worker's live gauges are dropped
(`gunicorn_child_exit`); the shipped deploy/gunicorn.conf.py calls both. rq forks a
work-horse per job: every horse of one worker writes to that worker's files (see
`_process_identity`), so the directory grows with the number of processes started, not
with the number of jobs.

Nothing here imports the jobs or the database: the job runner and the request hooks
call `observe_request` and `observe_job`; app.ops serves the scrape.
"""

from __future__ import annotations

import logging
import os
import shutil
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    values,
)
from prometheus_client import multiprocess as prom_multiprocess
from rq import get_current_job

from app.settings import ConfigError, Setting, load_settings, parse_optional

log = logging.getLogger("barid.metrics")


def parse_networks(raw: str) -> list[str]:
    """A comma-separated list of addresses or CIDR blocks: "127.0.0.1/32, 10.0.0.0/8"."""
    return [str(ip_network(part.strip(), strict=False)) for part in raw.split(",")
            if part.strip()]


SETTINGS = (
    Setting("PROMETHEUS_MULTIPROC_DIR", parse=parse_optional, default=None,
            doc="directory every web and worker process writes its metrics to; set it in "
                "the environment of all of them (multi-process deployments)"),
    Setting("METRICS_ALLOW", parse=parse_networks, default=("127.0.0.1/32", "::1/128"),
            doc="comma-separated addresses or CIDR blocks allowed to read /metrics; "
                "others get 403"),
)

# The library emits a *_created sample per series; in one process it doubles the output
# and in multi-process mode it is not kept at all, so both modes leave it out.
disable_created_metrics()


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps its values in files (PROMETHEUS_MULTIPROC_DIR was
    in the environment when it was imported)."""
    return values.ValueClass is not values.MutexValue


# The process that imported this module: `barid worker` itself, before it forks any
# work-horse (or a gunicorn worker, or the master when the app is preloaded).
_HOME_PID = os.getpid()


def _process_identity() -> int:
    """Whose files this process writes: its own pid, or its rq worker's in a work-horse.

    rq runs one job at a time per worker, each in a new forked work-horse. Under its own
    pid every horse would leave files behind, and a scrape would read thousands of
    them; under the worker's pid the horses of one worker take turns on the same files
    (the worker records nothing while its horse runs), and a file is still named after
    a process whose life can be checked (see `clean_directory`).
    """
    pid = os.getpid()
    if pid != _HOME_PID and get_current_job() is not None:
        return os.getppid()  # a work-horse: forked by the worker for this job
    return pid


if multiprocess_mode():
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identity)

# Instruments of this process. In one process they are served from here; in
# multi-process mode they are only written to files (never collected from here).
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; from a fast page to a slow PDF or a slow upstream.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds; from a status update to a statement run or a slow webhook receiver.
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)

HTTP_REQUESTS = Counter(
    "barid_http_requests", "HTTP requests answered, by method, route rule and status.",
    ["method", "url_rule", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "barid_http_request_duration_seconds", "Time to answer an HTTP request.",
    ["method", "url_rule", "status"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
JOBS = Counter(
    "barid_jobs", "Jobs run, by task and outcome: done, failed (an attempt that raised) "
    "or skipped (already done, or gone).", ["task", "outcome"], registry=REGISTRY)
JOB_DURATION = Histogram(
    "barid_job_duration_seconds", "Time a job took, done or failed, by task.",
    ["task", "outcome"], buckets=JOB_BUCKETS, registry=REGISTRY)

JOB_OUTCOMES = ("done", "failed", "skipped")


def observe_request(method: str, rule: str, status: int, seconds: float) -> None:
    """Count one answered request under its route rule (never its raw path). A failure
    to count (the metrics directory full or gone) is logged, never the request's."""
    labels = (method, rule, str(status))
    try:
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_LATENCY.labels(*labels).observe(seconds)
    except Exception:
        log.exception("metrics: could not count a request")


def observe_job(task: str, outcome: str, seconds: float) -> None:
    """Count one run of job `task` ("module:function") and how long it took. Raises
    ValueError for an unknown outcome; a failure to count is only logged."""
    if outcome not in JOB_OUTCOMES:
        raise ValueError(f"unknown job outcome {outcome!r}")
    try:
        JOBS.labels(task, outcome).inc()
        if outcome != "skipped":
            JOB_DURATION.labels(task, outcome).observe(seconds)
    except Exception:
        log.exception("metrics: could not count a run of %s", task)


# ---------------------------------------------------------------- multi-process files


def check_mode(config: dict[str, Any]) -> None:
    """Refuse a process whose PROMETHEUS_MULTIPROC_DIR setting and prometheus_client
    disagree: its counts would be kept where no scrape reads them."""
    wanted = bool(config.get("PROMETHEUS_MULTIPROC_DIR"))
    if wanted != multiprocess_mode():
        raise ConfigError(
            "PROMETHEUS_MULTIPROC_DIR must be set in the environment before the process "
            "starts (prometheus_client reads it when first imported); it was "
            + ("given only as a setting." if wanted else "removed after the import."))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


def clean_directory(path: str | os.PathLike[str]) -> list[str]:
    """Empty the shared metrics directory (creating it if needed) of every file that
    no running process writes; returns the names removed.

    Files of processes gone before this start would otherwise be added to this run's
    counts. Files of running processes (a `barid worker` that was not restarted with
    the web server) stay, so their counts keep showing.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    removed = []
    for entry in folder.iterdir():
        owner = entry.stem.rsplit("_", 1)[-1]
        if entry.suffix == ".db" and owner.isdigit() and _alive(int(owner)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed


def _settings() -> dict[str, Any]:
    """This module's settings read the one way settings are read, outside any app."""
    holder = Flask("barid-metrics-settings")
    load_settings(holder, "metrics", SETTINGS, overrides={})
    return dict(holder.config)


def gunicorn_on_starting(server: Any = None) -> None:
    """gunicorn's `on_starting` hook (in the master, before any worker is forked):
    clear PROMETHEUS_MULTIPROC_DIR of stopped processes' files when it is set."""
    folder = _settings().get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        removed = clean_directory(folder)
        log.info("metrics: removed %s files of stopped processes from %s", len(removed),
                 folder)


def gunicorn_child_exit(server: Any, worker: Any) -> None:
    """gunicorn's `child_exit` hook (in the master): drop the exited worker's live
    gauges. Its counters stay, so the sums never go down."""
    folder = _settings().get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        prom_multiprocess.mark_process_dead(worker.pid, folder)


def init_app(app: Flask) -> None:
    """Load the metrics settings, check they agree with prometheus_client, and make the
    shared directory if no process made it yet (a worker may start before gunicorn)."""
    load_settings(app, "metrics", SETTINGS)
    check_mode(app.config)
    if app.config.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(app.config["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
