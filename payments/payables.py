"""What can be paid on the generic "pay for a reference" page.

A higher domain registers a resolver for its reference kind at start-up (payments
never imports it): given the reference id and the visitor, it answers the amount due
computed on the server, or None when there is nothing to pay or it is not theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import NotFound
from app.numbers import MAX_BIGINT


@dataclass(frozen=True)
class Payable:
    amount: int
    currency: str
    purpose: str
    description: str


Resolver = Callable[[str, Any], Payable | None]
_resolvers: dict[str, Resolver] = {}


def register_payable(kind: str, resolver: Resolver) -> None:
    """Let `/payments/pay-for/<kind>/<id>` take payments for references of `kind`."""
    _resolvers[kind] = resolver


def resolve(kind: str, reference_id: str, user: Any) -> Payable:
    """The amount due for (kind, id) for `user`; raises NotFound when nothing is due."""
    resolver = _resolvers.get(kind)
    # A reference is opaque, but digits past BIGINT name no row anywhere: a resolver that
    # looks it up would have PostgreSQL refuse the bind (a 500) instead of "not found".
    if reference_id.isascii() and reference_id.isdigit() and (
            len(reference_id) > 19 or int(reference_id) > MAX_BIGINT):
        raise NotFound()
    due = resolver(reference_id, user) if resolver else None
    if due is None or due.amount <= 0:
        raise NotFound()
    return due
