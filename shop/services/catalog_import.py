"""A merchant's catalog as a CSV file: read it, show what would change, apply it.

One row per product, named by its `merchant_sku`: a new sku adds a product, a known
one changes the fields that differ, the same values change nothing (so applying the
same file twice changes nothing the second time). Prices and stock may be written with
Arabic-Indic digits. The file is checked whole before anything is written: a wrong
header is refused outright, and when any row is wrong (a bad price, an unknown
category...) every rejected row is listed with its reasons and nothing is applied.

Writing goes through the same services as the merchant API (merchant_api.create_product,
catalog.update_product and its set_stock), inside the caller's unit of work.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.database import db
from app.errors import ValidationFailed
from app.money import EXPONENT, to_minor
from app.numbers import MAX_PRICE, MAX_STOCK, parse_decimal, parse_whole
from shop.models import Category, Merchant, Product
from shop.services import catalog
from shop.services import merchant_api as svc

REQUIRED = ("merchant_sku", "title_ar", "title_en", "category", "price", "stock",
            "weight_g", "hs_code", "origin_country")
OPTIONAL = ("description_ar", "description_en", "active")
COLUMNS = REQUIRED + OPTIONAL
MAX_ROWS = 2000
MAX_BYTES = 2 * 1024 * 1024
_TRUE = {"1", "yes", "true", "نعم"}
_FALSE = {"0", "no", "false", "لا"}


class ImportRefused(ValidationFailed):
    """The file as a whole cannot be read (header, encoding, size): nothing applied."""

    code = "import_refused"


@dataclass
class RowPlan:
    """What one row of the file would do."""

    line: int
    sku: str
    action: str = "unchanged"  # create | update | unchanged | rejected
    product_id: int | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    rows: list[RowPlan]

    @property
    def rejected(self) -> list[RowPlan]:
        return [r for r in self.rows if r.errors]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.rejected

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)


def decode(data: bytes) -> str:
    """The file's text (UTF-8, with or without the BOM spreadsheets write); raises
    ImportRefused for another encoding or a file too large."""
    if len(data) > MAX_BYTES:
        raise ImportRefused(_l("The file is too large (at most 2 MB)."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(_l("Save the file as CSV in UTF-8 and try again.")) from exc


def _read(text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration as exc:
        raise ImportRefused(_l("The file is empty.")) from exc
    except csv.Error as exc:
        raise ImportRefused(_l("This is not a CSV file.")) from exc
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    if missing or unknown or len(set(names)) != len(names):
        raise ImportRefused(_l(
            "The first line must name the columns: %(required)s (and optionally "
            "%(optional)s). Missing: %(missing)s. Not known: %(unknown)s.",
            required=", ".join(REQUIRED), optional=", ".join(OPTIONAL),
            missing=", ".join(missing) or "-", unknown=", ".join(unknown) or "-"),
            fields={"file": ["header"]})
    rows = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportRefused(_l("At most %(n)s products per file.", n=MAX_ROWS))
            padded = cells + [""] * (len(names) - len(cells))
            rows.append((reader.line_num, {n: padded[i].strip() for i, n in enumerate(names)}
                         | ({"_extra": "1"} if len(cells) > len(names) else {})))
    except csv.Error as exc:
        raise ImportRefused(_l("This is not a CSV file.")) from exc
    if not rows:
        raise ImportRefused(_l("The file has no products."))
    return rows


def _price(raw: str, currency: str) -> int | None:
    number = parse_decimal(raw)
    if number is None or number <= 0:
        return None
    if number != number.quantize(Decimal(1).scaleb(-EXPONENT[currency])):
        return None  # more decimals than the currency has
    minor = to_minor(number, currency)
    return minor if 0 < minor <= MAX_PRICE else None


def _values(cells: dict[str, str], merchant: Merchant, categories: dict[str, int],
            errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("title_ar", "title_en"):
        if not cells[name] or len(cells[name]) > 300:
            errors.append(str(_l("%(column)s: write a title (at most 300 letters).",
                                 column=name)))
        out[name] = cells[name]
    for name in ("description_ar", "description_en"):
        if name in cells:
            out[name] = cells[name]
    slug = cells["category"].lower()
    if slug not in categories:
        errors.append(str(_l("category: there is no category \"%(slug)s\".",
                             slug=cells["category"])))
    else:
        out["category_id"] = categories[slug]
    price = _price(cells["price"], merchant.currency)
    if price is None:
        errors.append(str(_l("price: write the price above zero in %(currency)s, such "
                             "as 25000.", currency=merchant.currency)))
    out["price"] = price
    stock = parse_whole(cells["stock"])
    if stock is None or stock > MAX_STOCK:
        errors.append(str(_l("stock: write a whole number from 0 to %(max)s.",
                             max=f"{MAX_STOCK:,}")))
    out["stock"] = stock
    weight = parse_whole(cells["weight_g"])
    if weight is None or not 1 <= weight <= 100_000:
        errors.append(str(_l("weight_g: give the weight in grams.")))
    out["weight_g"] = weight
    hs = cells["hs_code"]
    if not (len(hs) == 6 and hs.isascii() and hs.isdigit()):
        hs_ascii = str(parse_whole(hs) or "")
        if len(hs_ascii) == 6 and len(hs) == 6:
            hs = hs_ascii
        else:
            errors.append(str(_l("hs_code: the HS code has six digits.")))
    out["hs_code"] = hs
    country = cells["origin_country"].upper()
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        errors.append(str(_l("origin_country: use a two-letter country code, e.g. IQ.")))
    out["origin_country"] = country
    if cells.get("active"):
        flag = cells["active"].lower()
        if flag in _TRUE:
            out["active"] = True
        elif flag in _FALSE:
            out["active"] = False
        else:
            errors.append(str(_l("active: write yes or no.")))
    return out


def plan(merchant_id: int, text: str) -> ImportPlan:
    """What applying the CSV `text` would do to the merchant's catalog, row by row, with
    every rejected row's reasons. Reads only. Raises ImportRefused for a file that
    cannot be read as a whole (header, size)."""
    merchant = db.get(Merchant, merchant_id)
    if merchant is None:
        raise ImportRefused(_l("This shop is not available."))
    rows = _read(text)
    categories = {slug.lower(): cid for cid, slug in db.execute(
        select(Category.id, Category.slug)).all()}
    skus = [cells["merchant_sku"] for _line, cells in rows]
    existing = {p.merchant_sku: p for p in db.scalars(
        select(Product).where(Product.merchant_id == merchant_id,
                              Product.merchant_sku.in_([s for s in skus if s])))}
    seen: set[str] = set()
    plans: list[RowPlan] = []
    for line, cells in rows:
        sku = cells["merchant_sku"]
        row = RowPlan(line=line, sku=sku)
        if cells.get("_extra"):
            row.errors.append(str(_l("The row has more cells than the header.")))
        if not sku or len(sku) > 64:
            row.errors.append(str(_l("merchant_sku: give each product its own code "
                                     "(at most 64 characters).")))
        elif sku in seen:
            row.errors.append(str(_l("merchant_sku: this code appears twice in the file.")))
        seen.add(sku)
        row.values = _values(cells, merchant, categories, row.errors)
        product = existing.get(sku)
        if row.errors:
            row.action = "rejected"
        elif product is None:
            row.action = "create"
        else:
            row.product_id = product.id
            row.changes = {k: (getattr(product, k), v) for k, v in row.values.items()
                           if getattr(product, k) != v}
            row.action = "update" if row.changes else "unchanged"
        plans.append(row)
    return ImportPlan(plans)


def apply(merchant_id: int, text: str) -> ImportPlan:
    """Apply the CSV `text` to the merchant's catalog: add new skus, change what differs,
    all in the caller's unit of work. Flushes. Raises ImportRefused for an unreadable
    file and ValidationFailed when any row is rejected (nothing is written: the plan is
    checked whole first)."""
    result = plan(merchant_id, text)
    if not result.ok:
        raise ValidationFailed(_l("%(n)s rows are not right: nothing was changed.",
                                  n=len(result.rejected)), fields={"file": ["rows"]})
    for row in result.rows:
        if row.action == "create":
            created = svc.create_product(merchant_id, {"merchant_sku": row.sku, **row.values})
            row.product_id = created.id
        elif row.action == "update":
            assert row.product_id is not None
            catalog.update_product(merchant_id, row.product_id,
                                   {k: new for k, (_old, new) in row.changes.items()})
    return result
