"""The Redis connection, when one is configured (REDIS_URL); None means embedded mode.

REDIS_URL is either a plain `redis://host:port/db`, or, on the two sites, the Sentinels'
address `redis+sentinel://host:port,host:port,host:port/master` (database 0), which
config builds from REDIS_SENTINELS and REDIS_SENTINEL_MASTER. Through Sentinel, the
client asks for the current primary on every new connection, so web processes, workers
and rate limits (the `limits` package reads the same URL form) follow a failover
without a restart.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import redis
from flask import current_app
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
_TIMEOUTS = {"socket_timeout": 5, "socket_connect_timeout": 2}


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


@lru_cache(maxsize=8)
def _connect(url: str) -> redis.Redis:
    if url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_primary(url)
    return redis.Redis.from_url(url, **_TIMEOUTS)


def new_client(url: str) -> redis.Redis:
    """A client of its own for `url` (not shared), for a thread that must not share a
    socket with others across a fork."""
    return _connect.__wrapped__(url)


def get_redis(url: str | None = None) -> redis.Redis | None:
    """The shared client for `url` (default: the app's REDIS_URL), or None if unset."""
    url = url or current_app.config.get("REDIS_URL")
    return _connect(url) if url else None
