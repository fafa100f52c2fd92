"""The back-office shell: navigation by role, shared by every domain's clerk pages.

A domain adds its pages with `nav_item(...)` from its `init_app`; the shell shows each
user only the entries their roles allow, grouped by section (`nav_section` names and
orders a section). Back-office pages extend templates/backoffice/base.html.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from werkzeug.routing import BuildError

from app import replication
from app.auth.decorators import role_required
from app.auth.models import STAFF_ROLES, Role
from app.database import get_engine


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str  # English source text; translated when shown
    roles: frozenset[Role]
    section: str = "counter"
    order: int = 100


@dataclass(frozen=True)
class NavSection:
    key: str
    label: Any  # lazy-translated text
    order: int


_nav: list[NavItem] = []
_sections: dict[str, NavSection] = {}


def nav_item(endpoint: str, label: str, roles: tuple[Role | str, ...], *,
             section: str = "counter", order: int = 100) -> None:
    """Add a back-office navigation entry visible to holders of any of `roles`."""
    item = NavItem(endpoint, label, frozenset(Role(r) for r in roles), section, order)
    if all(i.endpoint != endpoint for i in _nav):
        _nav.append(item)
        _nav.sort(key=lambda i: (i.section, i.order))


def nav_section(key: str, label: Any, order: int = 100) -> None:
    """Name a section (with a lazy-translated label) and place it among the others."""
    _sections[key] = NavSection(key, label, order)


# The sections the platform knows of; a domain may add its own with nav_section.
nav_section("home", lazy_gettext("Overview"), 0)
nav_section("counter", lazy_gettext("Counter"), 10)
nav_section("parcels", lazy_gettext("Parcels"), 20)
nav_section("customs", lazy_gettext("Customs"), 30)
nav_section("payments", lazy_gettext("Payments"), 40)
nav_section("shop", lazy_gettext("Shops and orders"), 50)
nav_section("procurement", lazy_gettext("Buying abroad"), 60)
nav_section("reports", lazy_gettext("Reports"), 70)
nav_section("admin", lazy_gettext("Administration"), 90)


def nav_for(user) -> list[NavItem]:
    """The entries `user` may open, in display order."""
    roles = user.roles if user and user.is_authenticated else frozenset()
    return [i for i in _nav if i.roles & roles]


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    url: str
    label: str


@dataclass(frozen=True)
class NavGroup:
    key: str
    label: str
    links: list[NavLink]


def nav_groups(user) -> list[NavGroup]:
    """`nav_for(user)` grouped by section with translated labels and URLs.

    An entry whose endpoint does not exist (a domain not loaded) is left out rather than
    breaking every back-office page.
    """
    groups: dict[str, list[NavLink]] = {}
    for item in nav_for(user):
        try:
            url = url_for(item.endpoint)
        except BuildError:
            continue
        groups.setdefault(item.section, []).append(
            NavLink(item.endpoint, url, gettext(item.label))
        )

    def section(key: str) -> NavSection:
        return _sections.get(key) or NavSection(key, key.replace("_", " ").capitalize(), 100)

    ordered = sorted(groups, key=lambda k: (section(k).order, k))
    return [NavGroup(k, str(section(k).label), groups[k]) for k in ordered]


bp = Blueprint("backoffice", __name__, url_prefix="/backoffice")


@bp.route("/")
@role_required(*STAFF_ROLES)
def index():
    sites = None
    if current_user.has_role(Role.ADMIN):
        # The two sites at a glance for admins; a database that cannot say is not an
        # error on this page (the figures are also in /metrics).
        with contextlib.suppress(Exception):
            sites = replication.read_state(get_engine())
    return render_template("backoffice/index.html", sites=sites)


nav_item("backoffice.index", "Dashboard", STAFF_ROLES, section="home", order=0)


def init_app(app: Flask) -> None:
    """Give back-office templates their navigation (the blueprint is registered by
    app.auth_setup, after the auth pages have added their routes to it)."""

    @app.context_processor
    def _backoffice_context() -> dict:
        return {"backoffice_nav": nav_groups}
