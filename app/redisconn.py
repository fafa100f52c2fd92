"""The Redis connection, when one is configured (REDIS_URL); None means embedded mode."""

from __future__ import annotations

from functools import lru_cache

import redis
from flask import current_app


@lru_cache(maxsize=8)
def _connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def get_redis(url: str | None = None) -> redis.Redis | None:
    """The shared client for `url` (default: the app's REDIS_URL), or None if unset."""
    url = url or current_app.config.get("REDIS_URL")
    return _connect(url) if url else None
