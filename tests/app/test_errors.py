"""Error pages in the visitor's language, JSON errors under /api/, and the fallbacks."""

from __future__ import annotations

import json
import logging

from flask import g

from app.errors import Conflict, RateLimited, ValidationFailed


def _english(client):
    with client.session_transaction() as sess:
        sess["lang"] = "en"


def test_404_page_is_arabic_by_default_with_a_way_home(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "الصفحة غير موجودة" in html
    assert 'href="/"' in html and "العودة إلى الصفحة الرئيسية" in html


def test_404_page_is_english_after_the_switch(client):
    client.get("/lang/en")
    r = client.get("/no-such-page")
    html = r.get_data(as_text=True)
    assert r.status_code == 404
    assert '<html lang="en" dir="ltr">' in html
    assert "Page not found" in html and "الصفحة غير موجودة" not in html


def test_api_errors_are_json_with_code_message_and_fields(client):
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.is_json
    assert r.get_json() == {
        "error": "not_found",
        "message": "لم نجد هذه الصفحة. تأكّد من العنوان، أو ابدأ من جديد من الصفحة الرئيسية.",
        "fields": {},
    }


def test_api_errors_follow_accept_language(client):
    r = client.get("/api/v1/no-such-thing", headers={"Accept-Language": "en"})
    assert r.get_json()["message"].startswith("We could not find this page")


def test_405_keeps_the_allow_header(client):
    r = client.post("/livez")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    assert "لا يمكن" in r.get_data(as_text=True)


def test_oversized_body_gets_413_in_plain_words(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    r = client.post("/lang/en", data={"next": "/", "blob": "x" * 5000})
    assert r.status_code == 413
    assert "الملف أو النموذج الذي أرسلته كبير جدًا." in r.get_data(as_text=True)
    # Nothing behind the refused request ran: the language did not change.
    assert '<html lang="ar"' in client.get("/").get_data(as_text=True)
    _english(client)
    r = client.post("/lang/ar", data={"blob": "x" * 5000})
    assert "The file or form you sent is too large." in r.get_data(as_text=True)


def _swap_view(monkeypatch, app, endpoint, view):
    monkeypatch.setitem(app.view_functions, endpoint, view)


def test_domain_error_on_a_page_and_in_the_api(app, client, monkeypatch):
    def refuse(**_kw):
        raise ValidationFailed("The parcel weighs too much.",
                               fields={"weight": "At most 30 kg."})

    _swap_view(monkeypatch, app, "web.home", refuse)
    r = client.get("/")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "The parcel weighs too much." in html and "At most 30 kg." in html

    # The same error under /api/ answers in JSON (the one handler decides by path).
    from app.errors import handle_domain_error

    with app.test_request_context("/api/v1/parcels", headers={"Accept-Language": "en"}):
        try:
            refuse()
        except ValidationFailed as exc:
            r = handle_domain_error(exc)
    assert r.status_code == 422
    assert r.get_json() == {"error": "validation_failed",
                            "message": "The parcel weighs too much.",
                            "fields": {"weight": "At most 30 kg."}}


def test_conflict_and_rate_limited_keep_their_status(app, client, monkeypatch):
    def conflict(**_kw):
        raise Conflict()

    _swap_view(monkeypatch, app, "web.home", conflict)
    r = client.get("/")
    assert r.status_code == 409 and "تعذّر إتمام العملية" in r.get_data(as_text=True)

    def limited(**_kw):
        raise RateLimited(retry_after=120)

    _swap_view(monkeypatch, app, "web.home", limited)
    r = client.get("/")
    assert r.status_code == 429 and r.headers["Retry-After"] == "120"
    assert "محاولات كثيرة" in r.get_data(as_text=True)


def test_403_names_the_roles_that_are_missing(app, client, monkeypatch):
    from flask import abort

    from app.auth.models import Role

    def guarded(**_kw):
        g.required_roles = (Role.CLERK, Role.SUPERVISOR)
        abort(403)

    _swap_view(monkeypatch, app, "web.home", guarded)
    html = client.get("/").get_data(as_text=True)
    assert "لا يمكنك فتح هذه الصفحة" in html
    from app.auth.models import role_label

    with app.test_request_context("/"):
        clerk_ar = role_label(Role.CLERK)
    assert clerk_ar != "clerk" and clerk_ar in html
    _english(client)
    html = client.get("/").get_data(as_text=True)
    assert "You cannot open this page" in html and "This page is only for:" in html


class _JsonLines(logging.Handler):
    """Formats each record as it is written, as the real stderr handler does."""

    def __init__(self):
        super().__init__(logging.ERROR)
        from app.logs import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


def test_500_page_shows_the_request_id_and_the_log_has_it(app, client, monkeypatch):
    def broken(**_kw):
        raise RuntimeError("boom in a view")

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    _swap_view(monkeypatch, app, "web.home", broken)
    capture = _JsonLines()
    logging.getLogger().addHandler(capture)
    try:
        r = client.get("/", headers={"X-Request-ID": "req-500-check"})
    finally:
        logging.getLogger().removeHandler(capture)
    assert r.status_code == 500
    html = r.get_data(as_text=True)
    assert "حدث خطأ من جهتنا" in html and "req-500-check" in html
    assert "boom in a view" not in html
    errors = [line for line in capture.lines if "boom in a view" in line.get("exc", "")]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-500-check"


def test_form_without_csrf_token_gets_a_plain_400_and_changes_nothing(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    r = client.post("/lang/en", data={"next": "/"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "الرجاء إرسال النموذج مرة أخرى" in html and 'href="/"' in html
    assert '<html lang="ar"' in client.get("/").get_data(as_text=True)
