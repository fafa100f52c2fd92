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
    due = resolver(reference_id, user) if resolver else None
    if due is None or due.amount <= 0:
        raise NotFound()
    return due
