"""Reports for the whole post or one office, daily or monthly, as PDF or CSV, run as jobs.

The platform knows no domain: each domain registers a *figures provider* with
`register_figures` (parcels from tracking; revenue, customs, float and payables from
payments). A provider answers, for one office (or None: the whole post) and one period
[start, end) in UTC, its figures, read straight from its own tables (the ledger, the
parcel events), so a report always agrees with them.

A report is a `ReportRun` row created by the view. Its job, `run_report_step(run_id,
step)`, computes a slice of the periods in the runner's transaction, records the
progress, and stages the next step; the last step renders the file into the row. Each
step commits, so the page that polls the run sees the progress on any database, and a
step delivered twice does nothing the second time (the run's `step` has moved on).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.audit import record_audit
from app.database import Base, db, utcnow
from app.errors import ValidationFailed
from app.events import enqueue_after_commit
from app.i18n import BAGHDAD

# -- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One number of a report. `unit` is "count" or a currency code (the value then in
    that currency's minor units); a "flow" adds up over periods, a "balance" is as of
    the period's end (the total of a range is the last period's)."""

    key: str
    label_ar: str
    label_en: str
    value: int
    unit: str = "count"
    nature: str = "flow"

    def label(self, locale: str) -> str:
        return self.label_ar if locale == "ar" else self.label_en


FiguresProvider = Callable[[int | None, datetime, datetime], list[Figure]]
_providers: list[tuple[int, FiguresProvider]] = []


def register_figures(provider: FiguresProvider, *, order: int = 100) -> None:
    """Add a domain's figures to every report: `provider(office_id or None, start, end)`
    returns its Figures for the period [start, end) (UTC datetimes)."""
    if all(p is not provider for _, p in _providers):
        _providers.append((order, provider))
        _providers.sort(key=lambda item: item[0])


def figures_for(office_id: int | None, start: datetime, end: datetime) -> list[Figure]:
    """Every registered provider's figures for one office (None: whole post) and period."""
    out: list[Figure] = []
    for _, provider in _providers:
        out.extend(provider(office_id, start, end))
    return out


# -- the run -----------------------------------------------------------------------------


class ReportKind(enum.StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"


class ReportFormat(enum.StrEnum):
    PDF = "pdf"
    CSV = "csv"


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReportRun(Base):
    """One report asked for: what, for whom, how far along, and the file when done."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # daily | monthly
    office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)  # inclusive
    format: Mapped[str] = mapped_column(String(8))  # pdf | csv
    language: Mapped[str] = mapped_column(String(5))  # ar | en
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED)
    step: Mapped[int] = mapped_column(default=0)  # the next step the job may run
    progress: Mapped[int] = mapped_column(default=0)  # percent
    rows: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"periods": [...]}
    file: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    file_name: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    @property
    def whole_post(self) -> bool:
        return self.office_id is None

    @property
    def mimetype(self) -> str:
        return "application/pdf" if self.format == ReportFormat.PDF else "text/csv"


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), BAGHDAD)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), BAGHDAD)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def periods(kind: str, first: date, last: date) -> list[Period]:
    """The days, or the calendar months (clipped to the range), from `first` to `last`."""
    out: list[Period] = []
    day = first
    while day <= last:
        if kind == ReportKind.DAILY:
            end = day
        else:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = min(following - timedelta(days=1), last)
        out.append(Period(day, end))
        day = end + timedelta(days=1)
    return out


def max_days() -> int:
    return int(current_app.config.get("REPORTS_MAX_DAYS", 366))


def periods_per_step() -> int:
    return max(1, int(current_app.config.get("REPORTS_PERIODS_PER_STEP", 31)))


def check_range(kind: str, first: date | None, last: date | None, *, today: date) -> None:
    """Refuse a report that cannot be made: unknown kind, missing or reversed dates, a
    day still to come, or a range longer than REPORTS_MAX_DAYS. Raises ValidationFailed."""
    if kind not in set(ReportKind):
        raise ValidationFailed(_l("Choose a daily or a monthly report."))
    if first is None or last is None:
        raise ValidationFailed(_l("Give the first and the last day of the report."))
    if last < first:
        raise ValidationFailed(_l("The last day comes before the first day."))
    if last > today:
        raise ValidationFailed(_l("A report cannot cover days still to come."))
    days = (last - first).days + 1
    if days > max_days():
        raise ValidationFailed(_l(
            "A report covers at most %(max)s days; this range has %(n)s days. Ask for a "
            "shorter range, for example one year at a time.", max=max_days(), n=days))


def request_report(*, kind: str, office_id: int | None, first: date | None,
                   last: date | None, fmt: str, language: str, requested_by: int,
                   today: date) -> ReportRun:
    """Record a report run and stage its first step. Flushes; audited. Raises
    ValidationFailed for a range that cannot be made or an unknown format/language."""
    check_range(kind, first, last, today=today)
    assert first is not None and last is not None
    if fmt not in set(ReportFormat):
        raise ValidationFailed(_l("Choose PDF or CSV."))
    if language not in ("ar", "en"):
        raise ValidationFailed(_l("Choose Arabic or English."))
    run = ReportRun(kind=kind, office_id=office_id, first_day=first, last_day=last,
                    format=fmt, language=language, requested_by_id=requested_by,
                    state=RunState.QUEUED, step=0, progress=0, rows={"periods": []})
    db.add(run)
    db.flush()
    enqueue_after_commit(RUN_STEP_JOB, queue="low", run_id=run.id, step=0)
    record_audit("report.requested", object_type="report_run", object_id=run.id,
                 actor_id=requested_by, details={"after": {
                     "kind": kind, "office_id": office_id, "first": first.isoformat(),
                     "last": last.isoformat(), "format": fmt, "language": language}})
    return run


RUN_STEP_JOB = "app.reports:run_report_step"


def run_report_step(run_id: int, step: int) -> None:
    """Job: compute the next slice of periods of run `run_id`, record the progress, and
    stage the following step; the last step renders the file. Runs in the runner's unit
    of work. Does nothing when the run is gone, finished, or already past `step` (a
    second delivery). A provider or renderer that fails marks the run failed with the
    error (shown on its page) rather than retrying for ever."""
    run = db.scalar(select(ReportRun).where(ReportRun.id == run_id).with_for_update())
    if run is None or run.state in (RunState.DONE, RunState.FAILED) or run.step != step:
        return
    all_periods = periods(run.kind, run.first_day, run.last_day)
    done = list((run.rows or {}).get("periods", []))
    chunk = all_periods[len(done):len(done) + periods_per_step()]
    try:
        for p in chunk:
            done.append({"first": p.first.isoformat(), "last": p.last.isoformat(),
                         "figures": [_dump(f) for f in figures_for(run.office_id, p.start,
                                                                    p.end)]})
        run.rows = {"periods": done}
        run.step = step + 1
        if len(done) < len(all_periods):
            run.state = RunState.RUNNING
            run.progress = min(99, len(done) * 100 // len(all_periods))
            enqueue_after_commit(RUN_STEP_JOB, queue="low", run_id=run.id, step=step + 1)
            return
        from app.reports.render import render

        run.file, run.file_name = render(run)
    except Exception as exc:  # one report's failure is shown on its page, not retried
        current_app.logger.exception("report run %s failed", run_id)
        run.state = RunState.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = utcnow()
        return
    run.state = RunState.DONE
    run.progress = 100
    run.finished_at = utcnow()


def _dump(f: Figure) -> list[Any]:
    return [f.key, f.label_ar, f.label_en, f.value, f.unit, f.nature]


def load_figures(rows: list[list[Any]]) -> list[Figure]:
    return [Figure(*row) for row in rows]


def totals(run: ReportRun) -> list[Figure]:
    """The range's totals: flows added up over the periods, balances as of the end."""
    order: list[str] = []
    by_key: dict[str, Figure] = {}
    for period in (run.rows or {}).get("periods", []):
        for f in load_figures(period["figures"]):
            if f.key not in by_key:
                order.append(f.key)
                by_key[f.key] = f
            elif f.nature == "flow":
                prev = by_key[f.key]
                by_key[f.key] = Figure(f.key, f.label_ar, f.label_en, prev.value + f.value,
                                       f.unit, f.nature)
            else:
                by_key[f.key] = f
    return [by_key[k] for k in order]


def get_run(run_id: int) -> ReportRun | None:
    return db.get(ReportRun, run_id)


def runs_for(user_id: int, limit: int = 20) -> list[ReportRun]:
    """The latest runs `user_id` asked for, newest first."""
    return list(db.scalars(select(ReportRun).where(ReportRun.requested_by_id == user_id)
                           .order_by(ReportRun.id.desc()).limit(limit)))
