"""Back-office lists: filters from the query string, keyset pages, and CSV export.

One mechanism for every list the back office shows (audit log, parcels, cards, merchants,
...). A view names its filters and its order key once, as a `Listing`, and gets:

- `listing.parse(args)`: the filter values, typed (text, whole number, choice, Baghdad
  date); anything malformed raises `BadListQuery` (400 with a message, never a 500);
- `listing.page(stmt, values, args)`: one page in the listing's order, with an opaque
  signed cursor to the next one. The order key must be unique (it always ends in the row
  id), so a row inserted between two page loads never repeats or hides another row;
- `listing.csv(stmt, values, columns, name)`: every row of the same filtered query, read in
  keyset batches and streamed, as UTF-8 with a BOM (Excel opens Arabic right) and every
  cell that a spreadsheet would run as a formula neutralised (OWASP "CSV Injection").

The cursor is signed with the app's secret (salted per list), so a guessed or edited
cursor is refused rather than turned into SQL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, stream_with_context, url_for
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, and_, or_
from sqlalchemy.sql.elements import ColumnElement

from app.database import db
from app.errors import DomainError
from app.numbers import MAX_BIGINT, ascii_digits

BAGHDAD = ZoneInfo("Asia/Baghdad")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
CSV_BATCH = 500
MAX_TEXT = 200
MIN_YEAR, MAX_YEAR = 1900, 2999
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV
# Injection, ASVS 1.2.10): = + - @ tab CR, and LF and NUL too; the full-width forms are
# folded to the plain ones by some spreadsheets, so they count as well.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "＝", "＋", "－", "＠")

# Reserved query-string names: a filter may not use them.
CURSOR_ARG = "after"
SIZE_ARG = "per_page"


class BadListQuery(DomainError):
    """A filter value, page size or cursor in the URL that cannot be read.

    Its message is formatted at once (gettext, a plain str), never lazily: Flask-Babel's
    lazy strings are trusted as HTML by Jinja, and these messages repeat what was typed.
    """

    code = "bad_list_query"
    http_status = 400


def neutralise(value: Any) -> str:
    """`value` as a CSV cell that a spreadsheet shows as text and never runs.

    A cell that begins like a formula gets a leading apostrophe (the spreadsheet's own
    "this is text" mark). Numbers and dates are ours, not typed by anyone, and are left
    as they are so the spreadsheet can add them up.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float) or (
            hasattr(value, "is_finite") and not isinstance(value, str)):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


# ---- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One filter of a list: its query-string name, its label, how to read it, and what it
    does to the query.

    `kind` is "text", "int", "date_from", "date_to" or "choice". A date filter reads
    YYYY-MM-DD as a day in Baghdad; `date_from` keeps rows from that day's start, `date_to`
    through that day's end. `choices` (for "choice") returns (value, label) pairs, read
    when the form is drawn, so labels follow the page's language.
    """

    name: str
    label: Any
    kind: str = "text"
    apply: Callable[[Select[Any], Any], Select[Any]] | None = None
    column: Any = None
    choices: Callable[[], Sequence[tuple[str, Any]]] | None = None
    placeholder: Any = None
    dir: str = "auto"

    def read(self, raw: str) -> Any:
        """The typed value of `raw` (stripped, not empty); raises BadListQuery."""
        if self.kind == "text":
            if len(raw) > MAX_TEXT:
                raise BadListQuery(_("“%(field)s” is too long (at most %(n)s characters).",
                                      field=self.label, n=MAX_TEXT))
            return raw
        if self.kind == "int":
            # "#12", "P-00000012": the number people copy from a page, with its prefix.
            digits = re.sub(r"^(#|[A-Za-z]{1,3}-)", "", ascii_digits(raw))
            if not digits.isdigit() or not 0 < int(digits) <= MAX_BIGINT:
                raise BadListQuery(_("“%(field)s” must be a whole number.",
                                      field=self.label))
            return int(digits)
        if self.kind in ("date_from", "date_to"):
            try:
                day = date.fromisoformat(ascii_digits(raw))
            except ValueError:
                day = None
            # Years far off are typing mistakes, and near date.min/max the day's bounds in
            # UTC would overflow (a 500).
            if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:
                raise BadListQuery(_("“%(field)s” must be a date like 2026-01-31.",
                                     field=self.label))
            start = datetime.combine(day, time.min, BAGHDAD)
            if self.kind == "date_to":
                start += timedelta(days=1)
            return start.astimezone(UTC)
        if self.kind == "choice":
            allowed = {str(v) for v, _label in (self.choices() if self.choices else ())}
            if raw not in allowed:
                raise BadListQuery(_("“%(field)s” has no choice “%(value)s”.",
                                      field=self.label, value=raw[:40]))
            return raw
        raise ValueError(f"unknown filter kind {self.kind!r}")

    def narrow(self, stmt: Select[Any], value: Any) -> Select[Any]:
        """`stmt` kept to the rows this filter's value allows."""
        if self.apply is not None:
            return self.apply(stmt, value)
        col = self.column
        if col is None:
            raise ValueError(f"filter {self.name!r} has neither apply nor column")
        if self.kind == "text":
            return stmt.where(col.contains(value, autoescape=True))
        if self.kind == "date_from":
            return stmt.where(col >= value)
        if self.kind == "date_to":
            return stmt.where(col < value)
        return stmt.where(col == value)


@dataclass
class Page:
    """One page of a list and where the next one starts."""

    rows: list[Any]
    next_cursor: str | None
    is_first: bool
    args: dict[str, str]
    listing: Listing
    per_page: str = ""

    def url(self, endpoint: str, **extra: Any) -> str:
        """The URL of `endpoint` with this page's filters (and `extra`)."""
        params: dict[str, Any] = {k: v for k, v in self.args.items() if v}
        if self.per_page:
            params[SIZE_ARG] = self.per_page
        params.update({k: v for k, v in extra.items() if v is not None})
        return url_for(endpoint, **params)


@dataclass
class Listing:
    """A back-office list: its filters, its order and its page size.

    `order` is the keyset: columns of the queried entity, the last one unique (the id),
    none nullable. Rows come in descending order of the tuple (ascending when not
    `newest_first`).
    """

    name: str
    order: Sequence[Any]
    filters: Sequence[Filter] = ()
    page_size: int = PAGE_SIZE
    # A work queue (customs, buy-for-me) reads oldest first; a log newest first.
    newest_first: bool = True
    _by_name: dict[str, Filter] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {f.name: f for f in self.filters}
        if CURSOR_ARG in self._by_name or SIZE_ARG in self._by_name:
            raise ValueError("a filter may not be called after or per_page")

    # -- reading the URL -------------------------------------------------------------------

    def raw_args(self, args: Mapping[str, str]) -> dict[str, str]:
        """The filter values as typed (stripped), for the form and the links."""
        return {f.name: (args.get(f.name) or "").strip() for f in self.filters}

    def parse(self, args: Mapping[str, str]) -> dict[str, Any]:
        """The typed value of every filter given in `args`; raises BadListQuery."""
        values: dict[str, Any] = {}
        for name, raw in self.raw_args(args).items():
            if raw:
                values[name] = self._by_name[name].read(raw)
        return values

    def filtered(self, stmt: Select[Any], values: Mapping[str, Any]) -> Select[Any]:
        """`stmt` narrowed by every filter value."""
        for name, value in values.items():
            stmt = self._by_name[name].narrow(stmt, value)
        return stmt

    def size(self, args: Mapping[str, str]) -> int:
        raw = (args.get(SIZE_ARG) or "").strip()
        if not raw:
            return self.page_size
        digits = ascii_digits(raw)
        if not digits.isdigit() or not 0 < int(digits) <= MAX_PAGE_SIZE:
            raise BadListQuery(_("A page shows between 1 and %(n)s rows.", n=MAX_PAGE_SIZE))
        return int(digits)

    # -- cursors -----------------------------------------------------------------------------

    def _signer(self) -> URLSafeSerializer:
        return URLSafeSerializer(current_app.config["SECRET_KEY"],
                                 salt=f"barid.listing.{self.name}")

    def cursor_for(self, row: Any) -> str:
        key = []
        for col in self.order:
            value = getattr(row, col.key)
            key.append(["t", value.isoformat()] if isinstance(value, datetime) else value)
        return self._signer().dumps(key)

    def read_cursor(self, raw: str) -> list[Any]:
        """The key a cursor carries; raises BadListQuery for anything not ours."""
        if len(raw) > 500:
            raise BadListQuery(_("This page link is not valid. Start from the first page."))
        try:
            key = self._signer().loads(raw)
        except BadData:
            raise BadListQuery(
                _("This page link is not valid. Start from the first page.")) from None
        if not isinstance(key, list) or len(key) != len(self.order):
            raise BadListQuery(_("This page link is not valid. Start from the first page."))
        out: list[Any] = []
        for item in key:
            if isinstance(item, list) and len(item) == 2 and item[0] == "t":
                try:
                    out.append(datetime.fromisoformat(item[1]))
                except (TypeError, ValueError):
                    raise BadListQuery(_(
                        "This page link is not valid. Start from the first page.")) from None
            else:
                out.append(item)
        return out

    def _after(self, key: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after `key` in the list's order (portable: no row values)."""
        clauses = []
        for i, col in enumerate(self.order):
            equal = [self.order[j] == key[j] for j in range(i)]
            clauses.append(and_(*equal, col < key[i] if self.newest_first else col > key[i]))
        return or_(*clauses)

    def ordered(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.order_by(None).order_by(
            *(c.desc() if self.newest_first else c.asc() for c in self.order))

    # -- pages and exports -------------------------------------------------------------------

    def page(self, stmt: Select[Any], values: Mapping[str, Any],
             args: Mapping[str, str]) -> Page:
        """The page of `stmt` (filtered by `values`) the URL asks for."""
        size = self.size(args)
        stmt = self.ordered(self.filtered(stmt, values))
        raw = (args.get(CURSOR_ARG) or "").strip()
        if raw:
            stmt = stmt.where(self._after(self.read_cursor(raw)))
        rows = list(db.scalars(stmt.limit(size + 1)).unique())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows=rows, next_cursor=self.cursor_for(rows[-1]) if more else None,
                    is_first=not raw, args=self.raw_args(args), listing=self,
                    per_page=str(size) if (args.get(SIZE_ARG) or "").strip() else "")

    def rows(self, stmt: Select[Any], values: Mapping[str, Any]) -> Iterator[Any]:
        """Every row of the filtered query in order, read in keyset batches."""
        base = self.ordered(self.filtered(stmt, values))
        key: list[Any] | None = None
        while True:
            batch_stmt = base if key is None else base.where(self._after(key))
            batch = list(db.scalars(batch_stmt.limit(CSV_BATCH)).unique())
            yield from batch
            if len(batch) < CSV_BATCH:
                return
            key = [getattr(batch[-1], c.key) for c in self.order]

    def csv(self, stmt: Select[Any], values: Mapping[str, Any],
            columns: Sequence[tuple[Any, Callable[[Any], Any]]], filename: str,
            prepare: Callable[[list[Any]], Any] | None = None) -> Response:
        """A streamed CSV download of every row of the filtered query.

        `columns` are (header, value of a row) pairs. `prepare`, if given, is called with
        each batch of rows before they are written (to load names for many rows at once).
        """
        headers = [str(h) for h, _fn in columns]
        rows = self.rows(stmt, values)

        def generate() -> Iterator[str]:
            buf = io.StringIO()
            out = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
            out.writerow([neutralise(h) for h in headers])
            yield "\ufeff" + buf.getvalue()
            batch: list[Any] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= CSV_BATCH:
                    yield _write(out, buf, batch, columns, prepare)
                    batch = []
            if batch:
                yield _write(out, buf, batch, columns, prepare)

        return Response(stream_with_context(generate()), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"},
                        content_type="text/csv; charset=utf-8")


def _write(out: Any, buf: io.StringIO, batch: list[Any],
           columns: Sequence[tuple[Any, Callable[[Any], Any]]],
           prepare: Callable[[list[Any]], Any] | None) -> str:
    if prepare is not None:
        prepare(batch)
    buf.seek(0)
    buf.truncate()
    for row in batch:
        out.writerow([neutralise(fn(row)) for _h, fn in columns])
    return buf.getvalue()


def choice_filter(name: str, label: Any, column: Any,
                  choices: Callable[[], Sequence[tuple[str, Any]]]) -> Filter:
    return Filter(name, label, "choice", column=column, choices=choices)
