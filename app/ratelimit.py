"""One rate limiter for the whole platform: login throttling, API keys, public tracking.

Built on the `limits` package with its fixed-window strategy: a window starts at the
first hit of a key and lasts `seconds`; every hit counts, refused ones too. With Redis
configured (REDIS_URL) the counters live there, so every web process and host shares
them; without it (the embedded default, one process) they live in this process's
memory. If Redis stops answering, counts move to this process's memory until it answers
again (see `app.redisconn.breaker`: logged once per outage, and Redis is asked again
only every few seconds, so no request waits on a dead Redis). Nothing here touches
the database, so a count survives the rollback of the request that made it: a refused
login is counted even though its use case fails.

Keys keep the layout the platform used before `limits` (`barid:<namespace>:<id>`, a
plain integer with an expiry), so counters written by processes of the previous
release during a rolling deploy still count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from flask import current_app
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.redisconn import CONNECT_TIMEOUT, SOCKET_TIMEOUT, breaker

KEY_PREFIX = "barid"
T = TypeVar("T")


class _Window(RateLimitItemPerSecond):
    """`amount` hits per `multiples` seconds, keyed `<namespace>:<identifier>...`.

    `limits` would put the amount and the window into the key; leaving them out keeps
    one counter per client when an operator changes a limit, as before.
    """

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return ":".join([self.namespace, *(str(i) for i in identifiers)])


@dataclass(frozen=True)
class Rule:
    """A limit: at most `amount` hits per `seconds` for each identifier in `namespace`."""

    namespace: str
    amount: int
    seconds: int

    def item(self) -> _Window:
        return _Window(self.amount, max(int(self.seconds), 1), namespace=self.namespace)


@dataclass(frozen=True)
class Allowance:
    """Where an identifier stands in its window."""

    limit: int
    remaining: int
    reset: int  # whole seconds until the window ends (at least 1)
    allowed: bool

    def headers(self) -> list[tuple[str, str]]:
        """The `RateLimit-*` answer headers, and `Retry-After` when refused."""
        out = [("RateLimit-Limit", str(self.limit)),
               ("RateLimit-Remaining", str(self.remaining)),
               ("RateLimit-Reset", str(self.reset))]
        if not self.allowed:
            out.append(("Retry-After", str(self.reset)))
        return out


# The memory storage of this process (no Redis): one for every app in the process.
_memory = MemoryStorage()


@lru_cache(maxsize=8)
def _redis_storage(url: str) -> Storage:
    storage = storage_from_string(url, key_prefix=KEY_PREFIX, socket_timeout=SOCKET_TIMEOUT,
                                  socket_connect_timeout=CONNECT_TIMEOUT)
    assert isinstance(storage, Storage)  # a redis:// URL gives the synchronous storage
    return storage


def _with_storage(action: Callable[[FixedWindowRateLimiter], T]) -> T:
    """Run `action(limiter)` on the configured storage; while Redis is down, count in
    this process's memory rather than refuse (or let through) every request."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return action(FixedWindowRateLimiter(_memory))
    circuit = breaker(url)
    if circuit.allow():
        try:
            result = action(FixedWindowRateLimiter(_redis_storage(url)))
        except Exception as exc:
            circuit.failed(exc, "rate limits count in each process's memory meanwhile")
        else:
            circuit.succeeded()
            return result
    return action(FixedWindowRateLimiter(_memory))


def _allowance(limiter: FixedWindowRateLimiter, rule: Rule, ids: tuple[str, ...],
               allowed: bool) -> Allowance:
    stats = limiter.get_window_stats(rule.item(), *ids)
    reset = max(math.ceil(stats.reset_time - time.time()), 1)
    return Allowance(limit=rule.amount, remaining=stats.remaining, reset=reset,
                     allowed=allowed)


def hit(rule: Rule, *ids: str) -> Allowance:
    """Count one hit for `ids` under `rule`; `allowed` says whether it stayed within the
    limit. Changes only the counter (Redis or memory); raises nothing of its own."""

    def action(limiter: FixedWindowRateLimiter) -> Allowance:
        allowed = limiter.hit(rule.item(), *ids)
        return _allowance(limiter, rule, ids, allowed)

    return _with_storage(action)


def peek(rule: Rule, *ids: str) -> Allowance:
    """Where `ids` stand under `rule`, without counting; `allowed` says whether one more
    hit would be within the limit."""

    def action(limiter: FixedWindowRateLimiter) -> Allowance:
        return _allowance(limiter, rule, ids, limiter.test(rule.item(), *ids))

    return _with_storage(action)


def count(rule: Rule, *ids: str) -> int:
    """How many hits `ids` have in their current window under `rule`."""
    return _with_storage(lambda limiter: limiter.storage.get(rule.item().key_for(*ids)))


def clear(rule: Rule, *ids: str) -> None:
    """Forget the hits of `ids` under `rule` (e.g. after a successful login)."""
    _with_storage(lambda limiter: limiter.clear(rule.item(), *ids))


def reset() -> None:
    """Forget every count kept in this process's memory (tests call it between tests;
    Redis counters are emptied with their Redis database)."""
    _memory.reset()


__all__ = ["Allowance", "Rule", "clear", "count", "hit", "peek", "reset"]
