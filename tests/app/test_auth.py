"""Sign-up, login, logout, password change, and the account page, through the web."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import Role, User
from tests.app.test_auth_support import (
    PASSWORD,
    audit_actions,
    count,
    log_in,
    make_user,
    messages_to,
    register,
    sign_up,
)


def test_register_with_email_stores_it_lower_case_and_logs_in(app, client):
    assert register(client, "  Maryam.Hasan@Example.IQ ").status_code == 302
    assert count(app, User) == 0  # nothing until the code from the message comes back
    resp = client.post("/register/confirm", data={"code": "000000"})
    assert resp.status_code == 422
    resp = sign_up(app, client, "  Maryam.Hasan@Example.IQ ", to="maryam.hasan@example.iq")
    assert resp.status_code == 302
    with app.app_context():
        from app.database import db

        user = db.scalar(select(User))
        assert user.email == "maryam.hasan@example.iq"
        assert user.phone is None
        assert user.roles == {Role.SHOPPER}
        assert user.password_hash.startswith("$argon2id$")
    page = client.get("/account")
    assert page.status_code == 200
    assert "maryam.hasan@example.iq" in page.get_data(as_text=True)
    assert "auth.register" in audit_actions(app)


def test_register_with_local_phone_then_log_in_with_international_form(app, client):
    assert sign_up(app, client, "0770 123-4567", to="+9647701234567").status_code == 302
    with app.app_context():
        from app.database import db

        assert db.scalar(select(User.phone)) == "+9647701234567"
    client.post("/logout")
    assert client.get("/account").status_code == 302

    resp = log_in(client, "+964 770 123 4567")
    assert resp.status_code == 302
    page = client.get("/account").get_data(as_text=True)
    assert "+964 770 123 4567" in page
    assert audit_actions(app)[-1] == "auth.login"


@pytest.mark.parametrize("other_form", ["9647701234567", "+964-770-123-4567", "07701234567"])
def test_the_same_phone_in_another_form_warns_the_holder_and_opens_nothing(app, client,
                                                                         other_form):
    make_user(app, phone="+9647701234567")
    before = len(messages_to(app, "+9647701234567"))
    resp = register(client, other_form)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/register/confirm"
    assert count(app, User) == 1
    [warning] = messages_to(app, "+9647701234567")[before:]
    assert "+964 770 123 4567" in warning["body"]
    assert "حاول شخص ما إنشاء حساب جديد" in warning["body"]


def test_an_existing_email_is_not_refused_but_its_holder_is_told(app, client):
    make_user(app, email="ali@example.iq")
    resp = register(client, "ALI@example.iq")
    assert resp.status_code == 302
    assert "يوجد حساب" not in client.get("/register/confirm").get_data(as_text=True)
    assert count(app, User) == 1
    assert "حاول شخص ما" in messages_to(app, "ali@example.iq")[-1]["body"]


@pytest.mark.parametrize("bad", ["0770 123 456", "+964 1 234 5678", "07701234567x", "12345"])
def test_malformed_phone_gets_a_clear_field_error(app, client, bad):
    resp = register(client, bad)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="identifier-error"' in body
    assert "0770 123 4567" in body
    assert count(app, User) == 0


def test_short_password_is_refused(app, client):
    resp = register(client, "short@example.iq", password="1234567")
    assert resp.status_code == 422
    assert "استخدم 8 أحرف على الأقل لكلمة المرور" in resp.get_data(as_text=True)
    assert count(app, User) == 0


def test_errors_are_shown_in_english_when_english_is_chosen(app, client):
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    resp = register(client, "0770")
    assert "Enter an Iraqi mobile number such as 0770 123 4567" in resp.get_data(as_text=True)


def test_wrong_password_and_unknown_user_get_the_same_message(app, client):
    make_user(app, email="known@example.iq")
    wrong = log_in(client, "known@example.iq", "not the password")
    unknown = log_in(client, "nobody@example.iq", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    message = "اسم الدخول أو كلمة المرور غير صحيحة."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    assert audit_actions(app)[-2:] == ["auth.login_failed", "auth.login_failed"]


def test_login_ignores_a_next_that_points_to_another_site(app, client):
    make_user(app, email="shop@example.iq")
    resp = client.post("/login?next=https://evil.example/x",
                       data={"identifier": "shop@example.iq", "password": PASSWORD})
    assert resp.headers["Location"] == "/"
    resp = client.post("/logout")
    resp = client.post("/login?next=/account",
                       data={"identifier": "shop@example.iq", "password": PASSWORD})
    assert resp.headers["Location"] == "/account"


def test_logout_is_a_post_and_ends_the_session(app, client):
    make_user(app, email="out@example.iq")
    log_in(client, "out@example.iq")
    assert client.get("/logout").status_code == 405
    assert client.get("/account").status_code == 200
    client.post("/logout")
    assert client.get("/account").status_code == 302
    assert audit_actions(app)[-1] == "auth.logout"


def test_password_change_logs_out_other_sessions_but_keeps_this_one(app):
    make_user(app, email="two@example.iq")
    here, elsewhere, remembered = app.test_client(), app.test_client(), app.test_client()
    for c in (here, elsewhere):
        assert log_in(c, "two@example.iq").status_code == 302
    assert log_in(remembered, "two@example.iq", remember="y").status_code == 302
    # The remember-me cookie alone (session gone, as after closing the browser) logs in.
    remembered.delete_cookie("session")
    assert remembered.get("/account").status_code == 200
    remembered.delete_cookie("session")

    resp = here.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "a brand new secret",
        "new_password_confirm": "a brand new secret",
    })
    assert resp.status_code == 302

    assert here.get("/account").status_code == 200
    assert elsewhere.get("/account").status_code == 302
    assert remembered.get("/account").status_code == 302
    fresh = app.test_client()
    assert log_in(fresh, "two@example.iq").status_code == 401
    assert log_in(fresh, "two@example.iq", "a brand new secret").status_code == 302
    assert "auth.password_change" in audit_actions(app)


def test_password_change_with_wrong_current_password_changes_nothing(app, client):
    make_user(app, email="keep@example.iq")
    log_in(client, "keep@example.iq")
    with app.app_context():
        from app.database import db

        token_before = db.scalar(select(User.session_token))
    resp = client.post("/account/password", data={
        "current_password": "wrong wrong", "new_password": "another secret",
        "new_password_confirm": "another secret",
    })
    assert resp.status_code == 422
    assert "كلمة المرور الحالية غير صحيحة" in resp.get_data(as_text=True)
    with app.app_context():
        from app.database import db

        assert db.scalar(select(User.session_token)) == token_before
    assert client.get("/account").status_code == 200


def test_outdated_hash_is_upgraded_at_login(app, client):
    from argon2 import PasswordHasher

    uid = make_user(app, email="old@example.iq")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with app.app_context():
        from app.database import db

        db.get(User, uid).password_hash = weak
        db.commit()
    assert log_in(client, "old@example.iq").status_code == 302
    with app.app_context():
        from app.database import db

        stored = db.get(User, uid).password_hash
    assert stored != weak and stored.startswith("$argon2id$")


def test_disabled_account_cannot_log_in(app, client):
    uid = make_user(app, email="gone@example.iq")
    with app.app_context():
        from app.database import db

        db.get(User, uid).active = False
        db.commit()
    assert log_in(client, "gone@example.iq").status_code == 401


def test_anonymous_visitor_is_sent_to_login_with_a_translated_message(app, client):
    resp = client.get("/account")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "يرجى تسجيل الدخول لفتح هذه الصفحة." in page


def test_every_field_problem_is_shown_at_once(app, client):
    resp = client.post("/register", data={"full_name": "X", "identifier": "0770 12",
                                          "password": "short", "password_confirm": "short"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="identifier-error"' in body and 'id="password-error"' in body
    assert count(app, User) == 0
