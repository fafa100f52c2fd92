"""The shopper's catalog and cart pages, under /shop.

Each page that changes something opens the unit of work around the service it calls
and catches the service's refusal outside it, so nothing half-done is kept. The
address book, checkout, orders and buy-for-me pages are shop.order_views.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, user_logged_in
from werkzeug.wrappers import Response

from app.database import savepoint, unit_of_work
from app.i18n import current_locale
from app.web import safe_next
from shop.forms import AddToCartForm, CartLineForm, RemoveLineForm
from shop.pricing import rates_for
from shop.services import cart as carts
from shop.services import catalog
from shop.services.cart import CartOwner, CartRefused

log = logging.getLogger(__name__)
bp = Blueprint(
    "shop", __name__, url_prefix="/shop",
    static_folder="static", static_url_path="/static",
)


def cart_owner() -> CartOwner:
    user_id = current_user.id if current_user.is_authenticated else None
    return CartOwner(user_id=user_id, session=session)


def _page_arg() -> int:
    return request.args.get("page", default=1, type=int) or 1


def _listing(template: str, page: catalog.CatalogPage, **context: Any) -> str:
    rates = rates_for({p.merchant.currency for p in page.items})
    return render_template(template, page=page, rates=rates,
                           categories=catalog.top_categories(), **context)


@bp.app_context_processor
def _shop_context() -> dict[str, Any]:
    def shop_cart_count() -> int:
        try:
            return carts.cart_count(cart_owner())
        except RuntimeError:  # outside a request
            return 0

    return {"shop_cart_count": shop_cart_count}


@bp.get("/")
def index() -> str:
    page = catalog.browse(page=_page_arg())
    return _listing("shop/index.html", page)


@bp.get("/c/<slug>")
def category(slug: str) -> str:
    cat = catalog.category_by_slug(slug)
    page = catalog.browse(category_id=cat.id, page=_page_arg())
    return _listing("shop/listing.html", page, category=cat,
                    heading=cat.name(current_locale()))


@bp.get("/m/<slug>")
def merchant(slug: str) -> str:
    shop = catalog.active_merchant_by_slug(slug)
    page = catalog.browse(merchant_id=shop.id, page=_page_arg())
    return _listing("shop/listing.html", page, merchant=shop,
                    heading=shop.name(current_locale()))


# The search page's filter parameters, one value each.
SEARCH_FILTERS = ("category", "shop", "origin", "price", "stock")


def _search_filters() -> tuple[catalog.SearchFilters, dict[str, str]]:
    """The filters in the query string, and the parameters that were understood (a
    filter naming no category or shop, or an unknown value, is left out: the search is
    then simply not narrowed by it)."""
    args = {name: (request.args.get(name) or "").strip() for name in SEARCH_FILTERS}
    kept: dict[str, str] = {}
    category_id = merchant_id = None
    if args["category"]:
        found = catalog.category_or_none(args["category"])
        if found is not None:
            category_id, kept["category"] = found.id, found.slug
    if args["shop"]:
        shop = catalog.active_merchant_or_none(args["shop"])
        if shop is not None:
            merchant_id, kept["shop"] = shop.id, shop.slug
    if args["origin"] in catalog.ORIGINS:
        kept["origin"] = args["origin"]
    if args["price"] in catalog.PRICE_RANGE_KEYS:
        kept["price"] = args["price"]
    if args["stock"] == "1":
        kept["stock"] = "1"
    return catalog.SearchFilters(
        category_id=category_id, merchant_id=merchant_id, origin=kept.get("origin"),
        price=kept.get("price"), in_stock="stock" in kept), kept


@bp.get("/search")
def search() -> str:
    query = (request.args.get("q") or "").strip()
    filters, chosen = _search_filters()
    page = catalog.search(query, page=_page_arg(), filters=filters, with_facets=True)
    shown = query if len(query) <= catalog.MAX_QUERY_LENGTH else ""

    def filter_url(name: str | None = None, value: str | None = None, **extra: Any) -> str:
        """This search with filter `name` set to `value` (None: taken off), from page 1."""
        params = {k: v for k, v in chosen.items() if k != name}
        if name is not None and value is not None:
            params[name] = value
        return url_for("shop.search", q=shown, **params, **extra)

    return _listing("shop/search.html", page, query=shown, chosen=chosen,
                    filter_url=filter_url)


@bp.get("/p/<int:product_id>")
def product(product_id: int) -> str:
    item = catalog.visible_product(product_id)
    rates = rates_for({item.merchant.currency})
    return render_template("shop/product.html", product=item, rates=rates,
                           form=AddToCartForm(product_id=item.id, quantity=1))


def _back_to(default: str) -> str:
    return safe_next(request.form.get("next")) or default


def _form_error(form: Any) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return _("Please check what you entered.")


@bp.post("/cart/add")
def cart_add() -> Response:
    form = AddToCartForm()
    product_page = (url_for("shop.product", product_id=form.product_id.data)
                    if isinstance(form.product_id.data, int) else url_for("shop.index"))
    if not form.validate_on_submit():
        flash(_form_error(form), "error")
        return redirect(_back_to(product_page))
    try:
        with unit_of_work():
            carts.add_to_cart(cart_owner(), form.product_id.data, form.quantity.data)
    except CartRefused as exc:
        flash(str(exc.message), "error")
        return redirect(_back_to(product_page))
    flash(_("Added to your cart."), "success")
    return redirect(_back_to(product_page))


@bp.get("/cart")
def cart() -> str:
    summary = carts.cart_summary(cart_owner())
    return render_template("shop/cart.html", cart=summary, line_form=CartLineForm(),
                           remove_form=RemoveLineForm())


@bp.post("/cart/update")
def cart_update() -> Response:
    form = CartLineForm()
    if not form.validate_on_submit():
        flash(_form_error(form), "error")
        return redirect(url_for("shop.cart"))
    try:
        with unit_of_work():
            carts.change_quantity(cart_owner(), form.product_id.data, form.quantity.data)
    except CartRefused as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("Quantity updated."), "success")
    return redirect(url_for("shop.cart"))


@bp.post("/cart/remove")
def cart_remove() -> Response:
    form = RemoveLineForm()
    if form.validate_on_submit():
        with unit_of_work():
            carts.remove_from_cart(cart_owner(), form.product_id.data)
        flash(_("Removed from your cart."), "success")
    else:
        flash(_form_error(form), "error")
    return redirect(url_for("shop.cart"))


def _merge_cart_on_login(_sender: Flask, user: Any, **_extra: Any) -> None:
    # The anonymous visitor's cart follows them into their account. A failure here must
    # not stop the login: the session cart is then simply kept for the next try. The
    # merge is a step that may fail alone: its own unit of work when the login has none
    # open, and a savepoint either way, so a failed merge undoes only itself.
    if not session.get(carts.SESSION_KEY):
        return
    kept = list(session[carts.SESSION_KEY])
    try:
        with unit_of_work(), savepoint():
            carts.merge_session_cart(user.id, session)
    except Exception:
        log.exception("could not merge the session cart into user %s's cart", user.id)
        session[carts.SESSION_KEY] = kept


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    user_logged_in.connect(_merge_cart_on_login, app)
