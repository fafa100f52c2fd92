"""Back-office administration: people and their roles, post offices, the audit log.

The routes hang on the `backoffice` blueprint (URLs under /backoffice/admin); importing
this module adds them, so it is imported before the blueprint is registered.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from app.audit import AuditRecord
from app.auth import services
from app.auth.decorators import role_required
from app.auth.forms import (
    GrantRoleForm,
    PostOfficeForm,
    RevokeRoleForm,
    StaffUserForm,
    office_choices,
    role_choices,
    show_errors,
)
from app.auth.identifiers import format_phone
from app.auth.models import Role, User
from app.backoffice import bp, nav_item
from app.database import db, unit_of_work
from app.errors import DomainError
from app.geo import governorates
from app.i18n import current_locale
from app.numbers import MAX_PAGE

AUDIT_PAGE_SIZE = 50


def _staff_form() -> StaffUserForm:
    form = StaffUserForm()
    form.roles.choices = role_choices()
    form.post_office.choices = office_choices(services.post_offices(), blank=_("None"))
    return form


def _grant_form(user: User) -> GrantRoleForm:
    form = GrantRoleForm()
    form.role.choices = [c for c in role_choices() if c[0] not in user.roles]
    form.post_office.choices = office_choices(
        services.post_offices(), blank=_("Keep as it is")
    )
    return form


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_users():
    form = _staff_form()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = services.create_user(
                    form.full_name.data, email=form.email.data, phone=form.phone.data,
                    password=form.password.data, roles=form.roles.data or [],
                    post_office_code=form.post_office.data or None, actor_id=current_user.id,
                )
        except DomainError as exc:
            show_errors(form, exc, rename={"role": "roles"})
            status = exc.http_status
        else:
            flash(_("%(name)s can now log in.", name=user.full_name), "success")
            return redirect(url_for("backoffice.admin_user", user_id=user.id))
    elif form.is_submitted():
        status = 422
    query = request.args.get("q", "")
    return render_template("backoffice/admin_users.html", form=form, query=query,
                           users=services.find_users(query), format_phone=format_phone,
                           ), status


@bp.route("/admin/users/<int:user_id>", methods=["GET"])
@role_required(Role.ADMIN)
def admin_user(user_id: int):
    user = db.get(User, user_id)
    if user is None:
        abort(404)
    return render_template("backoffice/admin_user.html", person=user,
                           grant_form=_grant_form(user), revoke_form=RevokeRoleForm(),
                           format_phone=format_phone)


@bp.route("/admin/users/<int:user_id>/grant", methods=["POST"])
@role_required(Role.ADMIN)
def admin_user_grant(user_id: int):
    user = db.get(User, user_id)
    if user is None:
        abort(404)
    form = _grant_form(user)
    if form.validate_on_submit():
        try:
            with unit_of_work():
                services.grant_role(user_id, form.role.data, actor_id=current_user.id,
                                    post_office_code=form.post_office.data or None)
        except DomainError as exc:  # the unit of work has rolled back what was changed
            show_errors(form, exc)
            return render_template("backoffice/admin_user.html", person=db.get(User, user_id),
                                   grant_form=form, revoke_form=RevokeRoleForm(),
                                   format_phone=format_phone), exc.http_status
        flash(_("Role granted."), "success")
    return redirect(url_for("backoffice.admin_user", user_id=user_id))


@bp.route("/admin/users/<int:user_id>/revoke", methods=["POST"])
@role_required(Role.ADMIN)
def admin_user_revoke(user_id: int):
    form = RevokeRoleForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                services.revoke_role(user_id, form.role.data, actor_id=current_user.id)
        except DomainError as exc:
            flash(str(exc.message), "error")
        else:
            flash(_("Role removed."), "success")
    return redirect(url_for("backoffice.admin_user", user_id=user_id))


@bp.route("/admin/offices", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_offices():
    form = PostOfficeForm()
    loc = current_locale()
    govs = governorates()
    form.governorate.choices = [(g.code, g.name(loc)) for g in govs]
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                office = services.create_post_office(
                    form.code.data, form.name_ar.data, form.name_en.data,
                    form.governorate.data, address=form.address.data or "",
                    is_exchange_office=form.is_exchange_office.data, actor_id=current_user.id,
                )
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            flash(_("Post office %(code)s added.", code=office.code), "success")
            return redirect(url_for("backoffice.admin_offices"))
    elif form.is_submitted():
        status = 422
    staff = dict(db.execute(
        select(User.post_office_id, func.count()).where(User.post_office_id.is_not(None))
        .group_by(User.post_office_id)
    ).all())
    return render_template("backoffice/admin_offices.html", form=form,
                           offices=services.post_offices(), staff=staff,
                           governorate_names={g.code: g.name(loc) for g in govs}), status


@bp.route("/admin/audit")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def admin_audit():
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip()
    # Capped: a page number past BIGINT would make PostgreSQL refuse the OFFSET (a 500).
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    stmt = select(AuditRecord).order_by(AuditRecord.id.desc())
    actor_missing = False
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if actor:
        ids = [u.id for u in services.find_users(actor, limit=50)]
        if actor.isdigit() and len(actor) < 10:
            ids.append(int(actor))
        actor_missing = not ids
        stmt = stmt.where(AuditRecord.actor_id.in_(ids or [-1]))
    rows = list(db.scalars(stmt.offset((page - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE + 1)))
    has_next = len(rows) > AUDIT_PAGE_SIZE
    rows = rows[:AUDIT_PAGE_SIZE]
    actor_ids = {r.actor_id for r in rows if r.actor_id}
    actors = {u.id: u for u in db.scalars(select(User).where(User.id.in_(actor_ids)))} \
        if actor_ids else {}
    actions = list(db.scalars(select(AuditRecord.action).distinct().order_by(AuditRecord.action)))
    return render_template("backoffice/admin_audit.html", rows=rows, actors=actors,
                           actions=actions, action=action, actor=actor, page=page,
                           has_next=has_next, actor_missing=actor_missing)


def register_nav() -> None:
    nav_item("backoffice.admin_users", "Users and roles", (Role.ADMIN,), section="admin",
             order=10)
    nav_item("backoffice.admin_offices", "Post offices", (Role.ADMIN,), section="admin",
             order=20)
    nav_item("backoffice.admin_audit", "Audit log", (Role.ADMIN, Role.SUPERVISOR),
             section="admin", order=90)
