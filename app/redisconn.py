"""The Redis connection, when one is configured (REDIS_URL); None means embedded mode.

REDIS_URL is either a plain `redis://host:port/db`, or, on the two sites, the Sentinels'
address `redis+sentinel://host:port,host:port,host:port/master` (database 0), which
config builds from REDIS_SENTINELS and REDIS_SENTINEL_MASTER. Through Sentinel, the
client asks for the current primary on every new connection, so web processes, workers
and rate limits (the `limits` package reads the same URL form) follow a failover
without a restart.

Redis is where jobs are queued and rate limits are counted, but no page, login, public
lookup or checkout may wait on it. Clients connect with a short timeout, and code on the
request path asks the circuit breaker (`breaker(url)`) first: after a failure it stops
asking Redis for a few seconds (REDIS_RETRY_AFTER), falls back to what needs no Redis,
and logs the outage once when it starts and once when it ends, not on every request.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from flask import current_app
from redis.sentinel import Sentinel

log = logging.getLogger("barid.redis")

# Seconds. A Redis on the local network answers a connect in well under a millisecond;
# a dead host (no RST, packets dropped) would otherwise hold every request this long.
CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 5
# Seconds a tripped breaker waits before it lets one caller try Redis again.
RETRY_AFTER = 5.0

# What a client raises when Redis is down, restarting or unreachable.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


SENTINEL_SCHEME = "redis+sentinel"
_TIMEOUTS = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT}


def sentinel_url(sentinels: str, master: str) -> str:
    """The REDIS_URL for Sentinels "host:port,host:port" watching `master`."""
    hosts = ",".join(part.strip() for part in sentinels.split(",") if part.strip())
    return f"{SENTINEL_SCHEME}://{hosts}/{master}"


def _sentinel_primary(url: str) -> redis.Redis:
    parts = urlsplit(url)
    hosts = []
    for hostport in parts.netloc.split(","):
        host, _, port = hostport.rpartition(":")
        hosts.append((host or "127.0.0.1", int(port or 26379)))
    sentinel = Sentinel(hosts, sentinel_kwargs=_TIMEOUTS, **_TIMEOUTS)
    return sentinel.master_for(parts.path.strip("/"), **_TIMEOUTS)


def new_client(url: str) -> redis.Redis:
    """A client of its own for `url` (not shared), for a thread that must not share a
    socket with others across a fork."""
    if url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_primary(url)
    return redis.Redis.from_url(url, **_TIMEOUTS)


@lru_cache(maxsize=8)
def _connect(url: str) -> redis.Redis:
    return new_client(url)


def get_redis(url: str | None = None) -> redis.Redis | None:
    """The shared client for `url` (default: the app's REDIS_URL), or None if unset."""
    url = url or current_app.config.get("REDIS_URL")
    return _connect(url) if url else None


class Breaker:
    """A circuit breaker for one Redis: closed while it answers, open for `retry_after`
    seconds after a failure (callers skip Redis), then half-open: the next caller tries.

    `down` stays true from the first failure until a call succeeds, so the outage is
    logged once at each end whatever the number of requests in between.
    """

    def __init__(self, name: str, retry_after: float = RETRY_AFTER) -> None:
        self.name = name
        self.retry_after = retry_after
        self.down = False
        self.open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether a caller should try Redis now (false while the breaker is open)."""
        return time.monotonic() >= self.open_until

    def failed(self, exc: BaseException, fallback: str) -> None:
        """Record a failed call; the first one of an outage is logged with `fallback`
        (what the platform does instead)."""
        with self._lock:
            self.open_until = time.monotonic() + self.retry_after
            first = not self.down
            self.down = True
        if first:
            log.warning("Redis %s unreachable (%s: %s); %s. Trying again every %ss.",
                        self.name, type(exc).__name__, exc, fallback, self.retry_after)

    def succeeded(self) -> None:
        """Record a call that worked; ends an outage (logged once)."""
        if not self.down:
            return
        with self._lock:
            was_down, self.down, self.open_until = self.down, False, 0.0
        if was_down:
            log.warning("Redis %s reachable again", self.name)


_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()


def _safe_name(url: str) -> str:
    """The URL without its password, for the log."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _credentials = head.partition("://")
    return f"{scheme}://{tail}"


def breaker(url: str) -> Breaker:
    """The process's circuit breaker for the Redis at `url`."""
    found = _breakers.get(url)
    if found is None:
        with _breakers_lock:
            found = _breakers.setdefault(url, Breaker(_safe_name(url)))
    return found


def reset_breakers() -> None:
    """Forget every outage (tests start each from a closed breaker)."""
    with _breakers_lock:
        _breakers.clear()
