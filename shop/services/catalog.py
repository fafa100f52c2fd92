"""The catalog as shoppers see it (browse, search, one product) and as merchants keep it
(create and change products, categories), and the one place stock changes.

Shoppers only ever see active products of active merchants: every read goes through
`_visible()`. Stock is changed only by `take_stock`, `give_back_stock` and `set_stock`,
each one SQL statement per product (see the section below).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import Select, Update, func, or_, select, update
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from app.database import db
from app.errors import NotFound, ValidationFailed
from shop.models import Category, Merchant, MerchantStatus, Product
from shop.schemas import ProductSchema
from shop.search import match_all, query_words, title_rank

PER_PAGE = 24
MAX_PAGE = 1000
# Counting stops here: "more than 1,000" helps a shopper as much as "6,552", and a
# common word then costs one short scan instead of a count of every match.
MAX_COUNTED = 1000
PRODUCT_NOT_FOUND = _l("This product is not available.")


@dataclass(frozen=True)
class CatalogPage:
    """One page of products and what a pager needs."""

    items: list[Product]
    total: int
    page: int
    per_page: int
    # True when there are more than `total` (= MAX_COUNTED) matches.
    more: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _visible() -> Select[Product]:
    return (
        select(Product)
        .join(Product.merchant)
        .options(contains_eager(Product.merchant))
        .where(Product.active.is_(True), Merchant.status == MerchantStatus.ACTIVE)
    )


def _page_number(page: int | None) -> int:
    return min(max(page or 1, 1), MAX_PAGE)


def _paginate(stmt: Select[Product], page: int | None, per_page: int,
              order_by: list[Any]) -> CatalogPage:
    page = _page_number(page)
    counted = db.scalar(
        select(func.count()).select_from(
            stmt.order_by(None).limit(MAX_COUNTED + 1).subquery())
    ) or 0
    items = list(
        db.scalars(stmt.order_by(*order_by).limit(per_page).offset((page - 1) * per_page))
        .unique()
    )
    return CatalogPage(items=items, total=min(counted, MAX_COUNTED), page=page,
                       per_page=per_page, more=counted > MAX_COUNTED)


def _newest_first() -> list[Any]:
    return [Product.created_at.desc(), Product.id.desc()]


def top_categories() -> list[Category]:
    """Top-level categories with their children, in shelf order."""
    return list(
        db.scalars(
            select(Category).where(Category.parent_id.is_(None))
            .order_by(Category.position, Category.id)
        )
    )


def category_by_slug(slug: str) -> Category:
    """The category called `slug`; raises NotFound."""
    category = db.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise NotFound(_l("There is no such category."))
    return category


def active_merchant_by_slug(slug: str) -> Merchant:
    """An active merchant by slug; raises NotFound for unknown, pending or suspended ones
    (a suspended shop's page disappears with its products)."""
    merchant = db.scalar(select(Merchant).where(Merchant.slug == slug))
    if merchant is None or not merchant.is_active:
        raise NotFound(_l("This shop is not available."))
    return merchant


def browse(*, category_id: int | None = None, merchant_id: int | None = None,
           page: int | None = 1, per_page: int = PER_PAGE) -> CatalogPage:
    """Visible products, newest first, optionally of one category (a top category
    includes its children's products) or one merchant."""
    stmt = _visible()
    if category_id is not None:
        children = select(Category.id).where(Category.parent_id == category_id)
        stmt = stmt.where(
            or_(Product.category_id == category_id, Product.category_id.in_(children))
        )
    if merchant_id is not None:
        stmt = stmt.where(Product.merchant_id == merchant_id)
    return _paginate(stmt, page, per_page, _newest_first())


def search(query: str | None, *, page: int | None = 1, per_page: int = PER_PAGE,
           merchant_id: int | None = None) -> CatalogPage:
    """Visible products whose normalised text holds every word of `query`.

    Arabic spelling variants and harakat are ignored (shop.search.normalise); products
    whose title holds the words come first, then shorter titles. An empty query finds
    nothing.
    """
    words = query_words(query)
    if not words:
        return CatalogPage(items=[], total=0, page=1, per_page=per_page)
    stmt, order = search_statement(words, merchant_id=merchant_id)
    return _paginate(stmt, page, per_page, order)


def search_statement(words: list[str], *, merchant_id: int | None = None
                     ) -> tuple[Select[Product], list[Any]]:
    """The SELECT behind `search` and its ORDER BY (kept apart so the plan can be
    inspected with EXPLAIN)."""
    stmt = _visible().where(match_all(Product.search_text, words))
    if merchant_id is not None:
        stmt = stmt.where(Product.merchant_id == merchant_id)
    order = [title_rank(Product.search_title, words), func.length(Product.search_title),
             Product.id]
    return stmt, order


def visible_product(product_id: int) -> Product:
    """A product a shopper may see and buy; raises NotFound when it is inactive, its
    merchant is not active, or it does not exist."""
    product = db.scalar(_visible().where(Product.id == product_id))
    if product is None:
        raise NotFound(PRODUCT_NOT_FOUND)
    return product


# -- merchants keep their catalog ------------------------------------------------------

def _load_product_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    try:
        return ProductSchema(partial=partial).load(data)
    except ValidationError as exc:
        raise ValidationFailed(
            _l("Some product details are not valid."),
            fields={k: [str(m) for m in (v if isinstance(v, list) else [v])]
                    for k, v in exc.messages.items()},  # type: ignore[union-attr]
        ) from exc


def _check_category(category_id: int) -> None:
    if db.get(Category, category_id) is None:
        raise ValidationFailed(
            _l("There is no such category."), fields={"category_id": ["unknown"]}
        )


def create_product(merchant_id: int, data: dict[str, Any]) -> Product:
    """Add a product to a merchant's catalog (validated by ProductSchema); flushes it, so
    it has its id (the caller's unit of work commits).

    Raises NotFound for an unknown merchant and ValidationFailed for bad fields.
    """
    if db.get(Merchant, merchant_id) is None:
        raise NotFound(_l("This shop is not available."))
    fields = _load_product_fields(data, partial=False)
    _check_category(fields["category_id"])
    product = Product(merchant_id=merchant_id, **fields)
    product.refresh_search()
    db.add(product)
    db.flush()
    return product


def update_product(merchant_id: int, product_id: int, data: dict[str, Any]) -> Product:
    """Change the given fields of one of the merchant's products and flush; the search
    text follows the new titles and descriptions.

    Raises NotFound when the product is not the merchant's, ValidationFailed for bad
    fields.
    """
    product = db.get(Product, product_id)
    if product is None or product.merchant_id != merchant_id:
        raise NotFound(PRODUCT_NOT_FOUND)
    fields = _load_product_fields(data, partial=True)
    if "category_id" in fields:
        _check_category(fields["category_id"])
    stock = fields.pop("stock", None)
    for name, value in fields.items():
        setattr(product, name, value)
    product.refresh_search()
    db.flush()
    if stock is not None:
        set_stock({product.id: stock})
    return product


def create_category(slug: str, name_ar: str, name_en: str, *,
                    parent_id: int | None = None, position: int = 0) -> Category:
    """Add a category (under `parent_id` if given) and flush it, so it has its id.

    Raises ValidationFailed when the parent is itself a child: the tree is two levels.
    """
    if parent_id is not None:
        parent = db.get(Category, parent_id)
        if parent is None or parent.parent_id is not None:
            raise ValidationFailed(
                _l("A category can only sit under a top-level category."),
                fields={"parent_id": ["not_top_level"]},
            )
    category = Category(slug=slug, name_ar=name_ar, name_en=name_en,
                        parent_id=parent_id, position=position)
    db.add(category)
    db.flush()
    return category


# -- stock ---------------------------------------------------------------------------------
# Stock is arithmetic done by the database on the row as it is now, never a number worked
# out in Python from a row read a moment ago: two checkouts may both have read "1 left",
# but only one `stock = stock - 1 WHERE stock >= 1` matches a row. That holds on
# PostgreSQL (the second UPDATE waits for the first and re-checks its WHERE on the new
# row) and on SQLite (one writer at a time), with or without an earlier SELECT ... FOR
# UPDATE. Products are changed in id order: stock rows are the first locks a use case
# takes (ARCHITECTURE.md mechanism 7), and id order keeps two carts from deadlocking.


def _write_stock(stmt: Update) -> dict[int, int]:
    """Run one stock UPDATE; returns {product id: stock now} for the rows it changed and
    brings a product already loaded in the session up to date (without marking it
    changed, so no later flush writes an old number back)."""
    rows = db.execute(stmt.returning(Product.id, Product.stock),
                      execution_options={"synchronize_session": False}).all()
    for product_id, stock in rows:
        loaded = db.identity_map.get(db.identity_key(Product, product_id))
        if loaded is not None:
            set_committed_value(loaded, "stock", stock)
    return {product_id: stock for product_id, stock in rows}


def take_stock(wanted: Mapping[int, int]) -> list[int]:
    """Take `wanted` (product id -> units, each above zero) out of stock, product by
    product in id order, each with one conditional UPDATE (`stock = stock - n WHERE
    stock >= n`).

    Returns the ids of the products that had fewer units left than wanted (or are gone):
    nothing was taken from those, but the others' units were taken, so a caller that gets
    any id back raises and lets its unit of work (or savepoint) undo the rest. Flushes.
    """
    short: list[int] = []
    for product_id in sorted(wanted):
        n = wanted[product_id]
        if n <= 0:
            raise ValueError(f"take_stock: {n} units of product {product_id}")
        if not _write_stock(update(Product).where(Product.id == product_id,
                                                  Product.stock >= n)
                            .values(stock=Product.stock - n)):
            short.append(product_id)
    return short


def give_back_stock(wanted: Mapping[int, int]) -> None:
    """Put `wanted` (product id -> units) back in stock (an order cancelled, expired or
    refused), each with one UPDATE (`stock = stock + n`), in product id order. A product
    deleted since is skipped. Flushes."""
    for product_id in sorted(wanted):
        n = wanted[product_id]
        if n > 0:
            _write_stock(update(Product).where(Product.id == product_id)
                         .values(stock=Product.stock + n))


def set_stock(levels: Mapping[int, int]) -> None:
    """Set the stock of products to counts the merchant gives (product id -> units, zero
    or more), in product id order, each with one UPDATE whatever the session had loaded.
    Flushes."""
    for product_id in sorted(levels):
        n = levels[product_id]
        if n < 0:
            raise ValueError(f"set_stock: {n} units of product {product_id}")
        _write_stock(update(Product).where(Product.id == product_id).values(stock=n))
