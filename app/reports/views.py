"""The back-office reports pages: ask for a report, follow its progress, download it.

Supervisors report on their own office; administrators on any office or the whole post.
A run's page refreshes itself (a meta refresh, no script) until the file is ready; its
small JSON status is there for anything that would rather poll. Only the person who
asked, the supervisors of that office and administrators may see or download a run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.audit import record_audit
from app.auth.decorators import role_required
from app.auth.models import PostOffice, Role
from app.backoffice import nav_item
from app.database import db, unit_of_work, utcnow
from app.errors import DomainError, Forbidden, NotFound
from app.i18n import BAGHDAD, current_locale
from app.numbers import ascii_digits

from . import ReportRun, RunState, get_run, max_days, request_report, runs_for, totals
from .render import shown

bp = Blueprint("reports_bo", __name__, url_prefix="/backoffice/reports")

SUPERVISION = (Role.SUPERVISOR, Role.ADMIN)


def _today() -> date:
    return utcnow().astimezone(BAGHDAD).date()


def _day(name: str) -> date | None:
    raw = ascii_digits(request.form.get(name, "")).strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _refuse(action: str, object_id: Any, details: dict[str, Any]) -> None:
    """Audit a refusal in its own unit of work, then answer 403."""
    with unit_of_work():
        record_audit(action, object_type="report_run", object_id=object_id, details=details)
    raise Forbidden()


def may_see(run: ReportRun, user: Any) -> bool:
    """The requester, the supervisors of the run's office, and administrators."""
    if user.has_role(Role.ADMIN) or run.requested_by_id == user.id:
        return True
    return (run.office_id is not None and user.has_role(Role.SUPERVISOR)
            and user.post_office_id == run.office_id)


def _run_for_user(run_id: int) -> ReportRun:
    run = get_run(run_id)
    if run is None:
        raise NotFound()
    if not may_see(run, current_user):
        _refuse("report.forbidden", run_id, {"path": request.path[:300]})
    return run


def _offices() -> list[PostOffice]:
    return list(db.scalars(select(PostOffice).order_by(PostOffice.code)))


@bp.route("/", methods=["GET", "POST"])
@role_required(*SUPERVISION)
def index():
    is_admin = current_user.has_role(Role.ADMIN)
    error = None
    values = {"kind": "daily", "scope": "" if is_admin else str(current_user.post_office_id or ""),
              "first": _today().replace(day=1).isoformat(), "last": _today().isoformat(),
              "format": "pdf", "language": current_locale()}
    if request.method == "POST":
        values.update({k: request.form.get(k, "") for k in values})
        scope = values["scope"].strip()
        digits = scope.isascii() and scope.isdigit() and len(scope) < 10
        office_id: int | None = int(scope) if digits else None
        unknown = office_id is not None and db.get(PostOffice, office_id) is None
        if (scope and office_id is None) or unknown:
            error = _("Choose a post office from the list.")
        elif not is_admin and (office_id is None or office_id != current_user.post_office_id):
            # A supervisor reports on their own office only.
            _refuse("report.forbidden_scope", None, {"asked_office_id": office_id,
                                                     "own_office_id":
                                                         current_user.post_office_id})
        if error is None:
            try:
                with unit_of_work():
                    run = request_report(kind=values["kind"], office_id=office_id,
                                         first=_day("first"), last=_day("last"),
                                         fmt=values["format"], language=values["language"],
                                         requested_by=current_user.id, today=_today())
            except DomainError as exc:
                error = str(exc.message)
            else:
                return redirect(url_for(".run", run_id=run.id))
    offices = _offices() if is_admin else [o for o in _offices()
                                           if o.id == current_user.post_office_id]
    return render_template("backoffice/reports.html", values=values, error=error,
                           offices=offices, is_admin=is_admin, runs=runs_for(current_user.id),
                           max_days=max_days(), locale=current_locale()), 422 if error else 200


def _status(run: ReportRun) -> dict[str, Any]:
    return {"id": run.id, "state": run.state, "progress": run.progress,
            "error": run.error if run.state == RunState.FAILED else None,
            "download": url_for(".download", run_id=run.id)
            if run.state == RunState.DONE else None}


@bp.get("/runs/<int:run_id>")
@role_required(*SUPERVISION)
def run(run_id: int):
    r = _run_for_user(run_id)
    office = db.get(PostOffice, r.office_id) if r.office_id else None
    locale = current_locale()
    figures = [(f.label(locale), shown(f, locale)) for f in totals(r)] \
        if r.state == RunState.DONE else []
    return render_template("backoffice/report_run.html", run=r, office=office,
                           status=_status(r), figures=figures, locale=locale)


@bp.get("/runs/<int:run_id>/status")
@role_required(*SUPERVISION)
def status(run_id: int):
    response = jsonify(_status(_run_for_user(run_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/runs/<int:run_id>/download")
@role_required(*SUPERVISION)
def download(run_id: int):
    r = _run_for_user(run_id)
    if r.state != RunState.DONE or r.file is None:
        raise NotFound()
    return Response(r.file, mimetype=r.mimetype, headers={
        "Content-Disposition": f'attachment; filename="{r.file_name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav_item("reports_bo.index", "Reports", SUPERVISION, section="reports", order=10)
