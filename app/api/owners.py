"""Who owns API keys and webhook endpoints, without knowing what an owner is.

The platform keeps keys and endpoints for an opaque integer `owner_id` (for the shop, a
merchant's id). The domain that knows owners fills in two hooks from its `init_app`:

- `register_owner_check(func)`: `func(owner_id) -> bool`, whether the owner may use the
  API now (a suspended merchant's keys stop working at once);
- `register_owner_contact(func)`: `func(owner_id) -> (email, phone)`, whom to tell when
  one of their webhook endpoints is disabled.

Those are merchants' hooks. Another kind of owner (tracking's partner posts) registers
itself with `register_owner_kind(kind, scopes=..., check=...)`: its keys carry that
`owner_kind`, hold only its scopes, and are checked by its own function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from app.api.models import ALL_SCOPES, MERCHANT

OwnerCheck = Callable[[int], bool]
OwnerContact = Callable[[int], tuple[str | None, str | None]]

_checks: list[OwnerCheck] = []
_contacts: list[OwnerContact] = []
_kinds: dict[str, tuple[tuple[str, ...], OwnerCheck]] = {}


def register_owner_kind(kind: str, *, scopes: Iterable[str], check: OwnerCheck) -> None:
    """Declare another kind of key owner: the only scopes its keys may hold, and whether
    one of its owners may use the API now. Registering a kind again replaces it."""
    if kind == MERCHANT:
        raise ValueError("merchants are the platform's own kind of owner")
    _kinds[kind] = (tuple(scopes), check)


def scopes_for(kind: str) -> tuple[str, ...]:
    """The scopes a key of `kind` may hold (none for an unknown kind)."""
    if kind == MERCHANT:
        return ALL_SCOPES
    return _kinds[kind][0] if kind in _kinds else ()


def register_owner_check(func: OwnerCheck) -> OwnerCheck:
    """Add a check every API request's owner must pass (all registered checks must)."""
    if func not in _checks:
        _checks.append(func)
    return func


def register_owner_contact(func: OwnerContact) -> OwnerContact:
    """Set how to reach an owner (the last registration wins)."""
    _contacts[:] = [func]
    return func


def owner_active(owner_id: int, kind: str = MERCHANT) -> bool:
    """Whether `owner_id` may use the API: for a merchant, every registered check lets it
    (True with none); for another kind, its own check does (False for an unknown kind)."""
    if kind != MERCHANT:
        return kind in _kinds and _kinds[kind][1](owner_id)
    return all(check(owner_id) for check in _checks)


def owner_contact(owner_id: int) -> tuple[str | None, str | None]:
    """(email, phone) of the owner, or (None, None) when no domain says."""
    if not _contacts:
        return None, None
    return _contacts[0](owner_id)
