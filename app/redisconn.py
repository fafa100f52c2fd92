"""The Redis connection, when one is configured (REDIS_URL); None means embedded mode.

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

import redis
from flask import current_app

log = logging.getLogger("barid.redis")

# Seconds. A Redis on the local network answers a connect in well under a millisecond;
# a dead host (no RST, packets dropped) would otherwise hold every request this long.
CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 5
# Seconds a tripped breaker waits before it lets one caller try Redis again.
RETRY_AFTER = 5.0

# What a client raises when Redis is down, restarting or unreachable.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


@lru_cache(maxsize=8)
def _connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=CONNECT_TIMEOUT)


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
