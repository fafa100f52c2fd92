"""The catalog as shoppers see it (browse, search, one product) and as merchants keep it
(create and change products, categories), and the one place stock changes.

Shoppers only ever see active products of active merchants: every read goes through
`_visible()`. Stock is changed only by `take_stock`, `give_back_stock` and `set_stock`,
each one SQL statement per product (see the section below).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Numeric,
    Select,
    Update,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from app.database import db
from app.errors import NotFound, ValidationFailed
from app.money import EXPONENT
from shop.models import (
    FOREIGN_CURRENCIES,
    HOME_COUNTRY,
    HOME_CURRENCY,
    Category,
    Merchant,
    MerchantStatus,
    Product,
)
from shop.pricing import rates_for
from shop.schemas import ProductSchema
from shop.search import MIN_INDEXED_LENGTH, match_all, query_words, title_rank, ts_matches, ts_query

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


def _capped_page(stmt: Select[Product], order_by: list[Any], page: int | None,
                 per_page: int) -> CatalogPage:
    """Like `_paginate`, in one round trip: the first MAX_COUNTED + 1 matches of `stmt`
    are taken (any of them: no order is asked for, so an index scan may stop early),
    counted and ordered by `order_by`, and the page's products come back with the
    count. Past MAX_COUNTED matches, the order applies to those taken only."""
    page = _page_number(page)
    # A descending key is taken as its value and sorted descending outside.
    keys = [(o.element, True) if isinstance(o, UnaryExpression)
            and o.modifier is operators.desc_op else (o, False) for o in order_by]
    hits = (stmt.with_only_columns(Product.id.label("id"),
                                   *(k.label(f"o{i}") for i, (k, _) in enumerate(keys)))
            .order_by(None).limit(MAX_COUNTED + 1).subquery("hits"))
    order = [hits.c[f"o{i}"].desc() if desc else hits.c[f"o{i}"]
             for i, (_, desc) in enumerate(keys)]
    best = (select(hits.c.id, func.count().over().label("counted"),
                   func.row_number().over(order_by=order).label("position"))
            .order_by(*order).limit(per_page).offset((page - 1) * per_page)
            .subquery("best"))
    rows = db.execute(
        _visible().add_columns(best.c.counted).join(best, best.c.id == Product.id)
        .order_by(best.c.position)
    ).unique().all()
    counted = rows[0].counted if rows else 0 if page == 1 else (
        db.scalar(select(func.count()).select_from(hits)) or 0)
    return CatalogPage(items=[row[0] for row in rows], total=min(counted, MAX_COUNTED),
                       page=page, per_page=per_page, more=counted > MAX_COUNTED)


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


def category_or_none(slug: str) -> Category | None:
    """The category called `slug`, or None."""
    return db.scalar(select(Category).where(Category.slug == slug))


def active_merchant_or_none(slug: str) -> Merchant | None:
    """An active merchant by slug, or None (unknown, pending or suspended)."""
    merchant = db.scalar(select(Merchant).where(Merchant.slug == slug))
    return merchant if merchant is not None and merchant.is_active else None


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


# -- search ------------------------------------------------------------------------------
MAX_QUERY_LENGTH = 200
QUERY_TOO_LONG = _l("Your search is too long: use at most %(n)s characters.",
                    n=MAX_QUERY_LENGTH)
QUERY_HAS_NO_WORDS = _l("Type a word or a number to search for.")
# A typo is forgiven when a query word shares this much of its trigrams with a stretch
# of the product's text (pg_trgm word similarity; its default, 0.6, misses "samsang").
TYPO_SIMILARITY = 0.5
ORIGINS = ("local", "foreign")
# Price ranges in dinars, a foreign price converted at the current stored rate:
# (key, from, up to but not including; None = no upper end).
PRICE_RANGES: list[tuple[str, int, int | None]] = [
    ("0-25000", 0, 25_000),
    ("25000-100000", 25_000, 100_000),
    ("100000-500000", 100_000, 500_000),
    ("500000-", 500_000, None),
]
PRICE_RANGE_KEYS = tuple(key for key, _, _ in PRICE_RANGES)


class MatchedBy(enum.StrEnum):
    """How a search found its products, from strictest to loosest: each is tried only
    when the one before it found nothing (SQLite has only LETTERS)."""

    WORDS = "words"  # full-text search: every word, as a word (PostgreSQL)
    LETTERS = "letters"  # every word somewhere in the text, even inside a longer word
    TYPO = "typo"  # every word nearly spelt so (trigram similarity, PostgreSQL)


@dataclass(frozen=True)
class SearchFilters:
    """What a shopper narrowed a search to; None (or False) leaves a facet open."""

    category_id: int | None = None
    merchant_id: int | None = None
    origin: str | None = None  # "local" (a shop in Iraq) or "foreign"
    price: str | None = None  # a key of PRICE_RANGES
    in_stock: bool = False


@dataclass(frozen=True)
class FacetValue:
    value: Any
    count: int


@dataclass(frozen=True)
class SearchFacets:
    """For each facet, its values and how many products each would show, given the
    query and the other facets' filters (so a count is what choosing it gives)."""

    categories: list[FacetValue]
    shops: list[FacetValue]
    origins: list[FacetValue]
    prices: list[FacetValue]
    in_stock: list[FacetValue]


@dataclass(frozen=True)
class SearchPage(CatalogPage):
    """A page of search results; `notice` says why a query was not searched."""

    matched_by: MatchedBy | None = None
    notice: str | None = None
    facets: SearchFacets | None = None


def _is_postgresql() -> bool:
    return db.get_bind().dialect.name == "postgresql"


def _price_iqd(rates: Mapping[str, Any]) -> ColumnElement[Any]:
    """The product's price in dinars, in SQL, at the current stored rates (NULL for a
    currency with no rate: such a product is in no price range)."""
    whens = [(Merchant.currency == HOME_CURRENCY, Product.price)]
    for currency, rate in sorted(rates.items()):
        if rate is not None:
            factor = Decimal(str(rate.value)).scaleb(-EXPONENT[currency])
            whens.append((Merchant.currency == currency,
                          Product.price * literal(factor, Numeric(24, 10))))
    return case(*whens, else_=None)


def _price_range(rates: Mapping[str, Any]) -> ColumnElement[Any]:
    price = _price_iqd(rates)
    return case(
        *[((price >= low) if high is None else and_(price >= low, price < high), key)
          for key, low, high in PRICE_RANGES],
        else_=None,
    )


def _local() -> ColumnElement[bool]:
    return Merchant.country == HOME_COUNTRY


def _filter_conditions(filters: SearchFilters, rates: Mapping[str, Any] | None
                       ) -> dict[str, ColumnElement[bool]]:
    conditions: dict[str, ColumnElement[bool]] = {}
    if filters.category_id is not None:
        conditions["category"] = Product.category_id == filters.category_id
    if filters.merchant_id is not None:
        conditions["shop"] = Product.merchant_id == filters.merchant_id
    if filters.origin in ORIGINS:
        conditions["origin"] = _local() if filters.origin == "local" else ~_local()
    if filters.price in PRICE_RANGE_KEYS and rates is not None:
        conditions["price"] = _price_range(rates) == filters.price
    if filters.in_stock:
        conditions["in_stock"] = Product.stock > 0
    return conditions


def _visible_rows(*columns: Any) -> Select[Any]:
    return (select(*columns).select_from(Product).join(Product.merchant)
            .where(Product.active.is_(True), Merchant.status == MerchantStatus.ACTIVE))


def _match(words: list[str], matched_by: MatchedBy) -> ColumnElement[bool]:
    if matched_by is MatchedBy.WORDS:
        return ts_matches(Product.search_vector, ts_query(words))
    if matched_by is MatchedBy.TYPO:
        return and_(*(Product.search_text.op("%>", return_type=Boolean)(w) for w in words))
    return match_all(Product.search_text, words)


def search(query: str | None, *, page: int | None = 1, per_page: int = PER_PAGE,
           merchant_id: int | None = None, filters: SearchFilters | None = None,
           with_facets: bool = False) -> SearchPage:
    """Visible products matching every word of `query`, best first, narrowed by
    `filters` (and `merchant_id`); with `with_facets`, the facet counts too.

    Words are compared in search form (shop.search: Arabic spelling variants, harakat,
    the article and clitics, plural and taa-marbuta endings ignored). On PostgreSQL,
    full-text search ranked by ts_rank (products named after the query first); when it
    finds nothing, the words inside longer words; then near spellings ranked by
    trigram similarity. On SQLite, the words inside the text, titles first.

    Changes nothing. A query longer than MAX_QUERY_LENGTH or without a letter or digit
    finds nothing and says why in `notice`; an empty query finds nothing.
    """
    filters = filters or SearchFilters()
    empty = SearchPage(items=[], total=0, page=1, per_page=per_page)
    if query and len(query) > MAX_QUERY_LENGTH:
        return replace(empty, notice=str(QUERY_TOO_LONG))
    words = query_words(query)
    if not words:
        return replace(empty, notice=str(QUERY_HAS_NO_WORDS)) if query and query.strip() \
            else empty
    rates = rates_for(FOREIGN_CURRENCIES) if with_facets or filters.price else None
    conditions = _filter_conditions(filters, rates)
    if merchant_id is not None:
        conditions["merchant"] = Product.merchant_id == merchant_id
    result: CatalogPage | None = None
    matched_by = MatchedBy.LETTERS
    if _is_postgresql():
        result = _ranked_words(words, list(conditions.values()), page, per_page)
        matched_by = MatchedBy.WORDS
    if result is None or result.total == 0:
        stmt, order = search_statement(words)
        stmt = stmt.where(*conditions.values())
        # PostgreSQL: one round trip, and only the first MAX_COUNTED + 1 matches are
        # ordered (a two-letter word has no index: sorting every match read the whole
        # table). SQLite keeps the plain count and page.
        result = (_capped_page(stmt, order, page, per_page) if _is_postgresql()
                  else _paginate(stmt, page, per_page, order))
        matched_by = MatchedBy.LETTERS
    if result.total == 0 and _is_postgresql() and (unknown := _unknown_words(words)):
        # Only the words no product has are taken as typos (the others must still
        # match as words): "قميص قطني ابيض" with no such shirt is no typo, and the
        # trigram search, the costly one, runs on few words.
        db.execute(select(func.set_config("pg_trgm.word_similarity_threshold",
                                          str(TYPO_SIMILARITY), True)))
        known = [w for w in words if w not in unknown]
        stmt = _visible().where(_match(unknown, MatchedBy.TYPO), *conditions.values())
        if known:
            stmt = stmt.where(_match(known, MatchedBy.WORDS))
        order = [func.similarity(Product.search_title, " ".join(words)).desc(), Product.id]
        typo = _capped_page(stmt, order, page, per_page)
        if typo.total:
            result, matched_by = typo, MatchedBy.TYPO
    facets = None
    if with_facets:
        facets = _facets(words, matched_by, filters, rates or {},
                         [c for k, c in conditions.items() if k == "merchant"])
    return SearchPage(items=result.items, total=result.total, page=result.page,
                      per_page=per_page, more=result.more, matched_by=matched_by,
                      facets=facets)


def _unknown_words(words: list[str]) -> list[str]:
    """The words of at least MIN_INDEXED_LENGTH letters that no product holds, neither
    as a word nor inside one (index lookups): candidates for a typo. A one-word query
    that found nothing needs no lookup."""
    candidates = [w for w in words if len(w) >= MIN_INDEXED_LENGTH]
    if len(words) == 1 or not candidates:
        return candidates
    # One round trip for every word: held as a word, or else inside one.
    held = db.execute(select(*(
        or_(select(Product.id).where(_match([w], MatchedBy.WORDS)).limit(1).exists(),
            select(Product.id).where(_match([w], MatchedBy.LETTERS)).limit(1).exists())
        for w in candidates))).one()
    return [w for w, found in zip(candidates, held, strict=True) if not found]


def ranked_words_statement(words: list[str], conditions: list[ColumnElement[bool]]
                           ) -> tuple[Select[Any], Any]:
    """The SELECT behind the full-text search (ids, best first, and how many were
    taken) and its capped set of hits, kept apart so the plan can be inspected."""
    query = ts_query(words)
    cap = MAX_COUNTED + 1
    in_title = ts_matches(Product.search_title_vector, query)
    # Products named after the query are ranked on their title's vector: a few words,
    # so ranking a thousand of them reads a tenth of what the whole text's vectors hold.
    named = (_visible_rows(Product.id.label("id"), literal(0).label("tier"),
                           func.ts_rank(Product.search_title_vector, query).label("rank"))
             .where(in_title, *conditions).limit(cap))
    mentioned = (_visible_rows(Product.id.label("id"), literal(1).label("tier"),
                               func.ts_rank(Product.search_vector, query).label("rank"))
                 .where(ts_matches(Product.search_vector, query), ~in_title, *conditions)
                 .limit(cap))
    both = union_all(named, mentioned).subquery("both_tiers")
    hits = select(both).limit(cap).subquery("hits")
    order = [hits.c.tier, hits.c.rank.desc(), hits.c.id]
    stmt = (select(hits.c.id, func.count().over().label("counted"),
                   func.row_number().over(order_by=order).label("position"))
            .order_by(*order))
    return stmt, hits


def _ranked_words(words: list[str], conditions: list[ColumnElement[bool]],
                  page: int | None, per_page: int) -> CatalogPage:
    """Full-text search on PostgreSQL: at most MAX_COUNTED + 1 matches are taken,
    products named after the query first (from the title index), then those that only
    mention it, and ranked among themselves by ts_rank (the named ones on their title's
    vector, the others on the whole text's). A common word thus costs one short index
    read and a thousand ranks of short vectors, not a rank of every product that has it."""
    page = _page_number(page)
    stmt, hits = ranked_words_statement(words, conditions)
    best = stmt.limit(per_page).offset((page - 1) * per_page).subquery("best")
    # The page's products come with the ranking, in one round trip.
    rows = db.execute(
        _visible().add_columns(best.c.counted).join(best, best.c.id == Product.id)
        .order_by(best.c.position)
    ).unique().all()
    # An empty first page means nothing matched; only a page past the end needs a count.
    counted = rows[0].counted if rows else 0 if page == 1 else (
        db.scalar(select(func.count()).select_from(hits)) or 0)
    return CatalogPage(items=[row[0] for row in rows], total=min(counted, MAX_COUNTED),
                       page=page, per_page=per_page, more=counted > MAX_COUNTED)


def _facets(words: list[str], matched_by: MatchedBy, filters: SearchFilters,
            rates: Mapping[str, Any], fixed: list[ColumnElement[bool]]) -> SearchFacets:
    """Facet counts in one grouped query over every match (not only the counted first
    thousand): the groups are (category, shop, local, price range, in stock), and each
    facet's counts add up the groups the other facets' filters let through."""
    price_range = _price_range(rates).label("price_range")
    local = _local().label("local")
    in_stock = (Product.stock > 0).label("in_stock")
    groups = db.execute(
        _visible_rows(Product.category_id, Product.merchant_id, local, price_range,
                      in_stock, func.count().label("n"))
        .where(_match(words, matched_by), *fixed)
        .group_by(Product.category_id, Product.merchant_id, local, price_range, in_stock)
    ).all()

    def passes(row: Any, facet: str) -> bool:
        return ((facet == "category" or filters.category_id in (None, row.category_id))
                and (facet == "shop" or filters.merchant_id in (None, row.merchant_id))
                and (facet == "origin" or filters.origin not in ORIGINS
                     or bool(row.local) == (filters.origin == "local"))
                and (facet == "price" or filters.price not in PRICE_RANGE_KEYS
                     or row.price_range == filters.price)
                and (facet == "in_stock" or not filters.in_stock or bool(row.in_stock)))

    def counts(facet: str, key: Callable[[Any], Any]) -> dict[Any, int]:
        totals: dict[Any, int] = {}
        for row in groups:
            if passes(row, facet) and key(row) is not None:
                totals[key(row)] = totals.get(key(row), 0) + row.n
        return totals

    by_category = counts("category", lambda r: r.category_id)
    by_shop = counts("shop", lambda r: r.merchant_id)
    by_origin = counts("origin", lambda r: "local" if r.local else "foreign")
    by_price = counts("price", lambda r: r.price_range)
    by_stock = counts("in_stock", lambda r: True if r.in_stock else None)
    categories = {c.id: c for c in db.scalars(
        select(Category).where(Category.id.in_(list(by_category))))} if by_category else {}
    shops = {m.id: m for m in db.scalars(
        select(Merchant).where(Merchant.id.in_(list(by_shop))))} if by_shop else {}
    return SearchFacets(
        categories=sorted((FacetValue(categories[i], n) for i, n in by_category.items()),
                          key=lambda v: (-v.count, v.value.id)),
        shops=sorted((FacetValue(shops[i], n) for i, n in by_shop.items()),
                     key=lambda v: (-v.count, v.value.id)),
        origins=[FacetValue(o, by_origin[o]) for o in ORIGINS if o in by_origin],
        prices=[FacetValue(k, by_price[k]) for k in PRICE_RANGE_KEYS if k in by_price],
        in_stock=[FacetValue(True, by_stock[True])] if True in by_stock else [],
    )


def search_statement(words: list[str], *, merchant_id: int | None = None
                     ) -> tuple[Select[Product], list[Any]]:
    """The LIKE search (SQLite, and PostgreSQL's second try) and its ORDER BY, kept
    apart so the plan can be inspected with EXPLAIN: every word inside the search text,
    titles holding the words first, then shorter titles."""
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
