"""The back-office shell: navigation by role, shared by every domain's clerk pages.

A domain adds its pages with `nav_item(...)` from its `init_app`; the shell shows each
user only the entries their roles allow, grouped by section (`nav_section` names and
orders a section). Back-office pages extend templates/backoffice/base.html.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from app import charts, dashboard, replication
from app.auth.decorators import role_required
from app.auth.identifiers import normalise_phone
from app.auth.models import STAFF_ROLES, Role, User
from app.barcodes import open_token, token_in
from app.database import db, get_engine
from app.errors import ValidationFailed
from app.numbers import ascii_digits


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
    """The dashboard: figures for supervisors (their office) and admins (the whole post),
    the links of every role, and the two sites for admins."""
    figures = None
    scope = None
    if dashboard.sees_figures(current_user):
        scope = dashboard.Scope.for_user(current_user)
        figures = dashboard.figures(scope)
    sites = None
    if current_user.has_role(Role.ADMIN):
        # The two sites at a glance for admins; a database that cannot say is not an
        # error on this page (the figures are also in /metrics).
        with contextlib.suppress(Exception):
            sites = replication.read_state(get_engine())
    return render_template("backoffice/index.html", sites=sites, figures=figures,
                           scope=scope, draw=charts.draw)


nav_item("backoffice.index", "Dashboard", STAFF_ROLES, section="home", order=0)


# -- one search box for everything ---------------------------------------------------------

# What a person types or a scanner sends is short; anything longer is not a reference.
MAX_QUERY = 200
# The most hits one provider lists: a search is for finding one thing, not browsing.
MAX_HITS = 20


@dataclass(frozen=True)
class SearchQuery:
    """What was typed or scanned, read the ways providers need it.

    `text`: stripped, Arabic-Indic digits as ASCII; `compact`: `text` without spaces,
    dashes and dots, upper-cased (numbers such as S10 ids, order and card numbers);
    `phone`: an Iraqi mobile as E.164 ("+9647...") when `text` is one, else None.
    """

    raw: str
    text: str
    compact: str
    phone: str | None

    @classmethod
    def of(cls, raw: str) -> SearchQuery:
        text = ascii_digits(raw).strip()
        compact = "".join(text.split()).replace("-", "").replace(".", "").upper()
        try:
            phone: str | None = normalise_phone(text)
        except ValidationFailed:
            phone = None
        return cls(raw, text, compact, phone)


@dataclass(frozen=True)
class SearchHit:
    """One record found: what kind it is, how it is named, and its back-office page."""

    kind: Any  # lazy-translated: "Parcel", "Order", ...
    title: str
    endpoint: str
    values: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def url(self) -> str:
        return url_for(self.endpoint, **self.values)


SearchProvider = Callable[[SearchQuery], Iterable[SearchHit]]
_providers: list[SearchProvider] = []


def register_search(provider: SearchProvider) -> None:
    """Let the back-office search box find a domain's records: `provider(query)` returns
    the records matching a SearchQuery (at most MAX_HITS; none when it is not theirs)."""
    if provider not in _providers:
        _providers.append(provider)


def _may_open(user: Any, endpoint: str) -> bool:
    """Whether `user` holds a role the page `endpoint` asks for (hits they could not open
    are not listed: a clerk does not see the admin's user pages)."""
    view = current_app.view_functions.get(endpoint)
    wanted = getattr(view, "required_roles", None)
    return view is not None and (wanted is None or bool(set(wanted) & user.roles))


def find(raw: str, user: Any) -> list[SearchHit]:
    """Every record that `raw` names, from every registered provider, that `user` may
    open. Reads only."""
    query = SearchQuery.of(raw)
    hits: list[SearchHit] = []
    for provider in _providers:
        hits.extend(list(provider(query))[:MAX_HITS])
    return [h for h in hits if _may_open(user, h.endpoint)]


def _people(query: SearchQuery) -> Iterable[SearchHit]:
    """Accounts by e-mail address or mobile number."""
    if "@" in query.text:
        where = User.email == query.text.lower()
    elif query.phone:
        where = User.phone == query.phone
    else:
        return []
    return [SearchHit(lazy_gettext("Person"), u.full_name, "backoffice.admin_user",
                      {"user_id": u.id}, u.email or u.phone or "")
            for u in db.scalars(select(User).where(where).limit(MAX_HITS))]


register_search(_people)


@bp.get("/search")
@role_required(*STAFF_ROLES)
def search() -> Response | tuple[str, int] | str:
    """The search box: a scanned Barid barcode opens its record; typed text is looked up
    by every domain; one match opens, several are listed, none says so."""
    # A scanner may send a control character (a tab, a NUL) with the code; PostgreSQL
    # refuses a NUL in a query, so they are dropped before anything is looked up.
    raw = "".join(ch for ch in request.args.get("q", "") if ch.isprintable())
    if not raw.strip():
        return render_template("backoffice/search.html", q="", hits=[], message=gettext(
            "Type or scan a tracking number, an order, receipt or card number, a national "
            "ID, a mobile number, an e-mail address or a shop's name.")), 200
    if len(raw) > MAX_QUERY:
        return render_template("backoffice/search.html", q="", hits=[], message=gettext(
            "That is too long to be a number or a name: at most %(n)d characters.",
            n=MAX_QUERY)), 400
    token = token_in(raw)
    if token is not None:
        opened = open_token(token)
        if opened is None:
            return render_template("backoffice/search.html", q=raw, hits=[], message=gettext(
                "This barcode is not a valid Barid reference.")), 404
        return redirect(opened.staff_url)
    hits = find(raw, current_user)
    if len(hits) == 1:
        return redirect(hits[0].url)
    message = None if hits else gettext("Nothing found for “%(q)s”.", q=raw.strip())
    return render_template("backoffice/search.html", q=raw, hits=hits, message=message)


def init_app(app: Flask) -> None:
    """Give back-office templates their navigation (the blueprint is registered by
    app.auth_setup, after the auth pages have added their routes to it)."""

    @app.context_processor
    def _backoffice_context() -> dict:
        return {"backoffice_nav": nav_groups}
