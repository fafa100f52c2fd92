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


# Where a payer goes back to once a payment for a reference of `kind` has an answer
# (the order page for an order): given the reference id, the URL, or None to stay on
# payments' own result page.
ReturnPage = Callable[[str], str | None]
_return_pages: dict[str, ReturnPage] = {}


def register_return_page(kind: str, page: ReturnPage) -> None:
    """Send the payer of a reference of `kind` back to `page(reference_id)` once the bank
    has answered, instead of payments' own result page."""
    _return_pages[kind] = page


def return_page(kind: str | None, reference_id: str | None) -> str | None:
    """The page a payer of (kind, id) returns to, or None when the kind registered none."""
    page = _return_pages.get(kind or "")
    return page(reference_id or "") if page else None


@dataclass(frozen=True)
class Described:
    """What a reference is, for people: its public number (an order's, a parcel's) and
    a short phrase in Arabic and English ("Order BR12345678 from Babil Books")."""

    number: str
    ar: str
    en: str

    def text(self, locale: str) -> str:
        return self.ar if locale.startswith("ar") else self.en


Describer = Callable[[str], Described | None]
_describers: dict[str, Describer] = {}


def register_description(kind: str, describer: Describer) -> None:
    """Let statements and receipts name a reference of `kind` by what it is (its public
    number), never by the internal (kind, id)."""
    _describers[kind] = describer


def describe(kind: str | None, reference_id: str | None) -> Described | None:
    """What (kind, id) is, or None when its domain registered no describer or the
    reference names nothing (it was never a row, or the id is not one)."""
    describer = _describers.get(kind or "")
    if describer is None or not reference_id:
        return None
    return describer(reference_id)
