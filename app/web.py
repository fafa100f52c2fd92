"""The public front: the home page, the language switch, and what every page's layout
needs to know (which links exist, whether the visitor works for the post)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import current_user
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response

from app.auth.models import BACKOFFICE_ROLES
from app.database import unit_of_work
from app.i18n import set_user_locale
from app.numbers import MAX_BIGINT

bp = Blueprint("web", __name__)


class IdConverter(IntegerConverter):
    """`<int:...>` for every route: a number beyond what a BIGINT id can be matches no
    route (404), instead of reaching PostgreSQL, which refuses the bind (a 500)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_BIGINT)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    """Replace the `int` URL converter; call before any route is added (a rule keeps the
    converter it was compiled with)."""
    app.url_map.converters["int"] = IdConverter


def has_endpoint(name: str) -> bool:
    """Whether a route called `name` is registered (domains and auth plug in later)."""
    return name in current_app.view_functions


def endpoint_methods(name: str) -> frozenset[str]:
    """HTTP methods the route `name` accepts (a POST-only logout needs a form)."""
    methods: set[str] = set()
    if has_endpoint(name):
        for rule in current_app.url_map.iter_rules(name):
            methods |= rule.methods or set()
    return frozenset(methods)


def link_to(*names: str, **values: Any) -> str | None:
    """URL of the first of `names` that exists, or None: for links to other domains'
    pages, so the layout renders whatever has been installed."""
    for name in names:
        if has_endpoint(name):
            return url_for(name, **values)
    return None


def _current_user():
    if not hasattr(current_app, "login_manager"):
        return None
    return current_user if getattr(current_user, "is_authenticated", False) else None


def is_staff() -> bool:
    """The visitor works for the post (any back-office role)."""
    user = _current_user()
    return bool(user is not None and user.roles & BACKOFFICE_ROLES)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: never bounce a visitor to
    another site from our own link (an open redirect helps phishing)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.get("/")
def home() -> str:
    return render_template("web/home.html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on their own; pages name the brand icons."""
    return send_from_directory(Path(current_app.static_folder or "") / "brand", "favicon.ico",
                               mimetype="image/vnd.microsoft.icon", max_age=7 * 24 * 3600)


@bp.route("/lang/<code>", methods=["GET", "POST"])
def set_language(code: str) -> Response:
    """Switch the site's language and go back where the visitor was.

    The choice is kept in the session, and on the account when someone is logged in so
    it follows them to another device.
    """
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    # Read the request before changing anything: an oversized or broken body stops here.
    target = safe_next(request.values.get("next")) or url_for("web.home")
    session["lang"] = code
    user = _current_user()
    if user is not None:
        with unit_of_work():
            set_user_locale(user.id, code)
    return redirect(target)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_global(has_endpoint, "has_endpoint")
    app.add_template_global(link_to, "link_to")
    app.add_template_global(endpoint_methods, "endpoint_methods")
    app.add_template_global(is_staff, "is_staff")
