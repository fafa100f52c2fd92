"""Who owns API keys and webhook endpoints, without knowing what an owner is.

The platform keeps keys and endpoints for an opaque integer `owner_id` (for the shop, a
merchant's id). The domain that knows owners fills in two hooks from its `init_app`:

- `register_owner_check(func)`: `func(owner_id) -> bool`, whether the owner may use the
  API now (a suspended merchant's keys stop working at once);
- `register_owner_contact(func)`: `func(owner_id) -> (email, phone)`, whom to tell when
  one of their webhook endpoints is disabled.
"""

from __future__ import annotations

from collections.abc import Callable

OwnerCheck = Callable[[int], bool]
OwnerContact = Callable[[int], tuple[str | None, str | None]]

_checks: list[OwnerCheck] = []
_contacts: list[OwnerContact] = []


def register_owner_check(func: OwnerCheck) -> OwnerCheck:
    """Add a check every API request's owner must pass (all registered checks must)."""
    if func not in _checks:
        _checks.append(func)
    return func


def register_owner_contact(func: OwnerContact) -> OwnerContact:
    """Set how to reach an owner (the last registration wins)."""
    _contacts[:] = [func]
    return func


def owner_active(owner_id: int) -> bool:
    """Whether every registered check lets `owner_id` use the API (True with none)."""
    return all(check(owner_id) for check in _checks)


def owner_contact(owner_id: int) -> tuple[str | None, str | None]:
    """(email, phone) of the owner, or (None, None) when no domain says."""
    if not _contacts:
        return None, None
    return _contacts[0](owner_id)
