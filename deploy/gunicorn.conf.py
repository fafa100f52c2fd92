"""Gunicorn for Barid: `gunicorn -c deploy/gunicorn.conf.py app.wsgi:app`.

Behind the shipped nginx (deploy/nginx/barid.conf), with TRUSTED_PROXY_HOPS=1 in the
environment. Any setting here can be overridden on the command line (`--workers 8`) or
with GUNICORN_CMD_ARGS.

Worker class, chosen by measurement (bench/gunicorn_workers.py; figures below): some
requests wait on something other than this process's CPU: a bank-card payment start
waits on Stripe, a label batch draws PDFs for hundreds of milliseconds. With the `sync`
class each of them holds a whole worker, and every request that worker accepted queues
behind it. With `gthread` a worker serves its other threads while one waits on Stripe,
and a batch of labels takes the GIL in 5 ms turns instead of the whole worker.

Measured with bench/gunicorn_workers.py on 2 cores (shared with other busy work: load
about 10), PostgreSQL, localstripe, 2 workers; 4 clients without pause drawing 10-label
batches and starting card top-ups beside 4 clients looking up a parcel
(GET /api/v1/tracking/<n>); 15 s each; latencies of the lookups:

    class        lookups/s  p50 ms  p95 ms  slow requests/s
    sync              3.1    1038    4477      1.7
    gthread x2        5.1     688    1780      2.7
    gthread x4       12.2     242     752      1.7
    gthread x8       11.3     221     798      1.3

With sync every lookup that lands on a worker busy with a label batch waits for the
whole batch; with 4 threads it waits a few GIL turns. More than 4 threads buys nothing
on a busy machine (the label drawing is CPU work, and the GIL is one per process):
add workers for CPU, threads for waiting.

Threads share the database pool: SQLAlchemy's default pool (5 + 10 overflow) per
process is more than 4 threads need.
"""

from __future__ import annotations

import multiprocessing

bind = "127.0.0.1:8000"  # nginx's upstream (BARID_UPSTREAM)

# Two per core is gunicorn's usual start; each also has `threads` threads.
workers = max(2, multiprocessing.cpu_count() * 2)
worker_class = "gthread"
threads = 4

# A request may take this long before its worker is killed and restarted (label batches
# of 500 and statements of a busy card stay far below it). nginx waits a little longer
# (proxy_read_timeout 70s), so gunicorn answers first.
timeout = 60
# On SIGHUP or a deploy, a worker finishes the requests it has for this long.
graceful_timeout = 30
# nginx keeps connections to the upstream open (keepalive 16).
keepalive = 5

# Restart each worker after about this many requests (the jitter keeps them from all
# restarting at once), so a slow leak in a library never grows into an outage.
max_requests = 2000
max_requests_jitter = 200

# The app is built once in the master and the workers are forked from it: faster
# restarts and shared memory for the code and templates. Safe because building the app
# opens no connection: the database engine is created but never connects before a
# worker uses it, and post_fork below drops anything it may have inherited anyway;
# redis-py's pools notice a new process id and reconnect by themselves.
preload_app = True

# One JSON line per request comes from the app itself (app.ops); gunicorn's own access
# log would repeat it.
accesslog = None
errorlog = "-"
loglevel = "info"
# The workers' heartbeat files in memory, not on a disk that may stall them (gunicorn's
# advice for containers); only gunicorn writes there.
worker_tmp_dir = "/dev/shm"  # noqa: S108

proc_name = "barid-web"


def post_fork(server, worker):
    """Each worker opens its own database connections: a connection inherited from the
    master would be shared by two processes and corrupt both sessions."""
    from app.database import get_engine

    try:
        engine = get_engine()
    except RuntimeError:  # not preloaded: the worker builds the app itself
        return
    # close=False: leave the master's connections (if any) to the master.
    engine.dispose(close=False)


# Metrics from every process (app.metrics): with PROMETHEUS_MULTIPROC_DIR in the
# environment of gunicorn and of every `barid worker`, /metrics sums them all.


def on_starting(server):
    """Clear PROMETHEUS_MULTIPROC_DIR of the files stopped processes left, so a new
    start does not add the last run's counts."""
    from app.metrics import gunicorn_on_starting

    gunicorn_on_starting(server)


def child_exit(server, worker):
    """Drop a dead worker's live gauges; its counters stay in the sums."""
    from app.metrics import gunicorn_child_exit

    gunicorn_child_exit(server, worker)


def pre_fork(server, worker):
    """Move every object the preloaded app made into the permanent generation before a
    worker is forked: the worker's collections then never write to their GC headers, so
    the pages holding them stay shared with the master instead of being copied into
    each worker. bench/memory.py (2 workers, after 200 requests): gunicorn's PSS 190 ->
    156 MiB. Only in the master, which makes little garbage between forks."""
    import gc

    gc.freeze()
