"""Notifications: the citizen's channels and language, templates an admin edits (with a
preview, inside a sandbox), the log in the back office, the development folder, and the
SMS gateway's HTTP provider against a fake gateway on a spare local port."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.audit import AuditRecord
from app.auth.models import User
from app.database import db, unit_of_work, utcnow
from app.events import DomainEvent, JobState, OutboxJob, publish, subscribe
from app.jobs import drain
from app.notify import (
    Notification,
    NotificationTemplate,
    TemplateRefused,
    citizen,
    message_kind,
    preview,
    render_text,
    save_template,
    sent_messages,
    tell,
)
from tests.app.test_auth_support import log_in, make_user

WEIGHED = message_kind(
    "test_parcel_weighed", "Parcel weighed (test)",
    sample={"number": "RR123456785IQ", "grams": "1,200"},
    subject={"ar": "وُزن طردك {{ number }}", "en": "Your parcel {{ number }} was weighed"},
    email={"ar": "وزن طردك {{ number }}: {{ grams }} غرام.",
           "en": "Your parcel {{ number }} weighs {{ grams }} g."},
    sms={"ar": "طردك {{ number }}: {{ grams }} غ", "en": "Parcel {{ number }}: {{ grams }} g"},
)


@subscribe("test.notify.parcel_weighed")
def tell_weighed(event: DomainEvent) -> None:
    user = db.get(User, event.payload["user_id"])
    tell(citizen(user), WEIGHED.key, {"number": event.payload["number"], "grams": "1,200"},
         event=event)


@pytest.fixture(autouse=True)
def _clear():
    sent_messages.clear()
    yield
    sent_messages.clear()


def _citizen(app, *, locale="ar", email="mariam@example.iq", phone="07701112233") -> int:
    uid = make_user(app, email=email, phone=phone, name="Mariam")
    with app.app_context():
        db.get(User, uid).locale = locale
        db.commit()
    return uid


def _weigh(app, uid: int, number: str = "RR123456785IQ") -> None:
    with app.app_context():
        with unit_of_work():
            publish("test.notify.parcel_weighed", {"user_id": uid, "number": number})
        drain(app)


def _set(app, **values):
    """Change settings for one test; returns a function that puts them back."""
    old = {k: app.config.get(k) for k in values}
    app.config.update(values)
    return lambda: app.config.update(old)


# --- the citizen's language and channels ------------------------------------------------

def test_citizen_is_told_in_their_language_on_both_channels_by_default(app):
    uid = _citizen(app, locale="en")
    _weigh(app, uid)
    told = {m["channel"]: m for m in sent_messages}
    assert told["email"]["email"] == "mariam@example.iq"
    assert told["email"]["subject"] == "Your parcel RR123456785IQ was weighed"
    assert told["sms"]["phone"] == "+9647701112233"
    assert told["sms"]["body"] == "Parcel RR123456785IQ: 1,200 g"


def test_account_page_sets_the_channels_and_none_means_nothing(app, client):
    uid = _citizen(app)
    log_in(client, "mariam@example.iq")
    page = client.get("/account").get_data(as_text=True)
    assert re.search(r'<input checked [^>]*value="both"', page)
    assert client.post("/account", data={"channels": "sms"}).status_code == 302
    _weigh(app, uid, "RR000000001IQ")
    assert [(m["channel"], m["phone"]) for m in sent_messages] == [("sms", "+9647701112233")]
    assert "طردك RR000000001IQ" in sent_messages[0]["body"]  # Arabic, the account's language

    sent_messages.clear()
    assert client.post("/account", data={"channels": "none"}).status_code == 302
    _weigh(app, uid, "RR000000002IQ")
    assert sent_messages == []
    refused = client.post("/account", data={"channels": "pigeon"})
    assert refused.status_code == 422
    with app.app_context():
        user = db.get(User, uid)
        assert (user.notify_by_email, user.notify_by_sms) == (False, False)
        assert db.query(AuditRecord).filter_by(
            action="auth.notification_channels").count() == 2


def test_an_event_handled_twice_sends_once(app):
    uid = _citizen(app)
    _weigh(app, uid)
    with app.app_context():
        event = db.scalar(select(DomainEvent).where(
            DomainEvent.name == "test.notify.parcel_weighed"))
        with unit_of_work():
            tell_weighed(event)  # a redelivered job
        drain(app)
        assert db.query(Notification).filter_by(kind=WEIGHED.key).count() == 2
    assert sorted(m["channel"] for m in sent_messages) == ["email", "sms"]


# --- templates: edit, preview, sandbox ---------------------------------------------------

def _admin(app, client) -> int:
    uid = make_user(app, email="admin@example.iq", name="Admin", roles=("admin",))
    log_in(client, "admin@example.iq")
    return uid


URL = f"/backoffice/admin/notifications/templates/{WEIGHED.key}/en"


def test_admin_previews_then_saves_a_template_and_the_next_message_uses_it(app, client):
    _admin(app, client)
    assert WEIGHED.key in client.get("/backoffice/admin/notifications/templates").get_data(
        as_text=True)
    page = client.get(URL).get_data(as_text=True)
    assert "Your parcel RR123456785IQ weighs 1,200 g." in page  # the built-in, previewed
    texts = {"subject": "Weighed: {{ number }}",
             "email_body": "{{ number }} is {{ grams }} grams.",
             "sms_body": "{{ number|upper }} {{ grams }}g"}
    shown = client.post(URL, data={**texts, "preview": "1"})
    body = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "RR123456785IQ is 1,200 grams." in body
    with app.app_context():
        assert db.scalar(select(NotificationTemplate)) is None  # a preview saves nothing
    assert client.post(URL, data={**texts, "save": "1"}).status_code == 302

    uid = _citizen(app, locale="en")
    _weigh(app, uid, "rr111111111iq")
    told = {m["channel"]: m for m in sent_messages}
    assert told["email"]["subject"] == "Weighed: rr111111111iq"
    assert told["sms"]["body"] == "RR111111111IQ 1,200g"
    with app.app_context():
        audit = db.scalar(select(AuditRecord).where(
            AuditRecord.action == "notification_template.changed"))
        assert audit.object_id == f"{WEIGHED.key}/en"
        assert audit.details["before"]["subject"] == "Your parcel {{ number }} was weighed"

    # The Arabic text is untouched, and the built-in text can be brought back.
    assert client.post(URL + "/restore", data={"restore": "1"}).status_code == 302
    sent_messages.clear()
    _weigh(app, uid, "RR222222222IQ")
    assert {m["subject"] for m in sent_messages if m["channel"] == "email"} == {
        "Your parcel RR222222222IQ was weighed"}


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ number.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ number.format.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config }}",  # nothing of the app is in reach
    "{{ number.zfill(10**9) }}",  # the sandbox alone would allow these two
    "{{ 'x' * 10**9 }}",
    "{{ number|replace('', number) }}",
    "{% for i in range(9) %}{{ number }}{% endfor %}",
    "{% set x = number %}{{ x }}",
    "{{ number",
])
def test_a_template_reaching_outside_its_fields_is_refused_and_nothing_saved(app, client,
                                                                            source):
    _admin(app, client)
    resp = client.post(URL, data={"subject": "Weighed", "email_body": source,
                                  "sms_body": "{{ number }}", "save": "1"})
    assert resp.status_code == 422
    assert "RR123456785IQ" not in resp.get_data(as_text=True)  # no preview shown either
    with app.app_context():
        assert db.scalar(select(NotificationTemplate)) is None
        assert db.query(AuditRecord).filter_by(
            action="notification_template.changed").count() == 0
        with pytest.raises(TemplateRefused):
            save_template(WEIGHED.key, "en", {"subject": "x", "email_body": source,
                                             "sms_body": "x"}, actor_id=None)


def test_sandbox_refuses_what_the_form_might_let_through(app):
    with app.app_context():
        for source in ("{{ ''.__class__ }}", "{{ unknown_field }}",
                       "{% for i in range(10**7) %}x{% endfor %}"):
            with pytest.raises(TemplateRefused):
                render_text(source, {"number": "RR1"})
        assert render_text("{{ number|lower }}", {"number": "RR1"}) == "rr1"
        assert render_text("{% if number %}{{ number|truncate(5, True, '') }}{% else %}-"
                           "{% endif %} {{ missing|default('none') }}",
                           {"number": "RR123456785IQ"}) == "RR123 none"
        rendered = preview(WEIGHED.key, "ar", WEIGHED.texts("ar"))
        assert rendered["sms_body"] == "طردك RR123456785IQ: 1,200 غ"


def test_a_stored_template_that_no_longer_renders_falls_back_to_the_built_in(app):
    uid = _citizen(app, locale="en")
    with app.app_context():
        # Written past the checks (an old row, a field since dropped).
        db.add(NotificationTemplate(kind=WEIGHED.key, locale="en", subject="{{ gone }}",
                                    email_body="{{ ''.__class__ }}", sms_body="{{ gone }}"))
        db.commit()
    _weigh(app, uid)
    told = {m["channel"]: m for m in sent_messages}
    assert told["email"]["subject"] == "Your parcel RR123456785IQ was weighed"
    assert told["email"]["body"] == "Your parcel RR123456785IQ weighs 1,200 g."
    assert told["sms"]["body"] == "Parcel RR123456785IQ: 1,200 g"


def test_only_admins_edit_templates_and_supervisors_read_the_log(app, client):
    make_user(app, email="sup@example.iq", roles=("supervisor",))
    log_in(client, "sup@example.iq")
    assert client.get("/backoffice/admin/notifications").status_code == 200
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"subject": "x", "email_body": "x", "sms_body": "x",
                                  "save": "1"}).status_code == 403


# --- the log ---------------------------------------------------------------------------------

def test_log_lists_every_message_with_filters_and_pages(app, client, monkeypatch):
    from app import notify_admin

    monkeypatch.setattr(notify_admin.NOTIFICATION_LIST, "page_size", 2)
    uid = _citizen(app)
    _weigh(app, uid, "RR000000011IQ")
    _weigh(app, uid, "RR000000012IQ")
    _admin(app, client)
    page = client.get("/backoffice/admin/notifications?channel=sms").get_data(as_text=True)
    assert page.count("+9647701112233") == 2 and "mariam@example.iq" not in page
    first = client.get("/backoffice/admin/notifications").get_data(as_text=True)
    assert first.count("<tr>") - 1 == 2 and "after=" in first
    nxt = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    older = client.get(nxt).get_data(as_text=True)
    assert older.count("<tr>") - 1 == 2
    assert "after=" not in older.split('rel="first"')[0].split("<nav")[-1]
    bad = client.get("/backoffice/admin/notifications?status=failed&after=99999999999999999999")
    assert bad.status_code == 400
    assert client.get("/backoffice/admin/notifications?channel=fax").status_code == 400
    export = client.get("/backoffice/admin/notifications.csv?channel=sms")
    rows = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    # A phone number starts with +: kept as text, so a spreadsheet neither runs nor rounds it.
    assert len(rows) == 3 and all(r[1] == "'+9647701112233" for r in rows[1:])


def test_development_folder_gets_one_file_a_message(app, tmp_path):
    restore = _set(app, MAIL_BACKEND="folder", SMS_BACKEND="folder",
                   MAIL_FOLDER=str(tmp_path))
    try:
        uid = _citizen(app)
        _weigh(app, uid)
    finally:
        restore()
    files = [json.loads(p.read_text(encoding="utf-8")) for p in Path(tmp_path).iterdir()]
    assert sorted(f["channel"] for f in files) == ["email", "sms"]
    assert all(f["kind"] == WEIGHED.key for f in files)


# --- the SMS gateway over HTTP -------------------------------------------------------------

class FakeGateway:
    """An SMS gateway on a spare local port: records each POST, answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                gateway.received.append({
                    "path": self.path, "auth": self.headers.get("Authorization"),
                    "type": self.headers.get("Content-Type"),
                    "json": json.loads(self.rfile.read(length))})
                self.send_response(gateway.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def gateway(app):
    fake = FakeGateway()
    restore = _set(app, SMS_BACKEND="http", SMS_HTTP_URL=fake.url,
                   SMS_HTTP_TOKEN="gw-secret", SMS_SENDER_ID="IraqiPost",
                   SMS_HTTP_TIMEOUT=5.0)
    yield fake
    restore()
    fake.close()


def test_http_provider_posts_json_with_the_bearer_token(app, gateway):
    uid = _citizen(app, email=None)
    _weigh(app, uid)
    [call] = gateway.received
    assert call["path"] == "/v1/sms" and call["auth"] == "Bearer gw-secret"
    assert call["type"].startswith("application/json")
    assert call["json"] == {"to": "+9647701112233", "text": "طردك RR123456785IQ: 1,200 غ",
                            "sender": "IraqiPost"}
    with app.app_context():
        row = db.scalar(select(Notification))
        assert (row.status, row.channel, row.attempts) == ("sent", "sms", 1)


def test_gateway_error_fails_the_job_for_a_retry_and_is_logged(app, gateway):
    gateway.status = 500
    uid = _citizen(app, email=None)
    _weigh(app, uid)
    assert len(gateway.received) == 1
    with app.app_context():
        row = db.scalar(select(Notification))
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.error == "SMS gateway answered 500"
        job = db.scalar(select(OutboxJob).where(OutboxJob.task.endswith(
            ":deliver_notification")))
        assert job.state == JobState.PENDING and job.attempts == 1
        assert "NotificationError" in job.last_error and job.run_after > utcnow()
        job_id, row_id = job.id, row.id
        # The gateway is back; the retry comes due.
        gateway.status = 200
        db.execute(update(OutboxJob).where(OutboxJob.id == job_id).values(
            run_after=utcnow() - timedelta(seconds=1)))
        db.commit()
        drain(app)
        row = db.get(Notification, row_id, populate_existing=True)
        assert (row.status, row.attempts, row.error) == ("sent", 2, None)
    assert len(gateway.received) == 2
    # Done means done: running the delivery again sends nothing more.
    with app.app_context():
        from app.notify import deliver_notification

        with unit_of_work():
            deliver_notification(notification_id=row_id)
    assert len(gateway.received) == 2


def test_unreachable_gateway_is_a_notification_error(app, gateway):
    from app.notify import NotificationError, send_sms

    gateway.close()
    with app.app_context(), pytest.raises(NotificationError, match="unreachable"):
        send_sms("+9647701112233", "test")
