"""The supervisor's dashboard: figures that the domains register, for the offices a
person may see.

`app` knows nothing of parcels or payments: tracking and payments each register a
provider with `register_figures(provider)`. A provider is handed a `Scope` (which
offices, which days) and returns `Figure`s: numbers already aggregated in SQL, each with
a link to the back-office list behind it. The back-office index draws them with
app.charts.

Who sees what: a supervisor sees the office they are attached to; an admin sees the
whole post (`Scope.office_ids` is None). Other staff see no figures (see app.backoffice).

The SQL helpers here (`baghdad_day`, `epoch_seconds`) let a provider group by the day in
Baghdad and average times on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, false, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import Float

from app.auth.models import Role
from app.errors import Forbidden, ValidationFailed
from app.i18n import BAGHDAD
from app.numbers import MAX_BIGINT, ascii_digits

# How many days the charts cover, today included.
DAYS = 30


# -- SQL that differs between SQLite and PostgreSQL ------------------------------------------


class baghdad_day(FunctionElement[str]):  # noqa: N801 (reads as SQL)
    """The calendar day in Baghdad of a stored UTC time, as 'YYYY-MM-DD' text."""

    type = String()
    inherit_cache = True


@compiles(baghdad_day)
def _baghdad_day_sqlite(element: baghdad_day, compiler: Any, **kw: Any) -> str:
    # SQLite keeps naive UTC text. Iraq keeps UTC+3 all year (no daylight saving
    # since 2008), so a fixed shift is the day in Baghdad.
    (arg,) = element.clauses
    return f"date({compiler.process(arg, **kw)}, '+3 hours')"


@compiles(baghdad_day, "postgresql")
def _baghdad_day_pg(element: baghdad_day, compiler: Any, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"to_char(({compiler.process(arg, **kw)}) AT TIME ZONE 'Asia/Baghdad', 'YYYY-MM-DD')"


class epoch_seconds(FunctionElement[float]):  # noqa: N801 (reads as SQL)
    """Seconds since 1970 of a stored UTC time (to average durations in SQL)."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"CAST(strftime('%s', {compiler.process(arg, **kw)}) AS REAL)"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"EXTRACT(EPOCH FROM {compiler.process(arg, **kw)})"


# -- who sees which offices, over which days -------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The offices and days a dashboard covers.

    `office_ids` None: the whole post (an admin). An empty set: no office at all (a
    supervisor not attached to one sees zeros, never someone else's figures).
    """

    office_ids: frozenset[int] | None
    today: date
    now: datetime
    days: int = DAYS

    @classmethod
    def for_user(cls, user: Any, now: datetime | None = None) -> Scope:
        """An admin's scope is the whole post; anyone else's is their own office."""
        now = now or datetime.now(UTC)
        today = now.astimezone(BAGHDAD).date()
        if user.has_role(Role.ADMIN):
            return cls(None, today, now)
        office = user.post_office_id
        return cls(frozenset() if office is None else frozenset({office}), today, now)

    @property
    def whole_post(self) -> bool:
        return self.office_ids is None

    @property
    def day_list(self) -> list[date]:
        """The covered days, oldest first, today last."""
        return [self.today - timedelta(days=n) for n in range(self.days - 1, -1, -1)]

    @property
    def start(self) -> datetime:
        """Midnight in Baghdad of the first covered day (aware)."""
        return datetime.combine(self.day_list[0], time(), BAGHDAD)

    @property
    def today_start(self) -> datetime:
        return datetime.combine(self.today, time(), BAGHDAD)

    def covers(self, column: Any) -> ColumnElement[bool]:
        """A WHERE clause: `column` (an office id) is one of the scope's offices."""
        if self.office_ids is None:
            return true()
        if not self.office_ids:
            return false()
        return column.in_(sorted(self.office_ids))

    def link_args(self) -> dict[str, Any]:
        """The `office=` filter to put on a list link (none for the whole post)."""
        if self.office_ids is not None and len(self.office_ids) == 1:
            return {"office": next(iter(self.office_ids))}
        return {}


# -- what a provider returns --------------------------------------------------------------


@dataclass
class Bar:
    """One labelled number of a horizontal bar chart, and the list behind it."""

    label: str
    value: int
    shown: str  # the value as people read it ("12,500 د.ع.", "3")
    url: str | None = None


@dataclass
class DaySeries:
    """One line of per-day numbers (aligned with `Figure.days`)."""

    label: str
    values: list[int]
    shown: list[str]
    urls: list[str | None] = field(default_factory=list)


@dataclass
class Figure:
    """A chart of the dashboard.

    kind "days": `series` over `days` (columns per day); kind "bars": `bars`.
    `headline` pairs (label, shown value) are printed above the chart (today's count,
    an average); `url` is the list behind the whole figure.
    """

    key: str
    title: str
    description: str
    kind: str
    order: int = 100
    days: list[date] = field(default_factory=list)
    day_labels: list[str] = field(default_factory=list)
    series: list[DaySeries] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)
    url: str | None = None
    empty_text: str = ""


FigureProvider = Callable[[Scope], Iterable[Figure]]
_providers: list[FigureProvider] = []

# The roles that see figures on the back-office index: supervisors their office, admins
# the whole post. Clerks and officers keep the page of links (their work is in lists).
FIGURE_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


def register_figures(provider: FigureProvider) -> None:
    """Let the dashboard show a domain's figures: `provider(scope)` returns Figures
    aggregated for `scope` (reads only)."""
    if provider not in _providers:
        _providers.append(provider)


def sees_figures(user: Any) -> bool:
    return bool(user.roles & FIGURE_ROLES)


def figures(scope: Scope) -> list[Figure]:
    """Every registered provider's figures for `scope`, in display order. Reads only."""
    out: list[Figure] = []
    for provider in _providers:
        out.extend(provider(scope))
    return sorted(out, key=lambda f: f.order)


def day_label(day: date) -> str:
    """A day on a chart's axis: day/month, digits as everywhere else ("7/11")."""
    return f"{day.day}/{day.month}"


def per_day(scope: Scope, counts: dict[date, int], label: str,
            shown: Callable[[int], str], url: Callable[[date], str | None]) -> DaySeries:
    """A DaySeries over the scope's days from {day: value} (missing days are zero)."""
    values = [counts.get(d, 0) for d in scope.day_list]
    return DaySeries(label, values, [shown(v) for v in values],
                     [url(d) for d in scope.day_list])


# -- the filters of the lists behind the figures ------------------------------------------


def office_filter(user: Any, raw: str | None, *, own_by_default: bool = False) -> int | None:
    """The office a back-office list is narrowed to from its `?office=` argument.

    An admin may name any office (or none: the whole post). Anyone else may name only
    their own; naming another raises Forbidden. `own_by_default`: a list that is new with
    the dashboard shows a non-admin their own office even when none is named.
    """
    text = ascii_digits(raw or "").strip()
    office: int | None = None
    if text:
        if not text.isdigit() or int(text) > MAX_BIGINT:
            raise ValidationFailed(_l("The office must be given by its number."))
        office = int(text)
    if user.has_role(Role.ADMIN):
        return office
    if office is not None and office != user.post_office_id:
        raise Forbidden(_l("You see the figures of your own office only."))
    if office is None and own_by_default:
        # Not attached to an office: 0 matches nothing rather than everything.
        return user.post_office_id or 0
    return office


def day_filter(raw: str | None) -> date | None:
    """A `?date=YYYY-MM-DD` argument (Arabic-Indic digits too), or None when absent;
    raises ValidationFailed for anything else."""
    text = ascii_digits(raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(_l("Give the day as year-month-day, e.g. 2026-03-05.")) from None
