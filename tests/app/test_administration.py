"""Administering people and post offices: what an admin and a supervisor can do, what
they cannot, and what the audit log keeps of it (before and after).

Attacks: a disabled person's open session; two admins disabling each other at once; a
supervisor reaching another office's staff or giving out the admin role; a duplicate
office code; a closed office offered at checkout or chosen for staff.
"""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth import administration, services
from app.auth.models import PostOffice, Role, User
from app.database import db
from app.notify import sent_messages
from tests.app.test_auth_support import count, log_in, make_office, make_user, messages_to


@pytest.fixture(autouse=True)
def _no_earlier_messages():
    """Messages other tests sent to the same addresses are not this test's."""
    sent_messages.clear()


def _records(app, action):
    with app.app_context():
        return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                               .order_by(AuditRecord.id)))


def _user(app, uid):
    with app.app_context():
        user = db.get(User, uid)
        db.expunge(user)
        return user


@pytest.fixture()
def admin(app, client):
    uid = make_user(app, email="admin@example.iq", name="Admin", roles=("admin",))
    assert log_in(client, "admin@example.iq").status_code == 302
    return uid


# -- people ------------------------------------------------------------------------------

def test_disabling_ends_the_sessions_at_once_and_blocks_login(app, client, admin):
    make_office(app)
    uid = make_user(app, email="clerk@example.iq", roles=("clerk",), office="BGD-01")
    clerk = app.test_client()
    assert log_in(clerk, "clerk@example.iq", remember="y").status_code == 302
    assert clerk.get("/backoffice/").status_code == 200

    resp = client.post(f"/backoffice/admin/users/{uid}/disable")
    assert resp.status_code == 302
    assert clerk.get("/backoffice/").status_code == 302  # the open session is gone
    assert log_in(app.test_client(), "clerk@example.iq").status_code == 401
    [rec] = _records(app, "auth.user_disable")
    assert rec.actor_id == admin and rec.object_id == str(uid)
    assert rec.details["before"]["active"] is True and rec.details["after"]["active"] is False
    assert "معطّل" in client.get(f"/backoffice/admin/users/{uid}").get_data(as_text=True)

    assert client.post(f"/backoffice/admin/users/{uid}/enable").status_code == 302
    assert log_in(app.test_client(), "clerk@example.iq").status_code == 302
    [rec] = _records(app, "auth.user_enable")
    assert (rec.details["before"]["active"], rec.details["after"]["active"]) == (False, True)


def test_force_relogin_ends_every_session_but_login_still_works(app, client, admin):
    uid = make_user(app, email="someone@example.iq")
    other = app.test_client()
    log_in(other, "someone@example.iq")
    assert other.get("/account").status_code == 200
    assert client.post(f"/backoffice/admin/users/{uid}/relogin").status_code == 302
    assert other.get("/account").status_code == 302
    assert log_in(other, "someone@example.iq").status_code == 302
    assert len(_records(app, "auth.force_relogin")) == 1


def test_admin_sends_a_reset_code_and_never_sees_it(app, client, admin):
    uid = make_user(app, phone="+9647701112233")
    resp = client.post(f"/backoffice/admin/users/{uid}/reset", follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "أُرسل رمز لمرة واحدة" in page
    [message] = messages_to(app, "+9647701112233")
    code = re.search(r"\b(\d{6})\b", message["body"]).group(1)
    link = re.search(r"/password/reset/[\w-]+", message["body"]).group(0)
    assert code not in page
    [rec] = _records(app, "auth.password_reset_sent")
    assert rec.actor_id == admin and code not in str(rec.details)

    person = app.test_client()
    person.get(link)
    done = person.post("/password/reset", data={
        "code": code, "password": "chosen by me 9", "password_confirm": "chosen by me 9"})
    assert done.status_code == 302
    assert log_in(app.test_client(), "07701112233", "chosen by me 9").status_code == 302


def test_a_new_staff_member_chooses_their_own_password(app, client, admin):
    make_office(app)
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "زهراء", "email": "zahraa@example.iq", "phone": "",
        "roles": ["clerk"], "post_office": "BGD-01"})
    assert resp.status_code == 302
    [message] = messages_to(app, "zahraa@example.iq")
    assert "رمز تعيين كلمة مرور جديدة" in message["body"]
    with app.app_context():
        user = db.scalar(select(User).where(User.email == "zahraa@example.iq"))
        assert user.roles == {Role.CLERK} and user.post_office.code == "BGD-01"


def test_admin_edits_a_person_and_the_audit_has_before_and_after(app, client, admin):
    make_office(app)
    make_office(app, code="BSR-01", governorate="IQ-BA", exchange=False)
    uid = make_user(app, email="ali@example.iq", name="Ali", roles=("clerk",), office="BGD-01")
    resp = client.post(f"/backoffice/admin/users/{uid}", data={
        "full_name": "Ali Hassan", "email": "ali.h@example.iq", "phone": "٠٧٥٠ ١٢٣ ٤٥٦٧",
        "roles": ["clerk", "customs_officer"], "post_office": "BSR-01"})
    assert resp.status_code == 302
    [rec] = _records(app, "auth.user_update")
    assert rec.details["before"] == {
        "full_name": "Ali", "email": "ali@example.iq", "phone": None, "post_office": "BGD-01",
        "roles": ["clerk"], "active": True}
    assert rec.details["after"] == {
        "full_name": "Ali Hassan", "email": "ali.h@example.iq", "phone": "+9647501234567",
        "post_office": "BSR-01", "roles": ["clerk", "customs_officer"], "active": True}

    taken = make_user(app, email="taken@example.iq")
    dup = client.post(f"/backoffice/admin/users/{taken}", data={
        "full_name": "X", "email": "ali.h@example.iq", "roles": ["shopper"]})
    assert dup.status_code == 409 and 'id="email-error"' in dup.get_data(as_text=True)


def test_admin_cannot_remove_their_own_admin_role_or_disable_themselves(app, client, admin):
    demote = client.post(f"/backoffice/admin/users/{admin}", data={
        "full_name": "Admin", "email": "admin@example.iq", "roles": ["clerk"],
        "post_office": ""})
    assert demote.status_code in (409, 422)
    disable = client.post(f"/backoffice/admin/users/{admin}/disable")
    assert disable.status_code == 409
    assert "لا يمكنك تعطيل حسابك." in disable.get_data(as_text=True)
    assert _user(app, admin).active and Role.ADMIN in _user(app, admin).roles


def test_the_last_active_admin_cannot_be_demoted_or_disabled(app):
    """From the command line (no acting admin) as from the back office: the last active
    administrator stays, and the refusal says why."""
    from app.database import unit_of_work
    from app.errors import Conflict

    only = make_user(app, email="only@example.iq", roles=("admin",))
    other = make_user(app, email="other@example.iq", roles=("admin",))
    with app.app_context(), app.test_request_context():
        with unit_of_work():
            administration.disable_person(db.get(User, only), other)
        with pytest.raises(services.LastAdministrator) as refused, unit_of_work():
            services.revoke_role(only, "admin", actor_id=None)
        assert "آخر مدير نظام فعّال" in str(refused.value.message)
        # A disabled admin's role may go: it leaves the active admins as they are.
        with unit_of_work():
            services.revoke_role(other, "admin", actor_id=None)
        # Another admin cannot take the last one's role or account either.
        third = db.get(User, make_user(app, email="third@example.iq", roles=("admin",)))
        with unit_of_work():
            services.revoke_role(third.id, "admin", actor_id=only)
        with pytest.raises(Conflict), unit_of_work():
            services.revoke_role(only, "admin", actor_id=None)
        assert Role.ADMIN in db.get(User, only).roles and db.get(User, only).active


@pytest.mark.commits
def test_two_admins_disabling_each_other_at_once_leave_one(app):
    from app.database import unit_of_work

    a = make_user(app, email="a@example.iq", roles=("admin",))
    b = make_user(app, email="b@example.iq", roles=("admin",))
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def disable(actor_id: int, target_id: int) -> None:
        with app.app_context():
            try:
                actor = db.get(User, actor_id)
                barrier.wait()
                with unit_of_work():
                    administration.disable_person(actor, target_id)
                outcomes.append("disabled")
            except Exception as exc:  # noqa: BLE001  (checked below)
                outcomes.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=disable, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(map(type, outcomes), key=str) == sorted(
        [str, services.LastAdministrator], key=str), outcomes
    with app.app_context():
        assert sum(db.get(User, uid).active for uid in (a, b)) == 1
    assert len(_records(app, "auth.user_disable")) == 1


# -- supervisors ---------------------------------------------------------------------------

@pytest.fixture()
def two_offices(app):
    make_office(app)
    make_office(app, code="BSR-01", governorate="IQ-BA", exchange=False)


def test_supervisor_manages_the_staff_of_their_own_office_only(app, client, two_offices):
    make_user(app, email="sup@example.iq", roles=("supervisor",), office="BGD-01")
    ours = make_user(app, email="ours@example.iq", name="Ours", roles=("clerk",),
                     office="BGD-01")
    theirs = make_user(app, email="theirs@example.iq", name="Theirs", roles=("clerk",),
                       office="BSR-01")
    chief = make_user(app, email="chief@example.iq", name="Chief", roles=("admin",),
                      office="BGD-01")
    log_in(client, "sup@example.iq")

    listing = client.get("/backoffice/admin/users").get_data(as_text=True)
    assert "Ours" in listing and "Theirs" not in listing and "Chief" not in listing
    assert client.get(f"/backoffice/admin/users/{ours}").status_code == 200

    for path in (f"/backoffice/admin/users/{theirs}", f"/backoffice/admin/users/{chief}"):
        assert client.get(path).status_code == 403
    assert client.post(f"/backoffice/admin/users/{theirs}/disable").status_code == 403
    assert client.post(f"/backoffice/admin/users/{chief}/reset").status_code == 403
    assert _user(app, theirs).active
    assert messages_to(app, "chief@example.iq") == []
    refused = _records(app, "auth.forbidden")
    assert [r.object_id for r in refused] == [str(theirs), str(chief), str(theirs), str(chief)]
    assert refused[2].details["path"] == f"/backoffice/admin/users/{theirs}/disable"

    # Their own clerk: disable works; the admin role and another office do not.
    assert client.post(f"/backoffice/admin/users/{ours}/disable").status_code == 302
    assert not _user(app, ours).active
    client.post(f"/backoffice/admin/users/{ours}/enable")
    grab = client.post(f"/backoffice/admin/users/{ours}", data={
        "full_name": "Ours", "email": "ours@example.iq", "roles": ["clerk", "admin"],
        "post_office": "BGD-01"})
    assert grab.status_code == 403
    move = client.post(f"/backoffice/admin/users/{ours}", data={
        "full_name": "Ours", "email": "ours@example.iq", "roles": ["clerk"],
        "post_office": "BSR-01"})
    assert move.status_code == 403
    assert _user(app, ours).roles == {Role.CLERK}
    assert _user(app, ours).post_office_id != _user(app, theirs).post_office_id
    assert len(_records(app, "auth.forbidden")) == 6
    # Nor can they add an administrator.
    create = client.post("/backoffice/admin/users", data={
        "full_name": "Boss", "email": "boss@example.iq", "roles": ["admin"],
        "post_office": "BGD-01"})
    assert create.status_code == 403
    assert count(app, User, User.email == "boss@example.iq") == 0
    assert client.get("/backoffice/admin/offices").status_code == 403


def test_supervisor_enrols_a_clerk_at_their_own_office(app, client, two_offices):
    make_user(app, email="sup@example.iq", roles=("supervisor",), office="BGD-01")
    log_in(client, "sup@example.iq")
    page = client.get("/backoffice/admin/users").get_data(as_text=True)
    assert 'value="BSR-01"' not in page and 'value="admin"' not in page
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "New", "email": "new@example.iq", "roles": ["clerk"],
        "post_office": "BGD-01"})
    assert resp.status_code == 302
    assert len(messages_to(app, "new@example.iq")) == 1


# -- post offices --------------------------------------------------------------------------

def _office_data(**kw):
    data = {"code": "KRK-01", "name_ar": "مكتب بريد كركوك", "name_en": "Kirkuk Post Office",
            "governorate": "IQ-KI", "kind": "delivery", "address": "شارع الجمهورية",
            "opening_hours": "Sat-Thu 08:00-14:00"}
    data.update(kw)
    return data


def test_admin_creates_edits_and_closes_an_office_with_before_and_after(app, client, admin):
    assert client.post("/backoffice/admin/offices", data=_office_data()).status_code == 302
    with app.app_context():
        office = db.scalar(select(PostOffice).where(PostOffice.code == "KRK-01"))
        assert (office.kind, office.opening_hours) == ("delivery", "Sat-Thu 08:00-14:00")
        oid = office.id
    [created] = _records(app, "auth.post_office_create")
    assert created.details["before"] is None and created.details["after"]["kind"] == "delivery"

    page = client.get(f"/backoffice/admin/offices/{oid}").get_data(as_text=True)
    assert "Sat-Thu 08:00-14:00" in page and "مكتب توزيع" in page
    resp = client.post(f"/backoffice/admin/offices/{oid}", data=_office_data(
        code="krk-02", kind="sorting", opening_hours="24/7"))
    assert resp.status_code == 302
    [edit] = _records(app, "auth.post_office_update")
    assert (edit.details["before"]["code"], edit.details["after"]["code"]) == ("KRK-01", "KRK-02")
    assert (edit.details["before"]["kind"], edit.details["after"]["kind"]) == (
        "delivery", "sorting")

    assert client.post(f"/backoffice/admin/offices/{oid}/close").status_code == 302
    [closed] = _records(app, "auth.post_office_close")
    assert (closed.details["before"]["closed"], closed.details["after"]["closed"]) == (
        False, True)
    assert "مغلق" in client.get("/backoffice/admin/offices").get_data(as_text=True)


def test_a_duplicate_office_code_is_a_clear_form_error(app, client, admin):
    make_office(app)
    dup = client.post("/backoffice/admin/offices", data=_office_data(code="bgd-01"))
    assert dup.status_code == 409
    body = dup.get_data(as_text=True)
    assert 'id="code-error"' in body and "BGD-01" in body
    assert client.post("/backoffice/admin/offices", data=_office_data()).status_code == 302
    with app.app_context():
        oid = db.scalar(select(PostOffice.id).where(PostOffice.code == "KRK-01"))
    rename = client.post(f"/backoffice/admin/offices/{oid}", data=_office_data(code="BGD-01"))
    assert rename.status_code == 409 and 'id="code-error"' in rename.get_data(as_text=True)
    bad_kind = client.post("/backoffice/admin/offices", data=_office_data(code="X-1",
                                                                         kind="castle"))
    assert bad_kind.status_code == 422 and 'id="kind-error"' in bad_kind.get_data(as_text=True)
    assert count(app, PostOffice) == 2


def test_a_closed_office_is_not_chosen_for_staff_and_cannot_close_with_staff(app, client,
                                                                            admin):
    oid = make_office(app)
    uid = make_user(app, email="c@example.iq", roles=("clerk",), office="BGD-01")
    busy = client.post(f"/backoffice/admin/offices/{oid}/close")
    assert busy.status_code == 409
    assert "ما زال 1 من الموظفين يعملون في هذا المكتب" in busy.get_data(as_text=True)
    client.post(f"/backoffice/admin/users/{uid}/disable")
    assert client.post(f"/backoffice/admin/offices/{oid}/close").status_code == 302

    page = client.get("/backoffice/admin/users").get_data(as_text=True)
    assert 'value="BGD-01"' not in page
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "Late", "email": "late@example.iq", "roles": ["clerk"],
        "post_office": "BGD-01"})
    assert resp.status_code == 422
    assert "مغلق: اختر مكتباً آخر" in resp.get_data(as_text=True)
    assert client.post(f"/backoffice/admin/offices/{oid}/reopen").status_code == 302
    assert len(_records(app, "auth.post_office_reopen")) == 1


def test_office_pages_are_for_admins_only(app, client):
    oid = make_office(app)
    make_user(app, email="sup@example.iq", roles=("supervisor",), office="BGD-01")
    log_in(client, "sup@example.iq")
    assert client.get(f"/backoffice/admin/offices/{oid}").status_code == 403
    assert client.post(f"/backoffice/admin/offices/{oid}/close").status_code == 403
    with app.app_context():
        assert db.get(PostOffice, oid).is_open
