"""The back-office shell: navigation by role, shared by every domain's clerk pages.

A domain adds its pages with `nav_item(...)` from its `init_app`; the shell shows each
user only the entries their roles allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from app.auth.models import Role


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str  # English source text; translated when shown
    roles: frozenset[Role]
    section: str = "counter"
    order: int = 100


_nav: list[NavItem] = []


def nav_item(endpoint: str, label: str, roles: tuple[Role | str, ...], *,
             section: str = "counter", order: int = 100) -> None:
    """Add a back-office navigation entry visible to holders of any of `roles`."""
    item = NavItem(endpoint, label, frozenset(Role(r) for r in roles), section, order)
    if all(i.endpoint != endpoint for i in _nav):
        _nav.append(item)
        _nav.sort(key=lambda i: (i.section, i.order))


def nav_for(user) -> list[NavItem]:
    """The entries `user` may open, in display order."""
    roles = user.roles if user and user.is_authenticated else frozenset()
    return [i for i in _nav if i.roles & roles]


def init_app(app: Flask) -> None:
    pass
