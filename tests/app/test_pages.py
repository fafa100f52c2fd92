"""The layout, the home page and the language switch."""

from __future__ import annotations

import pytest

from app.auth.models import Role, User, UserRole
from app.database import db


def _user(email: str, *roles: Role, locale: str = "ar") -> User:
    user = User(email=email, full_name="Test Person", password_hash="unused", locale=locale)
    user.role_rows = [UserRole(role=r.value) for r in roles]
    db.add(user)
    db.commit()
    return user


def _log_in(client, user: User) -> None:
    # flask-login keeps the user's session token under "_user_id".
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def test_home_page_is_arabic_and_right_to_left_by_default(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "بريد" in html and "البريد العراقي" in html
    assert "مكتب البريد، على الإنترنت" in html
    # The tracking form asks /track for ?number=...
    assert 'action="/track"' in html and 'name="number"' in html
    assert 'href="/shop' in html
    assert 'href="/payments/cards"' in html  # top up the post card
    assert "<bdi>EE123456785IQ</bdi>" in html
    assert 'hreflang="en"' in html and ">English</a>" in html


def test_home_page_in_english_after_the_switch(client):
    r = client.get("/lang/en?next=/")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html
    assert "The post office, online" in html
    assert ">العربية</a>" in html


def test_language_choice_is_remembered_across_requests_and_can_go_back(client):
    client.get("/lang/en")
    for path in ("/", "/no-such-page", "/"):
        assert 'lang="en" dir="ltr"' in client.get(path).get_data(as_text=True)
    client.get("/lang/ar")
    assert 'lang="ar" dir="rtl"' in client.get("/").get_data(as_text=True)


def test_language_switch_goes_back_to_a_local_page_with_its_query(client):
    r = client.get("/lang/en", query_string={"next": "/track?number=EE123456785IQ"})
    assert r.headers["Location"] == "/track?number=EE123456785IQ"


@pytest.mark.parametrize("target", [
    "https://evil.example/",
    "//evil.example/path",
    "/\\evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "evil.example",
])
def test_language_switch_refuses_to_send_visitors_elsewhere(client, target):
    r = client.get("/lang/en", query_string={"next": target})
    assert r.status_code == 302
    assert r.headers["Location"] == "/"


def test_unknown_language_is_not_found_and_changes_nothing(client):
    assert client.get("/lang/fr").status_code == 404
    assert 'lang="ar"' in client.get("/").get_data(as_text=True)


def test_switch_is_kept_on_the_account_of_a_logged_in_user(app, client):
    with app.app_context():
        user = _user("reader@example.iq", Role.SHOPPER)
    _log_in(client, user)
    client.get("/lang/en")
    with app.app_context():
        assert db.get(User, user.id).locale == "en"
    # Another device: a fresh session with only the login, no language chosen there.
    other = app.test_client()
    _log_in(other, user)
    assert 'lang="en" dir="ltr"' in other.get("/").get_data(as_text=True)


def test_links_for_visitors_and_for_logged_in_people(app, client):
    html = client.get("/").get_data(as_text=True)
    assert "تسجيل الدخول" in html and "إنشاء حساب" in html
    assert "مكتب الموظفين" not in html
    with app.app_context():
        shopper = _user("shopper@example.iq", Role.SHOPPER)
        clerk = _user("clerk@example.iq", Role.CLERK)
    _log_in(client, shopper)
    html = client.get("/").get_data(as_text=True)
    assert "تسجيل الخروج" in html and "مكتب الموظفين" not in html
    assert "حسابي" in html
    staff = app.test_client()
    _log_in(staff, clerk)
    html = staff.get("/").get_data(as_text=True)
    assert "مكتب الموظفين" in html


def test_stylesheet_is_served_locally_and_uses_logical_properties(client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/static/barid.css"' in html
    assert "http://" not in html.split("<body")[0] and "https://" not in html
    css = client.get("/static/barid.css").get_data(as_text=True)
    assert "margin-inline" in css and "padding-inline" in css
    assert "margin-left" not in css and "margin-right" not in css
