"""A citizen who forgets the password gets back in with a one-time code, and nobody
learns from the pages whether an account exists.

Attacks: asking for a code for an address without an account (to learn that); floods
of requests from one client or at one victim; guessed, expired and replayed codes,
also at once; a session cookie copied before the reset.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from app.audit import AuditRecord
from app.auth import recovery
from app.auth.models import PasswordReset, User
from app.notify import sent_messages
from tests.app.test_auth_sessions import REMEMBER, copy_cookies
from tests.app.test_auth_support import count, log_in, make_user, messages_to

NEW = "a brand new secret 7"
ARABIC_DIGITS = {ord(str(d)): chr(0x0660 + d) for d in range(10)}


@pytest.fixture(autouse=True)
def _no_earlier_messages():
    """Messages other tests sent to the same addresses are not this test's."""
    sent_messages.clear()


def forgot(client, identifier, **extra):
    return client.post("/password/forgot", data={"identifier": identifier}, **extra)


def reset(client, code, password=NEW, confirm=None):
    return client.post("/password/reset", data={
        "code": code, "password": password,
        "password_confirm": confirm if confirm is not None else password})


def code_and_link(app, to):
    body = messages_to(app, to)[-1]["body"]
    code = re.search(r"\b(\d{6})\b", body).group(1)
    link = re.search(r"https?://\S+/password/reset/[\w-]+", body).group(0)
    return code, link


def set_locale(app, uid, locale):
    from app.database import db

    with app.app_context():
        db.get(User, uid).locale = locale
        db.commit()


def test_the_login_page_offers_forgot_password(app, client):
    body = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in body and "نسيت كلمة المرور؟" in body


def test_reset_by_email_in_arabic_end_to_end(app, client):
    uid = make_user(app, email="maryam@example.iq")
    resp = forgot(client, "Maryam@Example.iq")
    assert (resp.status_code, resp.headers["Location"]) == (302, "/password/reset")
    page = client.get("/password/reset").get_data(as_text=True)
    assert "إذا كان هناك حساب، فقد أرسلنا إليه رمزاً" in page

    [message] = messages_to(app, "maryam@example.iq")
    assert message["phone"] is None
    assert message["subject"] == "رمز إعادة تعيين كلمة مرورك في بريد"
    assert "رمز تعيين كلمة مرور جديدة" in message["body"]
    code, _ = code_and_link(app, "maryam@example.iq")

    done = reset(client, code)
    assert (done.status_code, done.headers["Location"]) == (302, "/login")
    assert log_in(app.test_client(), "maryam@example.iq").status_code == 401
    assert log_in(app.test_client(), "maryam@example.iq", NEW).status_code == 302
    with app.app_context():
        from app.database import db

        rec = db.scalar(select(AuditRecord).where(AuditRecord.action == "auth.password_reset"))
        assert (rec.object_id, rec.actor_id) == (str(uid), uid)
        assert db.scalar(select(PasswordReset.used_at)) is not None


def test_reset_by_sms_in_english_with_the_link_and_arabic_indic_digits(app):
    uid = make_user(app, phone="+9647701234567")
    set_locale(app, uid, "en")
    asked = app.test_client()
    assert forgot(asked, "٠٧٧٠ ١٢٣ ٤٥٦٧").status_code == 302

    [message] = messages_to(app, "+9647701234567")
    assert message["email"] is None
    assert message["subject"] == "Your Barid password reset code"
    assert "Your code to set a new Barid password is" in message["body"]
    code, link = code_and_link(app, "+9647701234567")

    # The link opens the code page on another device too (the phone that got the SMS).
    phone = app.test_client()
    opened = phone.get(urlsplit(link).path)
    assert (opened.status_code, opened.headers["Location"]) == (302, "/password/reset")
    assert reset(phone, code.translate(ARABIC_DIGITS)).status_code == 302
    assert log_in(app.test_client(), "0770 123 4567", NEW).status_code == 302


def test_an_unknown_account_gets_the_same_answer_and_no_message(app):
    make_user(app, email="known@example.iq")
    known, unknown = app.test_client(), app.test_client()
    a, b = forgot(known, "known@example.iq"), forgot(unknown, "nobody@example.iq")
    assert (a.status_code, a.headers["Location"]) == (b.status_code, b.headers["Location"])
    assert a.get_data() == b.get_data()
    page_a, page_b = known.get("/password/reset"), unknown.get("/password/reset")
    assert page_a.status_code == page_b.status_code == 200
    assert page_a.get_data() == page_b.get_data()
    wrong_a, wrong_b = reset(known, "000001"), reset(unknown, "000001")
    assert wrong_a.status_code == wrong_b.status_code == 422
    assert wrong_a.get_data() == wrong_b.get_data()
    assert messages_to(app, "nobody@example.iq") == []
    assert len(messages_to(app, "known@example.iq")) == 1
    assert count(app, PasswordReset) == 1


def test_the_same_answer_holds_with_csrf_switched_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    make_user(app, phone="+9647801112222")
    answers = []
    for who in ("0780 111 2222", "0780 999 8888"):
        c = app.test_client()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                          c.get("/password/forgot").get_data(as_text=True)).group(1)
        resp = c.post("/password/forgot", data={"identifier": who, "csrf_token": token})
        page = c.get("/password/reset").get_data(as_text=True)
        answers.append((resp.status_code, resp.headers.get("Location"),
                        re.sub(r'value="[^"]+"', "", page)))
    assert answers[0] == answers[1]


def test_a_disabled_account_is_sent_nothing(app):
    from app.database import db

    uid = make_user(app, email="gone@example.iq")
    with app.app_context():
        db.get(User, uid).active = False
        db.commit()
    assert forgot(app.test_client(), "gone@example.iq").status_code == 302
    assert messages_to(app, "gone@example.iq") == []


def test_nonsense_is_a_form_error_not_a_500(app, client):
    resp = forgot(client, "not a name")
    assert resp.status_code == 422
    assert 'id="identifier-error"' in resp.get_data(as_text=True)
    # Without a reset under way the code page sends the visitor back to ask for one.
    assert client.get("/password/reset").headers["Location"] == "/password/forgot"


def test_requests_are_throttled_per_client_and_per_account(app, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_RESET_RATE_LIMIT", 2)
    make_user(app, email="victim@example.iq")
    here = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    client = app.test_client()
    assert forgot(client, "a@example.iq", **here).status_code == 302
    assert forgot(client, "b@example.iq", **here).status_code == 302
    refused = forgot(client, "victim@example.iq", **here)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "طلبات كثيرة جداً لكلمة مرور جديدة" in refused.get_data(as_text=True)
    assert messages_to(app, "victim@example.iq") == []

    # One inbox is not flooded from many addresses either.
    make_user(app, email="flooded@example.iq")
    answers = [forgot(app.test_client(), "flooded@example.iq",
                      environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code
               for n in range(4)]
    assert answers == [302, 302, 429, 429]
    assert len(messages_to(app, "flooded@example.iq")) == 2


def test_five_wrong_codes_kill_the_code(app, client):
    make_user(app, email="tries@example.iq")
    forgot(client, "tries@example.iq")
    code, _ = code_and_link(app, "tries@example.iq")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(app.config["PASSWORD_RESET_TRIES"]):
        resp = reset(client, wrong)
        assert resp.status_code == 422
        assert "هذا الرمز غير صحيح أو استُخدم أو انتهت صلاحيته" in resp.get_data(as_text=True)
    assert reset(client, code).status_code == 422
    assert log_in(app.test_client(), "tries@example.iq").status_code == 302  # unchanged


def test_a_weak_password_spends_no_try(app, client):
    make_user(app, email="weak@example.iq")
    forgot(client, "weak@example.iq")
    code, _ = code_and_link(app, "weak@example.iq")
    resp = reset(client, code, password="short")
    assert resp.status_code == 422
    assert 'id="password-error"' in resp.get_data(as_text=True)
    mismatch = reset(client, code, confirm="something else")
    assert mismatch.status_code == 422
    with app.app_context():
        from app.database import db

        assert db.scalar(select(PasswordReset.attempts)) == 0
    assert reset(client, code).status_code == 302


def test_an_expired_code_and_a_used_code_are_refused(app):
    from app.database import db, utcnow

    make_user(app, email="late@example.iq")
    client, copy = app.test_client(), app.test_client()
    forgot(client, "late@example.iq")
    copy_cookies(client, copy, only="session")
    code, _ = code_and_link(app, "late@example.iq")
    with app.app_context():
        db.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
    assert reset(client, code).status_code == 422

    forgot(client, "late@example.iq")
    copy_cookies(client, copy, only="session")
    code, _ = code_and_link(app, "late@example.iq")
    assert reset(client, code).status_code == 302
    # The same code again, from a copy of the session that used it: refused.
    assert reset(copy, code, password="yet another secret").status_code == 422
    assert log_in(app.test_client(), "late@example.iq", NEW).status_code == 302


def test_a_newer_code_replaces_the_older_one(app, client):
    make_user(app, email="twice@example.iq")
    first = app.test_client()
    forgot(first, "twice@example.iq")
    old, _ = code_and_link(app, "twice@example.iq")
    forgot(client, "twice@example.iq")
    assert reset(first, old).status_code == 422


def test_a_reset_ends_every_session_copied_cookies_included(app):
    make_user(app, email="stolen@example.iq")
    owner, thief = app.test_client(), app.test_client()
    assert log_in(owner, "stolen@example.iq", remember="y").status_code == 302
    copy_cookies(owner, thief)
    remembered = app.test_client()
    copy_cookies(owner, remembered, only=REMEMBER)
    assert thief.get("/account").status_code == 200
    assert remembered.get("/account").status_code == 200

    helper = app.test_client()
    forgot(helper, "stolen@example.iq")
    code, _ = code_and_link(app, "stolen@example.iq")
    assert reset(helper, code).status_code == 302

    for c in (owner, thief, remembered):
        assert c.get("/account").status_code == 302


@pytest.mark.commits
def test_a_burst_of_codes_checks_at_most_the_allowed_tries(app, monkeypatch):
    from app.database import db, unit_of_work

    uid = make_user(app, email="burst@example.iq")
    with app.app_context(), app.test_request_context(), unit_of_work():
        token = recovery.send_password_reset(uid, actor_id=None).token
    checked: list[str] = []
    real = recovery._reset_digest
    monkeypatch.setattr(recovery, "_reset_digest",
                        lambda code: checked.append(code) or real(code))
    n = 12
    barrier = threading.Barrier(n)
    outcomes: list[object] = []

    def guess(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                with unit_of_work():
                    outcomes.append(recovery.reset_password(token, f"9{i:05d}x", NEW))
            except Exception as exc:  # noqa: BLE001  (reported, and the test fails on it)
                outcomes.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == n
    assert all(isinstance(o, recovery.InvalidResetCode) for o in outcomes)
    assert len(checked) == app.config["PASSWORD_RESET_TRIES"]
    with app.app_context():
        assert db.scalar(select(PasswordReset.attempts)) == app.config["PASSWORD_RESET_TRIES"]


def test_the_code_goes_by_the_channel_the_person_named(app):
    make_user(app, email="both@example.iq", phone="+9647709998877")
    forgot(app.test_client(), "0770 999 8877")
    assert [m["phone"] for m in messages_to(app, "+9647709998877")] == ["+9647709998877"]
    assert messages_to(app, "both@example.iq") == []
    forgot(app.test_client(), "both@example.iq")
    assert [m["email"] for m in messages_to(app, "both@example.iq")] == ["both@example.iq"]


def test_a_reset_lifts_the_lock_of_failed_logins(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", 2)
    make_user(app, email="locked@example.iq")
    for _ in range(2):
        log_in(app.test_client(), "locked@example.iq", "wrong guess")
    assert log_in(app.test_client(), "locked@example.iq").status_code == 429
    client = app.test_client()
    forgot(client, "locked@example.iq")
    code, _ = code_and_link(app, "locked@example.iq")
    assert reset(client, code).status_code == 302
    assert log_in(app.test_client(), "locked@example.iq", NEW).status_code == 302
