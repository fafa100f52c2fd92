"""Back-office administration: people and their roles, post offices, the audit log.

The routes hang on the `backoffice` blueprint (URLs under /backoffice/admin); importing
this module adds them, so it is imported before the blueprint is registered.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any, NoReturn

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user
from sqlalchemy import ColumnElement, exists, func, or_, select

from app.audit import AuditRecord, record_audit
from app.audit_actions import ACTION_LABELS, OBJECT_LABELS, action_label, object_label
from app.auth import administration, services
from app.auth.decorators import role_required
from app.auth.forms import (
    GrantRoleForm,
    PersonActionForm,
    PostOfficeForm,
    RevokeRoleForm,
    StaffUserForm,
    office_choices,
    office_kind_choices,
    role_choices,
    show_errors,
)
from app.auth.identifiers import format_phone
from app.auth.models import PostOffice, Role, User, UserRole, office_kind_label, role_label
from app.backoffice import bp, nav_item
from app.database import db, unit_of_work
from app.errors import DomainError, Forbidden
from app.geo import governorates
from app.i18n import current_locale, local_time
from app.listing import Filter, Listing
from app.numbers import ascii_digits

AUDIT_PAGE_SIZE = 50
MANAGERS = (Role.ADMIN, Role.SUPERVISOR)


def _office_choices(blank) -> list:
    """Open offices only (a closed one is not chosen for staff); a supervisor has only
    their own."""
    offices = services.post_offices(open_only=True)
    if not current_user.has_role(Role.ADMIN):
        offices = [o for o in offices if o.id == current_user.post_office_id]
    return office_choices(offices, blank=blank)


def _role_choices() -> list:
    allowed = {r.value for r in administration.grantable_roles(current_user)}
    return [c for c in role_choices() if c[0] in allowed]


def _people_named(stmt, query: str):
    like = f"%{query.lower()}%"
    digits = "".join(ch for ch in ascii_digits(query) if ch.isdigit())
    conds = [func.lower(User.full_name).like(like), User.email.like(like)]
    if digits:
        # "0770 123" finds +964770123...: compare without the trunk zero.
        conds.append(User.phone.like(f"%{digits.lstrip('0')}%"))
    return stmt.where(or_(*conds))


def _with_role(stmt, role: str):
    return stmt.where(exists().where(UserRole.user_id == User.id, UserRole.role == role))


PEOPLE_LIST = Listing(
    "people", order=(User.id,),
    filters=(
        Filter("q", lazy_gettext("Name, e-mail or mobile number"), apply=_people_named),
        Filter("role", lazy_gettext("Role"), "choice", apply=_with_role,
               choices=lambda: [(r.value, role_label(r))
                                for r in administration.grantable_roles(current_user)]),
        Filter("office", lazy_gettext("Post office"), "choice",
               apply=lambda stmt, v: stmt.where(User.post_office_id == int(v)),
               choices=lambda: _office_filter_choices(scoped=True)),
        Filter("active", lazy_gettext("Account"), "choice",
               apply=lambda stmt, v: stmt.where(User.active.is_(v == "yes")),
               choices=lambda: [("yes", lazy_gettext("Active")),
                                ("no", lazy_gettext("Disabled"))]),
    ))


def _person_form(person: User | None = None, *, fresh: bool = False) -> StaffUserForm:
    """The form for a new person, or `person`'s details (as saved when `fresh` or on a
    GET, else as posted)."""
    if person is not None and (fresh or request.method == "GET"):
        form = StaffUserForm(formdata=None, data={
            "full_name": person.full_name, "email": person.email or "",
            "phone": format_phone(person.phone) if person.phone else "",
            "roles": sorted(r.value for r in person.roles),
            "post_office": person.post_office.code if person.post_office else "",
        })
    else:
        form = StaffUserForm()
    form.roles.choices = _role_choices()
    form.post_office.choices = _office_choices(_("None"))
    if person is not None:
        form.submit.label.text = _("Save changes")
        if person.post_office and all(c[0] != person.post_office.code
                                      for c in form.post_office.choices):
            # A person still placed at a closed office: show it so saving keeps it.
            form.post_office.choices.append((person.post_office.code,
                                             person.post_office.name(current_locale())))
    return form


def _grant_form(user: User) -> GrantRoleForm:
    form = GrantRoleForm()
    form.role.choices = [c for c in role_choices() if c[0] not in user.roles]
    form.post_office.choices = office_choices(
        services.post_offices(open_only=True), blank=_("Keep as it is")
    )
    return form


def _refuse(user_id: int | None, reason: str) -> NoReturn:
    """A 403 for a person the current user may not manage, kept in the audit log."""
    with unit_of_work():
        record_audit("auth.forbidden", object_type="user", object_id=user_id,
                     actor_id=current_user.id,
                     details={"path": request.path, "method": request.method,
                              "reason": reason[:200]})
    abort(403)


def _person_or_404(user_id: int) -> User:
    person = db.get(User, user_id)
    if person is None:
        abort(404)
    return person


def _managed_person(user_id: int) -> User:
    person = db.get(User, user_id)
    if person is None:
        abort(404)
    if not administration.may_manage(current_user, person):
        _refuse(user_id, "not in the manager's scope")
    return person


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required(*MANAGERS)
def admin_users():
    form = _person_form()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = administration.enrol_person(
                    current_user, form.full_name.data, email=form.email.data,
                    phone=form.phone.data, roles=form.roles.data or [],
                    post_office_code=form.post_office.data or None,
                )
        except Forbidden as exc:
            _refuse(None, str(exc.message))
        except DomainError as exc:
            show_errors(form, exc, rename={"role": "roles"})
            status = exc.http_status
        else:
            flash(_("%(name)s has been sent a code to choose a password.",
                    name=user.full_name), "success")
            return redirect(url_for("backoffice.admin_user", user_id=user.id))
    elif form.is_submitted():
        status = 422
    page = PEOPLE_LIST.page(administration.people_in_scope_query(current_user),
                            PEOPLE_LIST.parse(request.args), request.args)
    return render_template("backoffice/admin_users.html", form=form, page=page,
                           users=page.rows, format_phone=format_phone), status


@bp.route("/admin/users.csv")
@role_required(*MANAGERS)
def admin_users_csv():
    """Every person in the manager's scope the filters keep, as CSV."""
    loc = current_locale()
    columns = [
        (_("Number"), lambda u: u.id),
        (_("Name"), lambda u: u.full_name),
        (_("E-mail"), lambda u: u.email or ""),
        (_("Mobile number"), lambda u: u.phone or ""),
        (_("Roles"), lambda u: "، ".join(str(r) for r in u.role_labels())),
        (_("Post office"), lambda u: u.post_office.name(loc) if u.post_office else ""),
        (_("Active"), lambda u: _("Yes") if u.active else _("No")),
        (_("Added (UTC)"), lambda u: u.created_at.isoformat(timespec="seconds")),
    ]
    return PEOPLE_LIST.csv(administration.people_in_scope_query(current_user),
                           PEOPLE_LIST.parse(request.args), columns, "people.csv")


def _render_person(person: User, form: StaffUserForm | None = None,
                   grant_form: GrantRoleForm | None = None, status: int = 200):
    return render_template(
        "backoffice/admin_user.html", person=person,
        form=form or _person_form(person, fresh=True),
        grant_form=grant_form or _grant_form(person), revoke_form=RevokeRoleForm(),
        action_form=PersonActionForm(), format_phone=format_phone,
        is_admin=current_user.has_role(Role.ADMIN),
    ), status


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@role_required(*MANAGERS)
def admin_user(user_id: int):
    person = _managed_person(user_id)
    form = _person_form(person)
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                administration.update_person(
                    current_user, user_id, full_name=form.full_name.data,
                    email=form.email.data, phone=form.phone.data,
                    post_office_code=form.post_office.data or None,
                    roles=form.roles.data or [],
                )
        except Forbidden as exc:
            _refuse(user_id, str(exc.message))
        except DomainError as exc:
            show_errors(form, exc, rename={"role": "roles", "active": "roles"})
            status = exc.http_status
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("backoffice.admin_user", user_id=user_id))
    elif form.is_submitted():
        status = 422
    return _render_person(_person_or_404(user_id), form, status=status)


_PERSON_ACTIONS = {
    "disable": (administration.disable_person,
                lazy_gettext("The account is disabled and its sessions have ended.")),
    "enable": (administration.enable_person, lazy_gettext("The account is enabled again.")),
    "relogin": (administration.force_relogin,
                lazy_gettext("Every session of this person has ended: they must log in "
                             "again.")),
    "reset": (administration.reset_password_for,
              lazy_gettext("A one-time code to set a new password has been sent.")),
}


@bp.route("/admin/users/<int:user_id>/<any(disable, enable, relogin, reset):action>",
          methods=["POST"])
@role_required(*MANAGERS)
def admin_user_action(user_id: int, action: str):
    _managed_person(user_id)
    form = PersonActionForm()
    if form.validate_on_submit():
        use_case, done = _PERSON_ACTIONS[action]
        try:
            with unit_of_work():
                use_case(current_user, user_id)
        except Forbidden as exc:
            _refuse(user_id, str(exc.message))
        except DomainError as exc:
            flash(str(exc.message), "error")
            return _render_person(_person_or_404(user_id), status=exc.http_status)
        else:
            flash(str(done), "success")
    return redirect(url_for("backoffice.admin_user", user_id=user_id))


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
            return _render_person(_person_or_404(user_id), grant_form=form,
                                  status=exc.http_status)
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


def _office_form(office: PostOffice | None = None, *, fresh: bool = False) -> PostOfficeForm:
    if office is not None and (fresh or request.method == "GET"):
        form = PostOfficeForm(formdata=None, obj=office)
    else:
        form = PostOfficeForm()
    loc = current_locale()
    form.governorate.choices = [(g.code, g.name(loc)) for g in governorates()]
    form.kind.choices = office_kind_choices()
    if office is not None:
        form.submit.label.text = _("Save changes")
    return form


@bp.route("/admin/offices", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_offices():
    form = _office_form()
    loc = current_locale()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                office = services.create_post_office(
                    form.code.data, form.name_ar.data, form.name_en.data,
                    form.governorate.data, address=form.address.data or "",
                    kind=form.kind.data or None, opening_hours=form.opening_hours.data or "",
                    actor_id=current_user.id,
                )
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            flash(_("Post office %(code)s added.", code=office.code), "success")
            return redirect(url_for("backoffice.admin_offices"))
    elif form.is_submitted():
        status = 422
    page = OFFICE_LIST.page(select(PostOffice), OFFICE_LIST.parse(request.args), request.args)
    return render_template("backoffice/admin_offices.html", form=form, page=page,
                           offices=page.rows, staff=_staff_counts(page.rows),
                           kind_label=office_kind_label,
                           governorate_names={g.code: g.name(loc) for g in governorates()}
                           ), status


def _staff_counts(offices) -> dict[int, int]:
    ids = [o.id for o in offices]
    if not ids:
        return {}
    rows = db.execute(select(User.post_office_id, func.count())
                      .where(User.post_office_id.in_(ids)).group_by(User.post_office_id))
    return {office_id: n for office_id, n in rows if office_id is not None}


def _office_named(stmt, text: str):
    return stmt.where(or_(func.upper(PostOffice.code).contains(text.upper(), autoescape=True),
                          PostOffice.name_ar.contains(text, autoescape=True),
                          func.lower(PostOffice.name_en).contains(text.lower(),
                                                                  autoescape=True)))


OFFICE_LIST = Listing(
    "offices", order=(PostOffice.id,), page_size=100,
    filters=(
        Filter("q", lazy_gettext("Code or name"), apply=_office_named),
        Filter("governorate", lazy_gettext("Governorate"), "choice",
               column=PostOffice.governorate,
               choices=lambda: [(g.code, g.name(current_locale())) for g in governorates()]),
        Filter("kind", lazy_gettext("Kind of office"), "choice", column=PostOffice.kind,
               choices=office_kind_choices),
        Filter("open", lazy_gettext("Open or closed"), "choice",
               apply=lambda stmt, v: stmt.where(PostOffice.closed_at.is_(None) if v == "yes"
                                                else PostOffice.closed_at.is_not(None)),
               choices=lambda: [("yes", lazy_gettext("Open")),
                                ("no", lazy_gettext("Closed"))]),
    ))


@bp.route("/admin/offices.csv")
@role_required(Role.ADMIN)
def admin_offices_csv():
    """Every post office the filters keep, as CSV."""
    loc = current_locale()
    names = {g.code: g.name(loc) for g in governorates()}
    staff: dict[int, int] = {}

    def count_staff(batch) -> None:
        staff.clear()
        staff.update(_staff_counts(batch))

    columns = [
        (_("Code"), lambda o: o.code),
        (_("Name (Arabic)"), lambda o: o.name_ar),
        (_("Name (English)"), lambda o: o.name_en),
        (_("Kind of office"), lambda o: str(office_kind_label(o.kind))),
        (_("Governorate"), lambda o: names.get(o.governorate, o.governorate)),
        (_("Address"), lambda o: o.address),
        (_("Opening hours"), lambda o: o.opening_hours),
        (_("Staff"), lambda o: staff.get(o.id, 0)),
        (_("Closed (UTC)"), lambda o: o.closed_at.isoformat(timespec="seconds")
            if o.closed_at else ""),
    ]
    return OFFICE_LIST.csv(select(PostOffice), OFFICE_LIST.parse(request.args), columns,
                           "post-offices.csv", prepare=count_staff)


@bp.route("/admin/offices/<int:office_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_office(office_id: int):
    office = db.get(PostOffice, office_id)
    if office is None:
        abort(404)
    form = _office_form(office)
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                administration.update_post_office(
                    current_user.id, office_id, code=form.code.data,
                    name_ar=form.name_ar.data, name_en=form.name_en.data,
                    governorate_code=form.governorate.data, address=form.address.data or "",
                    kind=form.kind.data, opening_hours=form.opening_hours.data or "",
                )
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("backoffice.admin_office", office_id=office_id))
    elif form.is_submitted():
        status = 422
    return render_template("backoffice/admin_office.html", office=db.get(PostOffice, office_id),
                           form=form, action_form=PersonActionForm(),
                           kind_label=office_kind_label), status


@bp.route("/admin/offices/<int:office_id>/<any(close, reopen):action>", methods=["POST"])
@role_required(Role.ADMIN)
def admin_office_action(office_id: int, action: str):
    form = PersonActionForm()
    if form.validate_on_submit():
        use_case = (administration.close_post_office if action == "close"
                    else administration.reopen_post_office)
        try:
            with unit_of_work():
                office = use_case(current_user.id, office_id)
        except DomainError as exc:
            flash(str(exc.message), "error")
            found = db.get(PostOffice, office_id)
            if found is None:
                abort(404)
            office = found
            return render_template("backoffice/admin_office.html", office=office,
                                   form=_office_form(office, fresh=True),
                                   action_form=PersonActionForm(),
                                   kind_label=office_kind_label), exc.http_status
        flash(_("Post office %(code)s closed.", code=office.code) if action == "close"
              else _("Post office %(code)s is open again.", code=office.code), "success")
    return redirect(url_for("backoffice.admin_office", office_id=office_id))


def _actor_matches(stmt, query: str):
    """Records done by anyone whose name, e-mail or mobile number contains `query`, or by
    the person with that number (#id)."""
    like = f"%{query.lower()}%"
    digits = ascii_digits(query)
    digits = "".join(ch for ch in digits if ch.isdigit())
    conds = [func.lower(User.full_name).like(like), User.email.like(like)]
    if digits:
        conds.append(User.phone.like(f"%{digits.lstrip('0')}%"))
    matched: ColumnElement[bool] = AuditRecord.actor_id.in_(
        select(User.id).where(or_(*conds)))
    if digits and digits == query.lstrip("#").strip() and len(digits) < 19:
        matched = or_(matched, AuditRecord.actor_id == int(digits))
    return stmt.where(matched)


def _actor_office(stmt, office_id: str):
    return stmt.where(AuditRecord.actor_id.in_(
        select(User.id).where(User.post_office_id == int(office_id))))


def _action_choices() -> list[tuple[str, str]]:
    used = set(db.scalars(select(AuditRecord.action).distinct()))
    codes = sorted(used | set(ACTION_LABELS))
    return sorted(((c, action_label(c)) for c in codes), key=lambda c: c[1])


def _object_choices() -> list[tuple[str, str]]:
    used = {k for k in db.scalars(select(AuditRecord.object_type).distinct()) if k}
    return sorted(((k, object_label(k)) for k in used | set(OBJECT_LABELS)),
                  key=lambda c: c[1])


def _office_filter_choices(*, scoped: bool = False) -> list[tuple[str, str]]:
    """Offices to filter by: all, or (`scoped`) a supervisor's own only."""
    loc = current_locale()
    offices = services.post_offices()
    if scoped and not current_user.has_role(Role.ADMIN):
        offices = [o for o in offices if o.id == current_user.post_office_id]
    return [(str(o.id), f"{o.code} — {o.name(loc)}") for o in offices]


AUDIT_LIST = Listing(
    "audit", order=(AuditRecord.occurred_at, AuditRecord.id), page_size=AUDIT_PAGE_SIZE,
    filters=(
        Filter("actor", lazy_gettext("Done by"), apply=_actor_matches,
               placeholder=lazy_gettext("Name, e-mail, mobile number or #number")),
        Filter("office", lazy_gettext("Their post office"), "choice", apply=_actor_office,
               choices=_office_filter_choices),
        Filter("action", lazy_gettext("Action"), "choice", column=AuditRecord.action,
               choices=_action_choices),
        Filter("object_type", lazy_gettext("Kind of object"), "choice",
               column=AuditRecord.object_type, choices=_object_choices),
        Filter("object_id", lazy_gettext("Object number"), "text", dir="ltr",
               apply=lambda stmt, v: stmt.where(AuditRecord.object_id == v.lstrip("#"))),
        Filter("since", lazy_gettext("From (day)"), "date_from",
               column=AuditRecord.occurred_at),
        Filter("until", lazy_gettext("To (day)"), "date_to", column=AuditRecord.occurred_at),
    ))


def _actors_of(rows) -> dict[int, User]:
    ids = {r.actor_id for r in rows if r.actor_id}
    return {u.id: u for u in db.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def _details_text(details: Any) -> str:
    return json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str)


@bp.route("/admin/audit")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def admin_audit():
    """The audit log, newest first, a page at a time, filtered by who, their office, what,
    on which object and when."""
    values = AUDIT_LIST.parse(request.args)
    page = AUDIT_LIST.page(select(AuditRecord), values, request.args)
    return render_template("backoffice/admin_audit.html", page=page, rows=page.rows,
                           actors=_actors_of(page.rows), action_label=action_label,
                           object_label=object_label)


@bp.route("/admin/audit.csv")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def admin_audit_csv():
    """Every record the filters keep (not only one page), as CSV."""
    values = AUDIT_LIST.parse(request.args)
    actors: dict[int, User] = {}

    def load_actors(batch) -> None:
        actors.clear()
        actors.update(_actors_of(batch))

    def who(r) -> str:
        if not r.actor_id:
            return _("System")
        person = actors.get(r.actor_id)
        return person.full_name if person else f"#{r.actor_id}"

    columns = [
        (_("When (UTC)"), lambda r: r.occurred_at.astimezone(UTC).isoformat(timespec="seconds")),
        (_("When (Baghdad time)"), lambda r: local_time(r.occurred_at, "short")),
        (_("Person number"), lambda r: r.actor_id),
        (_("Who"), who),
        (_("Action"), lambda r: action_label(r.action)),
        (_("Action code"), lambda r: r.action),
        (_("Kind of object"), lambda r: object_label(r.object_type)),
        (_("Object number"), lambda r: r.object_id or ""),
        (_("From address"), lambda r: r.ip_address or ""),
        (_("Before"), lambda r: _details_text((r.details or {}).get("before"))
            if (r.details or {}).get("before") is not None else ""),
        (_("After"), lambda r: _details_text((r.details or {}).get("after"))
            if (r.details or {}).get("after") is not None else ""),
        (_("Details"), lambda r: _details_text(r.details)),
        (_("Request"), lambda r: r.request_id or ""),
    ]
    return AUDIT_LIST.csv(select(AuditRecord), values, columns, "audit-log.csv",
                          prepare=load_actors)


def register_nav() -> None:
    nav_item("backoffice.admin_users", "Users and roles", MANAGERS, section="admin",
             order=10)
    nav_item("backoffice.admin_offices", "Post offices", (Role.ADMIN,), section="admin",
             order=20)
    nav_item("backoffice.admin_audit", "Audit log", (Role.ADMIN, Role.SUPERVISOR),
             section="admin", order=90)
