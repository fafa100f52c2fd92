"""Administering people and post offices from the back office.

An admin manages everyone; a supervisor manages the staff of their own post office
(clerks, customs and procurement officers), and can neither give nor touch the
supervisor and admin roles. Every change is audited with the values before and after.
Passwords are never seen nor set here: a person is sent a one-time reset code
(app.auth.recovery). Disabling an account or forcing a new login rotates the account's
session token, which ends every session of it at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, false, func, select
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.auth import recovery
from app.auth.models import PostOffice, Role, User, UserRole
from app.auth.services import (
    DuplicateAccount,
    PostOfficeRequired,
    _parse_roles,
    _post_office_by_code,
    create_user,
    find_users,
    person_details,
    person_snapshot,
    post_office_snapshot,
    refuse_losing_last_admin,
    validate_post_office,
)
from app.database import db, savepoint, utcnow
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed

# What a supervisor may give and take away, for the staff of their own office.
SUPERVISOR_GRANTS = frozenset({Role.CLERK, Role.CUSTOMS_OFFICER, Role.PROCUREMENT})
NOT_YOURS = _l("You can manage only the staff of your own post office.")


def may_manage(actor: User, person: User) -> bool:
    """Whether `actor` may change `person`: an admin anyone; a supervisor only staff of
    their own office who hold no role beyond SUPERVISOR_GRANTS."""
    if actor.has_role(Role.ADMIN):
        return True
    if not actor.has_role(Role.SUPERVISOR) or actor.post_office_id is None:
        return False
    return (person.post_office_id == actor.post_office_id and person.id != actor.id
            and bool(person.roles) and person.roles <= SUPERVISOR_GRANTS)


def grantable_roles(actor: User) -> list[Role]:
    """The roles `actor` may give or take away."""
    if actor.has_role(Role.ADMIN):
        return list(Role)
    return [r for r in Role if r in SUPERVISOR_GRANTS] if actor.has_role(Role.SUPERVISOR) \
        else []


def people_in_scope(actor: User, query: str = "", *, limit: int = 100) -> list[User]:
    """The people `actor` may manage whose name, e-mail or mobile contains `query`,
    newest first."""
    if actor.has_role(Role.ADMIN):
        return find_users(query, limit=limit)
    if actor.post_office_id is None:
        return []
    staff = find_users(query, limit=limit * 5, post_office_id=actor.post_office_id)
    return [u for u in staff if may_manage(actor, u)][:limit]


def people_in_scope_query(actor: User) -> Select[tuple[User]]:
    """A query of the people `actor` may manage (may_manage, said in SQL so a list of them
    can be paged): everyone for an admin; for a supervisor the staff of their own office
    who hold only roles the supervisor may grant; nobody for anyone else. Reads only."""
    stmt = select(User)
    if actor.has_role(Role.ADMIN):
        return stmt
    if not actor.has_role(Role.SUPERVISOR) or actor.post_office_id is None:
        return stmt.where(false())
    granted = [r.value for r in SUPERVISOR_GRANTS]
    return stmt.where(
        User.post_office_id == actor.post_office_id, User.id != actor.id,
        exists().where(UserRole.user_id == User.id),
        ~exists().where(UserRole.user_id == User.id, UserRole.role.not_in(granted)))


def _person(actor: User, user_id: int, *, lock: bool = False) -> User:
    if lock:  # FOR UPDATE OF users: the office is joined (nullable side) for reading only
        user = db.scalars(select(User).where(User.id == user_id).with_for_update(of=User)
                          .execution_options(populate_existing=True)).first()
    else:
        user = db.get(User, user_id)
    if user is None:
        raise NotFound(_l("No such person."))
    if not may_manage(actor, user):
        raise Forbidden(NOT_YOURS)
    return user


def _check_roles_allowed(actor: User, roles: Iterable[Role]) -> None:
    allowed = set(grantable_roles(actor))
    if not set(roles) <= allowed:
        msg = _l("You cannot give or remove the supervisor or administrator role.")
        raise Forbidden(msg, fields={"roles": msg})


def _check_office_allowed(actor: User, office: PostOffice | None) -> None:
    if actor.has_role(Role.ADMIN):
        return
    if office is None or office.id != actor.post_office_id:
        msg = _l("You can place staff only at your own post office.")
        raise Forbidden(msg, fields={"post_office": msg})


def enrol_person(actor: User, full_name: str, *, email: str | None, phone: str | None,
                 roles: Iterable[Role | str], post_office_code: str | None) -> User:
    """Open an account for a member of staff (or anyone, for an admin) and send them a
    one-time code to choose their own password. Audits `auth.user_create` (with the
    details as `after`) and `auth.password_reset_sent`. Raises Forbidden (a role or
    office the actor may not give), and what `create_user` raises."""
    wanted = _parse_roles(roles)
    _check_roles_allowed(actor, wanted)
    office = _post_office_by_code(post_office_code) if post_office_code else None
    _check_office_allowed(actor, office)
    # Nobody knows this password: the person sets their own with the code sent below.
    user = create_user(full_name, password=secrets.token_urlsafe(32), roles=wanted,
                       email=email, phone=phone, post_office_code=post_office_code,
                       actor_id=actor.id)
    recovery.send_password_reset(user.id, actor_id=actor.id)
    return user


def update_person(actor: User, user_id: int, *, full_name: str, email: str | None,
                  phone: str | None, post_office_code: str | None,
                  roles: Iterable[Role | str]) -> User:
    """Change a person's name, e-mail, mobile, office and roles at once. Audits
    `auth.user_update` with `before` and `after` (nothing when nothing changed).

    Raises NotFound, Forbidden (someone else's staff, or a role or office the actor may
    not give), ValidationFailed (fields `full_name`, `email`, `phone`, `post_office`,
    `roles`), PostOfficeRequired, DuplicateAccount, Conflict (an admin removing their
    own admin role) or LastAdministrator; nothing changes then.
    """
    person = _person(actor, user_id)
    full_name, email, phone = person_details(full_name, email, phone)
    wanted = set(_parse_roles(roles))
    before = person_snapshot(person)
    _check_roles_allowed(actor, wanted ^ set(person.roles))
    office = person.post_office
    code = (post_office_code or "").strip().upper()
    if code != (office.code if office else ""):
        office = _post_office_by_code(code) if code else None
        _check_office_allowed(actor, office)
    if Role.CLERK in wanted and office is None:
        msg = _l("A postal clerk must belong to a post office.")
        raise PostOfficeRequired(msg, fields={"post_office": msg})
    if Role.ADMIN in person.roles and Role.ADMIN not in wanted:
        if person.id == actor.id:
            msg = _l("You cannot remove your own administrator role.")
            raise Conflict(msg, fields={"roles": msg})
        refuse_losing_last_admin(person.id)
    for column, value, field in ((User.email, email, "email"), (User.phone, phone, "phone")):
        if value and db.scalar(select(User.id).where(column == value, User.id != person.id)):
            msg = (_l("An account with this e-mail address already exists.") if field == "email"
                   else _l("An account with this mobile number already exists."))
            raise DuplicateAccount(msg, fields={field: msg})
    person.full_name, person.email, person.phone = full_name[:200], email, phone
    person.post_office = office
    for row in [r for r in person.role_rows if Role(r.role) not in wanted]:
        person.role_rows.remove(row)
    for role in sorted(wanted - person.roles):
        person.role_rows.append(UserRole(role=role.value))
    try:
        with savepoint():
            db.flush()
    except IntegrityError:  # a lost race on the unique e-mail or mobile
        msg = _l("An account with this e-mail address or mobile number already exists.")
        raise DuplicateAccount(msg, fields={"email": msg}) from None
    after = person_snapshot(person)
    if after != before:
        record_audit("auth.user_update", object_type="user", object_id=person.id,
                     actor_id=actor.id, details={"before": before, "after": after})
        db.flush()
    return person


def disable_person(actor: User, user_id: int) -> User:
    """Disable an account: it can no longer log in, and every session of it ends at
    once (the session token is rotated; the user loader refuses disabled accounts too).
    Audits `auth.user_disable` with before and after. Raises NotFound, Forbidden,
    Conflict (one's own account, or already disabled) or LastAdministrator (checked
    under a lock of every admin's row, so two admins disabling each other at once
    cannot both succeed)."""
    person = _person(actor, user_id)
    if person.id == actor.id:
        raise Conflict(_l("You cannot disable your own account."))
    if Role.ADMIN in person.roles:
        refuse_losing_last_admin(person.id, "active")
    person = _person(actor, user_id, lock=True)
    if not person.active:
        raise Conflict(_l("This account is already disabled."))
    before = person_snapshot(person)
    person.active = False
    person.rotate_session_token()
    record_audit("auth.user_disable", object_type="user", object_id=person.id,
                 actor_id=actor.id, details={"before": before, "after": person_snapshot(person)})
    db.flush()
    return person


def enable_person(actor: User, user_id: int) -> User:
    """Let a disabled account log in again (its old sessions stay ended). Audits
    `auth.user_enable` with before and after. Raises NotFound, Forbidden or Conflict
    (already enabled)."""
    person = _person(actor, user_id, lock=True)
    if person.active:
        raise Conflict(_l("This account is already enabled."))
    before = person_snapshot(person)
    person.active = True
    record_audit("auth.user_enable", object_type="user", object_id=person.id,
                 actor_id=actor.id, details={"before": before, "after": person_snapshot(person)})
    db.flush()
    return person


def force_relogin(actor: User, user_id: int) -> User:
    """End every session of a person now (they log in again with their password).
    Audits `auth.force_relogin`. Raises NotFound or Forbidden."""
    person = _person(actor, user_id, lock=True)
    person.rotate_session_token()
    record_audit("auth.force_relogin", object_type="user", object_id=person.id,
                 actor_id=actor.id)
    db.flush()
    return person


def reset_password_for(actor: User, user_id: int) -> User:
    """Send a person a one-time code and link to set a new password (the actor never
    sees it). Audits `auth.password_reset_sent`. Raises NotFound, Forbidden or
    ValidationFailed (disabled account, nowhere to send)."""
    person = _person(actor, user_id)
    recovery.send_password_reset(person.id, actor_id=actor.id)
    return person


# -- post offices ---------------------------------------------------------------------------

def _office(office_id: int, *, lock: bool = False) -> PostOffice:
    office = db.get(PostOffice, office_id, with_for_update=lock, populate_existing=lock)
    if office is None:
        raise NotFound(_l("No such post office."))
    return office


def update_post_office(actor_id: int, office_id: int, *, code: str, name_ar: str,
                       name_en: str, governorate_code: str, address: str, kind: str,
                       opening_hours: str) -> PostOffice:
    """Change a post office's details. Audits `auth.post_office_update` with before and
    after (nothing when nothing changed). Raises NotFound, ValidationFailed (fields as
    `create_post_office`) or Conflict (field `code`, the code of another office)."""
    office = _office(office_id, lock=True)
    code = (code or "").strip().upper()
    kind = (kind or "").strip()
    errors = validate_post_office(code, name_ar, name_en, governorate_code, kind,
                                  opening_hours)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), fields=errors)
    taken = _l("A post office with the code %(code)s already exists.", code=code)
    if db.scalar(select(PostOffice.id).where(PostOffice.code == code,
                                             PostOffice.id != office.id)) is not None:
        raise Conflict(taken, fields={"code": taken})
    before = post_office_snapshot(office)
    office.code, office.name_ar, office.name_en = code, name_ar.strip(), name_en.strip()
    office.governorate, office.address = governorate_code, (address or "").strip()
    office.kind, office.opening_hours = kind, (opening_hours or "").strip()
    office.is_exchange_office = kind == "exchange"
    try:
        with savepoint():
            db.flush()
    except IntegrityError:
        raise Conflict(taken, fields={"code": taken}) from None
    after = post_office_snapshot(office)
    if after != before:
        record_audit("auth.post_office_update", object_type="post_office",
                     object_id=office.id, actor_id=actor_id,
                     details={"before": before, "after": after})
        db.flush()
    return office


def close_post_office(actor_id: int, office_id: int) -> PostOffice:
    """Close a post office: it is no longer offered for pickup nor chosen for staff; its
    records stay. Audits `auth.post_office_close` with before and after. Raises
    NotFound or Conflict (already closed, or active staff still placed there: move them
    first, so nobody works at an office that does not open)."""
    office = _office(office_id, lock=True)
    if not office.is_open:
        raise Conflict(_l("This post office is already closed."))
    staff = db.scalar(select(func.count()).select_from(User).where(
        User.post_office_id == office.id, User.active.is_(True)))
    if staff:
        raise Conflict(_l("%(n)s people still work at this office. Move them to another "
                          "office first.", n=staff))
    before = post_office_snapshot(office)
    office.closed_at = utcnow()
    record_audit("auth.post_office_close", object_type="post_office", object_id=office.id,
                 actor_id=actor_id,
                 details={"before": before, "after": post_office_snapshot(office)})
    db.flush()
    return office


def reopen_post_office(actor_id: int, office_id: int) -> PostOffice:
    """Open a closed post office again. Audits `auth.post_office_reopen` with before
    and after. Raises NotFound or Conflict (not closed)."""
    office = _office(office_id, lock=True)
    if office.is_open:
        raise Conflict(_l("This post office is open."))
    before = post_office_snapshot(office)
    office.closed_at = None
    record_audit("auth.post_office_reopen", object_type="post_office", object_id=office.id,
                 actor_id=actor_id,
                 details={"before": before, "after": post_office_snapshot(office)})
    db.flush()
    return office
