"""The back-office shell and its administration pages: who may open what, and what
an admin's changes leave in the audit log."""

from __future__ import annotations

from sqlalchemy import select

from app.audit import AuditRecord
from app.auth.models import PostOffice, Role, User
from app.database import db
from tests.app.test_auth_support import count, log_in, make_office, make_user


def _admin(app, client):
    uid = make_user(app, email="admin@example.iq", name="Admin", roles=("admin",))
    log_in(client, "admin@example.iq")
    return uid


def test_anonymous_visitor_is_sent_to_login(app, client):
    resp = client.get("/backoffice/admin/users")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=%2Fbackoffice%2Fadmin%2Fusers"


def test_shopper_gets_a_403_that_names_the_roles_needed(app, client):
    make_user(app, email="shopper@example.iq")
    log_in(client, "shopper@example.iq")
    resp = client.get("/backoffice/")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 403
    for label in ("موظف بريد", "موظف كمارك", "مشرف", "مدير النظام"):
        assert label in body


def test_clerk_sees_the_dashboard_but_not_the_admin_pages(app, client):
    make_office(app)
    make_user(app, email="clerk@example.iq", roles=("clerk",), office="BGD-01", name="علي")
    log_in(client, "clerk@example.iq")
    home = client.get("/backoffice/")
    body = home.get_data(as_text=True)
    assert home.status_code == 200
    assert "علي" in body and "موظف بريد" in body and "مكتب بريد بغداد" in body
    assert "/backoffice/admin/users" not in body
    denied = client.get("/backoffice/admin/users")
    assert denied.status_code == 403
    assert "مدير النظام" in denied.get_data(as_text=True)


def test_supervisor_reads_the_audit_log_but_cannot_manage_offices(app, client):
    """A supervisor manages staff of their own office (tests/app/test_administration.py)
    but not the offices themselves."""
    make_user(app, email="sup@example.iq", roles=("supervisor",))
    log_in(client, "sup@example.iq")
    assert client.get("/backoffice/admin/audit").status_code == 200
    assert client.get("/backoffice/admin/users").status_code == 200
    assert client.get("/backoffice/admin/offices").status_code == 403


def test_admin_navigation_is_grouped_and_translated(app, client):
    _admin(app, client)
    body = client.get("/backoffice/").get_data(as_text=True)
    for text in ("الإدارة", "المستخدمون والأدوار", "مكاتب البريد", "سجل التدقيق", "مدير النظام"):
        assert text in body


def test_admin_grants_the_clerk_role_with_a_post_office_and_it_is_audited(app, client):
    admin_id = _admin(app, client)
    make_office(app)
    uid = make_user(app, email="new@example.iq", name="Zainab")

    refused = client.post(f"/backoffice/admin/users/{uid}/grant",
                          data={"role": "clerk", "post_office": ""})
    assert refused.status_code == 422
    assert "يجب أن يتبع موظف البريد مكتبَ بريد." in refused.get_data(as_text=True)
    assert count(app, AuditRecord, AuditRecord.action == "auth.role_grant") == 0

    resp = client.post(f"/backoffice/admin/users/{uid}/grant",
                       data={"role": "clerk", "post_office": "BGD-01"})
    assert resp.status_code == 302
    with app.app_context():
        user = db.get(User, uid)
        assert user.roles == {Role.SHOPPER, Role.CLERK}
        assert user.post_office.code == "BGD-01"
        rec = db.scalar(select(AuditRecord).where(AuditRecord.action == "auth.role_grant"))
        assert rec.actor_id == admin_id
        assert rec.object_type == "user" and rec.object_id == str(uid)
        assert rec.details == {"role": "clerk", "post_office": "BGD-01"}
    # The new clerk can now open the back office.
    other = app.test_client()
    log_in(other, "new@example.iq")
    assert other.get("/backoffice/").status_code == 200


def test_admin_revokes_a_role_and_it_is_audited(app, client):
    admin_id = _admin(app, client)
    uid = make_user(app, email="cust@example.iq", roles=("customs_officer", "shopper"))
    resp = client.post(f"/backoffice/admin/users/{uid}/revoke", data={"role": "customs_officer"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.get(User, uid).roles == {Role.SHOPPER}
        rec = db.scalar(select(AuditRecord).where(AuditRecord.action == "auth.role_revoke"))
        assert (rec.actor_id, rec.details) == (admin_id, {"role": "customs_officer"})


def test_admin_cannot_remove_their_own_admin_role(app, client):
    admin_id = _admin(app, client)
    resp = client.post(f"/backoffice/admin/users/{admin_id}/revoke", data={"role": "admin"},
                       follow_redirects=True)
    assert "لا يمكنك إزالة دور مدير النظام عن نفسك." in resp.get_data(as_text=True)
    with app.app_context():
        assert Role.ADMIN in db.get(User, admin_id).roles


def test_admin_creates_a_staff_user(app, client):
    admin_id = _admin(app, client)
    make_office(app)
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "حسن", "email": "", "phone": "0750 222 3344", "password": "first pass 1",
        "roles": ["clerk", "customs_officer"], "post_office": "BGD-01",
    })
    assert resp.status_code == 302
    with app.app_context():
        user = db.scalar(select(User).where(User.phone == "+9647502223344"))
        assert user.roles == {Role.CLERK, Role.CUSTOMS_OFFICER}
        rec = db.scalar(select(AuditRecord).where(AuditRecord.action == "auth.user_create",
                                                  AuditRecord.object_id == str(user.id)))
        assert rec.actor_id == admin_id
        assert rec.details["roles"] == ["clerk", "customs_officer"]
        assert rec.details["post_office"] == "BGD-01"
        assert rec.details["before"] is None
        assert rec.details["after"] == {
            "full_name": "حسن", "email": None, "phone": "+9647502223344",
            "post_office": "BGD-01", "roles": ["clerk", "customs_officer"], "active": True}
    listing = client.get("/backoffice/admin/users?q=0750 222").get_data(as_text=True)
    assert "حسن" in listing


def test_admin_create_user_errors_appear_next_to_the_fields(app, client):
    _admin(app, client)
    before = count(app, User)
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "X", "email": "admin@example.iq", "phone": "", "password": "first pass 1",
        "roles": ["supervisor"], "post_office": "",
    })
    assert resp.status_code == 409
    assert 'id="email-error"' in resp.get_data(as_text=True)
    resp = client.post("/backoffice/admin/users", data={
        "full_name": "X", "email": "", "phone": "0750", "password": "first pass 1",
        "roles": ["supervisor"], "post_office": "",
    })
    assert resp.status_code == 422
    assert 'id="phone-error"' in resp.get_data(as_text=True)
    assert count(app, User) == before


def test_admin_adds_a_post_office(app, client):
    _admin(app, client)
    resp = client.post("/backoffice/admin/offices", data={
        "code": "krk-01", "name_ar": "مكتب بريد كركوك", "name_en": "Kirkuk Post Office",
        "governorate": "IQ-KI", "address": "",
    })
    assert resp.status_code == 302
    page = client.get("/backoffice/admin/offices").get_data(as_text=True)
    assert "KRK-01" in page and "كركوك" in page
    dup = client.post("/backoffice/admin/offices", data={
        "code": "KRK-01", "name_ar": "ب", "name_en": "B", "governorate": "IQ-KI"})
    assert dup.status_code == 409
    bad = client.post("/backoffice/admin/offices", data={
        "code": "ZZ-01", "name_ar": "ب", "name_en": "B", "governorate": "IQ-XX"})
    assert bad.status_code == 422
    assert count(app, PostOffice) == 1
    assert count(app, AuditRecord, AuditRecord.action == "auth.post_office_create") == 1


def test_audit_page_is_newest_first_filtered_and_paginated(app, client):
    from app.audit import record_audit

    admin_id = _admin(app, client)
    with app.app_context():
        for i in range(60):
            record_audit("test.counted", object_type="parcel", object_id=i, actor_id=admin_id)
        record_audit("test.other", object_type="parcel", object_id="x")
        db.commit()
    first = client.get("/backoffice/admin/audit?action=test.counted").get_data(as_text=True)
    assert "test.other" not in first.split("<tbody>")[1]
    assert first.index("#59") < first.index("#58")
    assert "#9<" not in first and "after=" in first
    import re
    cursor = re.search(r'href="[^"]*after=([^"&]+)', first).group(1)
    second = client.get(f"/backoffice/admin/audit?action=test.counted&after={cursor}"
                        ).get_data(as_text=True)
    assert "#9<" in second and "#59" not in second
    by_actor = client.get("/backoffice/admin/audit?actor=admin@example.iq").get_data(
        as_text=True)
    assert "test.other" not in by_actor.split("<tbody>")[1]
    nobody = client.get("/backoffice/admin/audit?actor=nobody-here").get_data(as_text=True)
    assert "لا توجد سجلات." in nobody


def test_nav_for_shows_only_entries_the_roles_allow(app):
    from app.backoffice import nav_for

    with app.app_context():
        make_office(app)
        clerk = db.get(User, make_user(app, email="c@example.iq", roles=("clerk",),
                                       office="BGD-01"))
        supervisor = db.get(User, make_user(app, email="s@example.iq", roles=("supervisor",)))
        clerk_entries = {i.endpoint for i in nav_for(clerk)}
        sup_entries = {i.endpoint for i in nav_for(supervisor)}
    assert "backoffice.index" in clerk_entries
    assert not {"backoffice.admin_users", "backoffice.admin_audit"} & clerk_entries
    assert {"backoffice.admin_audit", "backoffice.admin_users"} <= sup_entries
    assert "backoffice.admin_offices" not in sup_entries
